import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/harness.js";
import { deliverUntilAccepted, freePort, Inbox, markerIn, seeded, sleep } from "./support/outcomes.js";
import { describeRepeats, type InFlight, inFlightAt, repeatsAfterKills } from "./support/repeats.js";
import { FaultWorld, POSTGRES_AVAILABLE, type ServiceProcess, size } from "./support/service.js";
import {
  CHANNELS,
  inParallel,
  type Message,
  markerOf,
  messages,
  outOfOrderThreads,
  sentTexts,
  tally,
  threadKeyOf,
} from "./support/traffic.js";

const THREADS = size(10, 28);
const PER_THREAD = 6;
/** SIGKILLs, at seeded random moments while the traffic arrives. */
const KILLS = size(3, 6);
/** The traffic is spread over this long, so the kills land among messages in every stage. */
const SPAN_MS = size(9_000, 24_000);
/** Quickchat's answer time: keeps messages in flight at each kill. */
const QUICKCHAT_LATENCY_MS = 40;
const SEED = 0x5eed_c4a5;

interface Kill {
  /** When SIGKILL was sent. */
  signalled: number;
  /** When the restarted process was listening again. */
  up: number;
  /** What the killed process had in flight. */
  inFlight: InFlight;
}

describe.runIf(POSTGRES_AVAILABLE)("crash and restart", () => {
  let world: FaultWorld;
  let inbox: Inbox;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    world = await FaultWorld.create({ PORT: String(port) });
    world.fakes.quickchat.latencyMs = QUICKCHAT_LATENCY_MS;
    inbox = new Inbox(world.database.url!);
  });
  afterAll(async () => {
    await inbox?.close();
    await world?.close();
  });

  it(
    `${CHANNELS.length * THREADS * PER_THREAD} messages, SIGKILL ${KILLS} times and restart: every message answered, a repeat only for a send in flight at a kill`,
    async () => {
      const random = seeded(SEED);
      const sent = messages(CHANNELS, THREADS, PER_THREAD);
      const byThread = new Map<string, Message[]>();
      for (const m of sent) byThread.set(threadKeyOf(m), [...(byThread.get(threadKeyOf(m)) ?? []), m]);
      const baseUrl = `http://127.0.0.1:${port}`;

      let service: ServiceProcess = await world.startService();
      expect(service.url).toBe(baseUrl);
      const processes = new Set<string>();
      let processId = await inbox.newProcess(processes);
      const started = Date.now();

      // The channels: one lane per thread, each message redelivered until accepted, then the next one.
      const gap = SPAN_MS / PER_THREAD;
      const traffic = inParallel(
        [...byThread.values()].map((thread) => {
          const offsets = thread.map(() => random());
          return async () => {
            let deliveries = 0;
            for (const [i, m] of thread.entries()) {
              await sleep(offsets[i]! * gap);
              deliveries += await deliverUntilAccepted(baseUrl, m);
            }
            return deliveries;
          };
        }),
        byThread.size,
      );

      // The killer: SIGKILL at random moments over the span, restart after a short random pause.
      const kills: Kill[] = [];
      const moments = Array.from({ length: KILLS }, () => (0.1 + 0.9 * random()) * SPAN_MS).sort(
        (a, b) => a - b,
      );
      const pauses = moments.map(() => random() * 300);
      for (const [i, moment] of moments.entries()) {
        await sleep(Math.max(0, started + moment - Date.now()));
        const signalled = Date.now();
        await service.kill();
        const inFlight = await inFlightAt(world.fakes, inbox, await inbox.leased(processId));
        await sleep(pauses[i]!);
        service = await world.startService();
        processId = await inbox.newProcess(processes);
        kills.push({ signalled, up: Date.now(), inFlight });
      }
      const lastRestart = Date.now();

      const deliveries = (await traffic).reduce((a, b) => a + b, 0);
      const accepted = Date.now();
      await waitFor(
        async () => {
          const counts = await inbox.counts();
          return counts.total === sent.length && counts.unfinished === 0;
        },
        120_000,
        "every message finished",
      );
      const drained = Date.now();

      const counts = await inbox.counts();
      expect(counts).toEqual({ unfinished: 0, failed: 0, total: sent.length });
      const t = tally(world.fakes);
      expect(sent.filter((m) => !t.replies.has(markerOf(m))).map(markerOf), "unanswered").toEqual([]);
      expect(
        sentTexts(world.fakes).filter((s) => !markerIn(s.text)),
        "sends that answer nothing",
      ).toEqual([]);
      expect(outOfOrderThreads(t.replyOrder), "threads answered out of order").toEqual([]);
      expect(outOfOrderThreads(t.callOrder), "threads asked out of order").toEqual([]);

      // Repeats: only of what a killed process had in flight, at most once per kill.
      const repeats = repeatsAfterKills(
        world.fakes,
        kills.map((k) => k.inFlight),
      );
      console.log(
        `crash: ${sent.length} messages (${deliveries} webhook deliveries), ${kills.length} SIGKILLs at ` +
          `${kills.map((k) => `${k.signalled - started}`).join("/")} ms (down ${kills.map((k) => k.up - k.signalled).join("/")} ms); ` +
          `${describeRepeats(repeats)}; all accepted after ${accepted - started} ms, drained ` +
          `${drained - lastRestart} ms after the last restart (${drained - started} ms in all)`,
      );
      expect(repeats.unexplainedReplies, "duplicate replies not in flight at a kill").toEqual([]);
      expect(repeats.unexplainedCalls, "repeated Quickchat calls not in flight at a kill").toEqual([]);
      expect(repeats.duplicateReplies).toBeLessThanOrEqual(repeats.sendsInFlight);
      expect(repeats.repeatedCalls).toBeLessThanOrEqual(repeats.callsInFlight);
    },
    SPAN_MS + 150_000,
  );
});
