import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/harness.js";
import { FaultWorld, POSTGRES_AVAILABLE, type ServiceProcess, size } from "./support/service.js";
import { metric, overlappingThreads, quickchatCalls } from "./support/timeline.js";
import {
  answeredCount,
  CHANNELS,
  deliver,
  inParallel,
  type Message,
  markerOf,
  messages,
  outOfOrderThreads,
  tally,
  threadKeyOf,
} from "./support/traffic.js";

/** Per scenario; the full sizes run for minutes on a loaded 2-core machine. */
const TIMEOUT_MS = size(60_000, 300_000);
const WAIT_MS = TIMEOUT_MS - 10_000;
const THREADS = size(12, 40);
const PER_THREAD = size(6, 20);
/** Quickchat's answer time: long enough that a thread's next message arrives while one is in progress. */
const QUICKCHAT_LATENCY_MS = 15;

/** xorshift32, seeded, so a failing spread can be replayed. */
function randomFrom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** Each thread's messages in seq order (the next after the previous was acknowledged); threads in parallel. */
async function sendThreads(sent: Message[], send: (m: Message) => Promise<number[]>): Promise<number[]> {
  const threads = new Map<string, Message[]>();
  for (const m of sent) threads.set(threadKeyOf(m), [...(threads.get(threadKeyOf(m)) ?? []), m]);
  const statuses: number[] = [];
  await inParallel(
    [...threads.values()].map((thread) => async () => {
      for (const m of [...thread].sort((a, b) => a.seq - b.seq)) statuses.push(...(await send(m)));
    }),
    threads.size,
  );
  return statuses;
}

/** A POST that answers 0 instead of throwing when the process is gone (connection refused or reset). */
const tryDeliver = (url: string, m: Message, attempt = 0) => deliver(url, m, attempt).catch(() => 0);

/** Everything a replica scenario must keep: one call and one reply per message, one at a time per thread. */
function expectExactlyOnceInOrder(world: FaultWorld, sent: Message[], label: string, drainedMs: number) {
  const t = tally(world.fakes);
  const extraCalls = sent.filter((m) => t.calls.get(markerOf(m)) !== 1);
  const extraReplies = sent.filter((m) => t.replies.get(markerOf(m)) !== 1);
  const keys = new Set(sent.map(threadKeyOf));
  const pick = (order: Map<string, number[]>) => new Map([...order].filter(([key]) => keys.has(key)));
  const callsOutOfOrder = outOfOrderThreads(pick(t.callOrder));
  const repliesOutOfOrder = outOfOrderThreads(pick(t.replyOrder));
  const overlaps = overlappingThreads(world.fakes, sent);
  // One Quickchat conversation per thread: the first message opens it, every later one continues it.
  const markers = new Set(sent.map(markerOf));
  const calls = quickchatCalls(world.fakes).filter((c) => markers.has(c.marker));
  const convIds = new Map<string, Set<string | undefined>>();
  for (const c of calls) {
    const key = threadKeyOf(c);
    convIds.set(key, (convIds.get(key) ?? new Set()).add(c.seq === 0 ? "first" : c.convId));
  }
  const splitConversations = [...convIds].filter(([, ids]) => ids.size !== 2 || ids.has(undefined));
  console.log(
    `${label}: ${sent.length} messages over ${keys.size} threads, drained in ${drainedMs} ms; ` +
      `calls ≠ 1: ${extraCalls.length}, replies ≠ 1: ${extraReplies.length}, ` +
      `threads out of order (calls/replies): ${callsOutOfOrder.length}/${repliesOutOfOrder.length}, ` +
      `overlapping messages: ${overlaps.length}, threads with a split conversation: ${splitConversations.length}`,
  );
  expect(extraCalls.map(markerOf)).toEqual([]);
  expect(extraReplies.map(markerOf)).toEqual([]);
  expect(callsOutOfOrder).toEqual([]);
  expect(repliesOutOfOrder).toEqual([]);
  expect(overlaps).toEqual([]);
  expect(splitConversations.map(([key]) => key)).toEqual([]);
}

