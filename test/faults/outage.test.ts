import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/harness.js";
import {
  failedMessages,
  Inbox,
  markerIn,
  retryMessage,
  type Send,
  sendsByThread,
  sleep,
} from "./support/outcomes.js";
import { FaultWorld, POSTGRES_AVAILABLE, type ServiceProcess, size } from "./support/service.js";
import {
  CHANNELS,
  deliver,
  inParallel,
  type Message,
  markerOf,
  messages,
  tally,
  threadKeyOf,
} from "./support/traffic.js";

/** Quickchat answers 503 this long, while the messages arrive. */
const OUTAGE_MS = size(8_000, 30_000);
/** QUICKCHAT_MAX_RETRY_SECONDS: a thread's first messages give up during the outage, the later ones wait. */
const GIVE_UP_SECONDS = size(3, 10);
const THREADS = size(6, 20);
const PER_THREAD = 5;
/** Each thread's messages arrive in order, spread over the first part of the outage. */
const ARRIVAL_SPAN_MS = OUTAGE_MS * 0.4;

const UNAVAILABLE = "Sorry, I can't answer right now. Please try again in a few minutes.";

/** A thread's sends as the user saw them: `U` for the unavailable text, else the answered message's seq. */
function transcript(sends: Send[]): (number | "U")[] {
  return sends.map((s) => {
    if (s.text === UNAVAILABLE) return "U";
    const marker = markerIn(s.text);
    if (!marker) throw new Error(`unexpected send: ${s.text}`);
    return Number(marker.split("-").at(-1));
  });
}

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

describe.runIf(POSTGRES_AVAILABLE)("Quickchat outage", () => {
  let world: FaultWorld;
  let service: ServiceProcess;
  let inbox: Inbox;

  beforeAll(async () => {
    world = await FaultWorld.create({ QUICKCHAT_MAX_RETRY_SECONDS: String(GIVE_UP_SECONDS) });
    service = await world.startService();
    inbox = new Inbox(world.database.url!);
  });
  afterAll(async () => {
    await inbox?.close();
    await world?.close();
  });

  it(
    `503 for ${OUTAGE_MS / 1000} s while ${CHANNELS.length * THREADS * PER_THREAD} messages arrive: the unavailable text for those whose retries ran out, then every message answered in thread order`,
    async () => {
      const sent = messages(CHANNELS, THREADS, PER_THREAD);
      const byThread = new Map<string, Message[]>();
      for (const m of sent) byThread.set(threadKeyOf(m), [...(byThread.get(threadKeyOf(m)) ?? []), m]);
      const quickchat = world.fakes.quickchat;

      quickchat.outage = true;
      const started = Date.now();
      const recovery = sleep(OUTAGE_MS).then(() => {
        quickchat.outage = false;
        return Date.now();
      });
      // One lane per thread, its messages in seq order; each webhook is acknowledged despite the outage.
      const gap = ARRIVAL_SPAN_MS / PER_THREAD;
      const statuses = (
        await inParallel(
          [...byThread.values()].map((thread, lane) => async () => {
            await sleep((lane / byThread.size) * gap);
            const codes: number[] = [];
            for (const m of thread) {
              codes.push(await deliver(service.url, m));
              await sleep(gap);
            }
            return codes;
          }),
          byThread.size,
        )
      ).flat();
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(quickchat.outage).toBe(true); // the traffic arrived during the outage
      const recoveredAt = await recovery;

      await waitFor(async () => (await inbox.counts()).unfinished === 0, 120_000, "the inbox to drain");
      const drainedMs = Date.now() - recoveredAt;

      // Before any admin retry: each thread's first messages gave up (one unavailable text each, in their
      // place), the rest were answered after recovery, in order.
      const failed = await failedMessages(service.url);
      const failedMarkers = new Set(failed.map((f) => markerIn(f.text ?? "")));
      const threads = sendsByThread(world.fakes);
      const gaveUp = new Map<string, number>();
      for (const [key, thread] of byThread) {
        const failedSeqs = thread.filter((m) => failedMarkers.has(markerOf(m))).map((m) => m.seq);
        const f = failedSeqs.length;
        gaveUp.set(key, f);
        expect(failedSeqs, `${key}: the messages that gave up are the thread's first`).toEqual(range(0, f));
        expect(transcript(threads.get(key) ?? []), `${key} before the admin retry`).toEqual([
          ...Array(f).fill("U"),
          ...range(f, PER_THREAD),
        ]);
      }
      const failedCount = failed.length;
      const answeredCount = sent.length - failedCount;
      // Both outcomes really happened.
      expect(failedCount).toBeGreaterThan(0);
      expect(answeredCount).toBeGreaterThan(0);
      for (const f of failed) {
        expect(f.error).toMatch(/Quickchat answered 503/);
        // It gave up only after retrying for its window (the last backoff step may end it up to 1 s early).
        const calls = quickchat.calls.filter((c) => c.body.text === f.text).map((c) => c.at);
        expect(calls.length).toBeGreaterThan(1);
        expect(Math.max(...calls) - Math.min(...calls)).toBeGreaterThan(GIVE_UP_SECONDS * 1000 - 1_500);
        // Answered 503, so before the outage ended; the clock's milliseconds may equal recoveredAt.
        expect(Math.max(...calls)).toBeLessThanOrEqual(recoveredAt);
      }

      // Retry each failed message through the admin API, oldest first (per-thread order).
      const retryStarted = Date.now();
      for (const f of [...failed].sort((a, b) => a.id - b.id)) {
        const answer = await retryMessage(service.url, f.id);
        expect(answer).toEqual({ status: 200, body: { id: f.id, status: "pending" } });
      }
      await waitFor(async () => (await inbox.counts()).unfinished === 0, 120_000, "the retried messages");
      const retriedMs = Date.now() - retryStarted;

      const counts = await inbox.counts();
      expect(counts).toEqual({ unfinished: 0, failed: 0, total: sent.length });
      const t = tally(world.fakes);
      expect(sent.filter((m) => t.replies.get(markerOf(m)) !== 1).map(markerOf)).toEqual([]);
      const after = sendsByThread(world.fakes);
      for (const [key, f] of gaveUp) {
        expect(transcript(after.get(key) ?? []), `${key} after the admin retry`).toEqual([
          ...Array(f).fill("U"),
          ...range(f, PER_THREAD),
          ...range(0, f),
        ]);
      }
      console.log(
        `outage: ${sent.length} messages, Quickchat 503 for ${OUTAGE_MS} ms (give-up ${GIVE_UP_SECONDS} s), ` +
          `${quickchat.calls.length} Quickchat calls; gave up (unavailable text): ${failedCount}, ` +
          `answered after recovery: ${answeredCount}, drained ${drainedMs} ms after recovery; ` +
          `${failedCount} retried through the admin API, answered in ${retriedMs} ms; ` +
          `total ${Date.now() - started} ms`,
      );
    },
    OUTAGE_MS + 150_000,
  );
});
