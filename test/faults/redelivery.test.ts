import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/harness.js";
import { FaultWorld, POSTGRES_AVAILABLE, type ServiceProcess, size } from "./support/service.js";
import {
  answeredCount,
  CHANNELS,
  deliver,
  inParallel,
  markerOf,
  messages,
  shuffled,
  tally,
} from "./support/traffic.js";

const PER_CHANNEL = size(60, 300);
const THREADS = size(20, 60);

describe.runIf(POSTGRES_AVAILABLE)("redelivery storm", () => {
  let world: FaultWorld;
  let service: ServiceProcess;

  beforeAll(async () => {
    world = await FaultWorld.create();
    service = await world.startService();
  });
  afterAll(() => world?.close());

  it(`${PER_CHANNEL} messages per channel, each delivered 3 times out of order: one call and one reply each`, async () => {
    const sent = messages(CHANNELS, THREADS, PER_CHANNEL / THREADS);
    const deliveries = shuffled(
      sent.flatMap((m) => [0, 1, 2].map((attempt) => () => deliver(service.url, m, attempt))),
      0x9e3779b9,
    );
    const started = Date.now();
    // Arrival order is shuffled, so per-thread order is checked by the suites that deliver in order.
    const statuses = await inParallel(deliveries, 64);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);

    await waitFor(
      () => answeredCount(tally(world.fakes), sent) === sent.length,
      120_000,
      "every message answered",
    );
    const drainedMs = Date.now() - started;
    await new Promise((r) => setTimeout(r, 500)); // a late duplicate would show up here
    const t = tally(world.fakes);
    const extraCalls = sent.filter((m) => t.calls.get(markerOf(m)) !== 1);
    const extraReplies = sent.filter((m) => t.replies.get(markerOf(m)) !== 1);
    console.log(
      `redelivery: ${sent.length} messages × 3 deliveries, drained in ${drainedMs} ms; ` +
        `calls ≠ 1: ${extraCalls.length}, replies ≠ 1: ${extraReplies.length}`,
    );
    expect(extraCalls.map(markerOf)).toEqual([]);
    expect(extraReplies.map(markerOf)).toEqual([]);
  });
});