describe.runIf(POSTGRES_AVAILABLE)("two service processes on one database", () => {
  let world: FaultWorld;
  let a: ServiceProcess;
  let b: ServiceProcess;

  beforeAll(async () => {
    world = await FaultWorld.create();
    [a, b] = await Promise.all([world.startService(), world.startService()]);
    world.fakes.quickchat.latencyMs = QUICKCHAT_LATENCY_MS;
  });
  afterAll(() => world?.close());

  it(
    `${THREADS} threads per channel × ${PER_THREAD} messages, webhooks spread over both: once each, in order`,
    async () => {
      const sent = messages(CHANNELS, THREADS, PER_THREAD);
      const random = randomFrom(0x5eed_2024);
      let redelivered = 0;
      const started = Date.now();
      // Each webhook goes to a random replica; one in four is also redelivered to the other at the same time
      // (a channel retrying through the load balancer).
      const statuses = await sendThreads(sent, (m) => {
        const [first, other] = random() < 0.5 ? [a, b] : [b, a];
        if (random() >= 0.25) return Promise.all([deliver(first.url, m)]);
        redelivered++;
        return Promise.all([deliver(first.url, m), deliver(other.url, m, 1)]);
      });
      expect(statuses.filter((s) => s !== 200)).toEqual([]);

      await waitFor(
        () => answeredCount(tally(world.fakes), sent) === sent.length,
        WAIT_MS,
        "every message answered",
      );
      const drainedMs = Date.now() - started;
      await new Promise((r) => setTimeout(r, 500)); // a late duplicate would show up here
      expectExactlyOnceInOrder(world, sent, `replicas (${redelivered} also redelivered)`, drainedMs);

      // Both processes did the work: each finished a share, and together exactly one finish per message. A
      // finish is counted after its row is written, which is after the reply reached the channel.
      const finished = () =>
        Promise.all(
          [a, b].map((s) => metric(s.url, "bridge_messages_finished_total", { status: "delivered" })),
        );
      await waitFor(
        async () => (await finished()).reduce((sum, n) => sum + n, 0) >= sent.length,
        10_000,
        "every message counted as delivered",
      );
      const delivered = await finished();
      console.log(
        `replicas: delivered per process ${delivered.join(" + ")} = ${delivered[0]! + delivered[1]!}`,
      );
      expect(delivered[0]).toBeGreaterThan(0);
      expect(delivered[1]).toBeGreaterThan(0);
      expect(delivered[0]! + delivered[1]!).toBe(sent.length);
    },
    TIMEOUT_MS,
  );

  it(
    "one replica stops mid-traffic: the other finishes every thread, once each and in order",
    async () => {
      // New threads, so this scenario's counts are its own.
      const sent = messages(CHANNELS, THREADS, PER_THREAD).map((m) => ({ ...m, thread: m.thread + THREADS }));
      const random = randomFrom(0x0dd_ba11);
      const deliveredBefore = await metric(b.url, "bridge_messages_finished_total", { status: "delivered" });
      let failedOver = 0;
      const started = Date.now();
      // A third of the way through, replica A is told to stop (SIGTERM): it drains, returns what it could not
      // finish, and exits, while webhooks keep coming.
      const stopped = waitFor(
        () => answeredCount(tally(world.fakes), sent) >= sent.length / 3,
        WAIT_MS,
        "a third answered",
      ).then(() => a.stop());
      const statuses = await sendThreads(sent, async (m) => {
        const first = a.running && random() < 0.5 ? a : b;
        const status = await tryDeliver(first.url, m);
        if (status === 200) return [status];
        // A draining or gone replica: the channel redelivers, and the load balancer picks the live one.
        failedOver++;
        return [await deliver(b.url, m, 1)];
      });
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(await stopped).toBe(0);

      await waitFor(
        () => answeredCount(tally(world.fakes), sent) === sent.length,
        WAIT_MS,
        "every message answered",
      );
      const drainedMs = Date.now() - started;
      await new Promise((r) => setTimeout(r, 500));
      expectExactlyOnceInOrder(
        world,
        sent,
        `replica stopped (${failedOver} webhooks failed over)`,
        drainedMs,
      );
      const byB =
        (await metric(b.url, "bridge_messages_finished_total", { status: "delivered" })) - deliveredBefore;
      console.log(`replica stopped: the remaining replica finished ${byB} of ${sent.length}`);
      expect(byB).toBeGreaterThan(0);
      expect(byB).toBeLessThanOrEqual(sent.length);
    },
    TIMEOUT_MS,
  );
});
