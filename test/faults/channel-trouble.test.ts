import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { outsideWindow, rateLimited, serverError } from "../fakes/twilio.js";
import { waitFor } from "../support/harness.js";
import { FaultWorld, IDS, POSTGRES_AVAILABLE, type ServiceProcess, size } from "./support/service.js";
import {
  byMarker,
  metric,
  openInbox,
  overlappingThreads,
  quickchatCalls,
  sendAttempts,
} from "./support/timeline.js";
import {
  CHANNELS,
  type Channel,
  deliver,
  inParallel,
  type Message,
  markerOf,
  messages,
  outOfOrderThreads,
  tally,
  threadKeyOf,
} from "./support/traffic.js";

/** The retry hint of the 429s, in seconds: longer than the other threads need to drain. */
const HINT_SECONDS = size(5, 15);
/** Per scenario; the full sizes run for minutes on a loaded 2-core machine. */
const TIMEOUT_MS = size(60_000, 300_000);
const WAIT_MS = TIMEOUT_MS - 10_000;
const THREADS = size(6, 30);
const PER_THREAD = size(3, 8);
/** The service's first backoff step (RETRY_BASE_MS in the fault world); a retry waits at least half of it. */
const MIN_BACKOFF_MS = 50;

// Each scenario uses its own range of thread numbers, so its counts are its own.
const RANGES = { rateLimit: 0, burst: 1000, permanent: 2000 };

/** Where a thread's replies go: Telegram chat, Slack DM channel, WhatsApp number (as `webhookFor` builds them). */
const chatOf = (thread: number) => 6_000_000 + thread;
const slackChannelOf = (thread: number) => `D0FAULT${thread}`;
const numberOf = (thread: number) => `whatsapp:+3161${String(thread).padStart(7, "0")}`;

/** Each thread's messages in seq order (the next after the previous was acknowledged); threads in parallel. */
async function sendInOrder(url: string, sent: Message[]): Promise<number[]> {
  const threads = new Map<string, Message[]>();
  for (const m of sent) threads.set(threadKeyOf(m), [...(threads.get(threadKeyOf(m)) ?? []), m]);
  const statuses: number[] = [];
  await inParallel(
    [...threads.values()].map((thread) => async () => {
      for (const m of [...thread].sort((a, b) => a.seq - b.seq)) statuses.push(await deliver(url, m));
    }),
    64,
  );
  return statuses;
}

const shift = (list: Message[], by: number) => list.map((m) => ({ ...m, thread: m.thread + by }));
const okReplies = (world: FaultWorld, m: Message) =>
  byMarker(sendAttempts(world.fakes), m).filter((e) => e.ok);
const allAnswered = (world: FaultWorld, sent: Message[]) => {
  const answered = new Set(
    sendAttempts(world.fakes)
      .filter((e) => e.ok)
      .map((e) => e.marker),
  );
  return sent.every((m) => answered.has(markerOf(m)));
};

/** One Quickchat call and one accepted reply per message; calls and replies in per-thread order. */
function expectOnceEachInOrder(world: FaultWorld, sent: Message[]) {
  const t = tally(world.fakes);
  const keys = new Set(sent.map(threadKeyOf));
  const pick = (order: Map<string, number[]>) => new Map([...order].filter(([key]) => keys.has(key)));
  expect(sent.filter((m) => t.calls.get(markerOf(m)) !== 1).map(markerOf)).toEqual([]);
  expect(sent.filter((m) => t.replies.get(markerOf(m)) !== 1).map(markerOf)).toEqual([]);
  expect(outOfOrderThreads(pick(t.callOrder))).toEqual([]);
  expect(outOfOrderThreads(pick(t.replyOrder))).toEqual([]);
  expect(overlappingThreads(world.fakes, sent)).toEqual([]);
}

describe.runIf(POSTGRES_AVAILABLE)("channel trouble: 429s, 5xx bursts and permanent 4xx", () => {
  let world: FaultWorld;
  let service: ServiceProcess;
  const retries = () => metric(service.url, "bridge_outbound_sends_total", { outcome: "retry" });
  const permanents = () => metric(service.url, "bridge_outbound_sends_total", { outcome: "permanent" });

  beforeAll(async () => {
    world = await FaultWorld.create();
    service = await world.startService();
  });
  afterAll(() => world?.close());

  it(
    `a 429 with a ${HINT_SECONDS} s hint holds its thread that long, and no other thread`,
    async () => {
      const victims = CHANNELS.map((channel) => ({ channel, thread: RANGES.rateLimit }));
      const { telegram, slack, twilio } = world.fakes;
      const thread = RANGES.rateLimit;
      telegram.failChat(chatOf(thread), "sendMessage", { kind: "flood", retryAfter: HINT_SECONDS });
      slack.failChannel(slackChannelOf(thread), "chat.postMessage", {
        status: 429,
        retryAfter: String(HINT_SECONDS),
      });
      twilio.failTo(numberOf(thread), rateLimited(HINT_SECONDS));
      const retriesBefore = await retries();

      // Each victim thread's first message meets the 429...
      const first = victims.map((v) => ({ ...v, seq: 0 }));
      expect(await Promise.all(first.map((m) => deliver(service.url, m)))).toEqual([200, 200, 200]);
      await waitFor(
        () => first.every((m) => byMarker(sendAttempts(world.fakes), m).some((e) => e.status === 429)),
        WAIT_MS,
        "every victim rate limited",
      );
      const limitedAt = new Map(
        first.map((m) => [
          m.channel,
          byMarker(sendAttempts(world.fakes), m).find((e) => e.status === 429)!.at,
        ]),
      );

      // ...then its second message, and traffic on other threads, arrive while it waits.
      const second = victims.map((v) => ({ ...v, seq: 1 }));
      const others = shift(messages(CHANNELS, THREADS, PER_THREAD), RANGES.rateLimit + 1);
      const started = Date.now();
      const statuses = await sendInOrder(service.url, [...second, ...others]);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      await waitFor(() => allAnswered(world, others), WAIT_MS, "other threads answered");
      const othersDrainedMs = Date.now() - started;
      await waitFor(() => allAnswered(world, [...first, ...second]), WAIT_MS, "victims answered");
      await new Promise((r) => setTimeout(r, 500)); // a late duplicate would show up here

      const waits = first.map((m) => okReplies(world, m)[0]!.at - limitedAt.get(m.channel)!);
      const firstRetryAt = Math.min(...first.map((m) => okReplies(world, m)[0]!.at));
      const lastOtherAt = Math.max(...others.map((m) => okReplies(world, m)[0]!.at));
      const observed = (await retries()) - retriesBefore;
      console.log(
        `429: hint ${HINT_SECONDS} s, victims waited ${waits.join("/")} ms (telegram/slack/whatsapp); ` +
          `${others.length} messages on ${THREADS * CHANNELS.length} other threads drained in ${othersDrainedMs} ms, ` +
          `last other reply ${firstRetryAt - lastOtherAt} ms before the first victim's retry; retries observed: ${observed}`,
      );
      // The thread waited at least the hint, and exactly one retry per 429.
      for (const wait of waits) expect(wait).toBeGreaterThanOrEqual(HINT_SECONDS * 1000);
      for (const m of first)
        expect(byMarker(sendAttempts(world.fakes), m).map((e) => e.status)).toHaveLength(2);
      expect(observed).toBe(victims.length);
      // Nobody else waited: every other thread was answered before any victim's retry.
      expect(lastOtherAt).toBeLessThan(firstRetryAt);
      // The victim's second message waited its turn, behind the first.
      for (const m of second)
        expect(okReplies(world, m)[0]!.at).toBeGreaterThan(okReplies(world, { ...m, seq: 0 })[0]!.at);
      expectOnceEachInOrder(world, [...first, ...second, ...others]);
    },
    TIMEOUT_MS,
  );

  it(
    "a 5xx burst on every channel: each failed send is retried after a backoff, answered once",
    async () => {
      const burst = size(10, 40);
      const { telegram, slack, twilio } = world.fakes;
      telegram.failNext("sendMessage", { kind: "server_error" }, burst / 2);
      telegram.failNext("sendMessage", { kind: "bad_gateway" }, burst / 2);
      slack.fail("chat.postMessage", { status: 503 }, burst / 2);
      slack.fail("chat.postMessage", { status: 500 }, burst / 2 - 1);
      slack.fail("chat.postMessage", { status: 429 }, 1); // rate limited without a hint: back off all the same
      twilio.failNext(...Array.from({ length: burst }, serverError));
      const retriesBefore = await retries();
      const attemptsBefore = sendAttempts(world.fakes).length;

      const sent = shift(messages(CHANNELS, THREADS, PER_THREAD), RANGES.burst);
      const started = Date.now();
      const statuses = await sendInOrder(service.url, sent);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      await waitFor(() => allAnswered(world, sent), WAIT_MS, "every message answered");
      const drainedMs = Date.now() - started;
      await new Promise((r) => setTimeout(r, 500));

      const attempts = sendAttempts(world.fakes).slice(attemptsBefore);
      const failed = attempts.filter((e) => !e.ok);
      // Every failed attempt is followed by another attempt of the same message, not sooner than the backoff.
      const gaps = failed.map((f) => {
        const next = attempts.find((e) => e.marker === f.marker && e.at > f.at);
        return next ? next.at - f.at : Number.NaN;
      });
      const observed = (await retries()) - retriesBefore;
      const failedBy = (channel: Channel) => failed.filter((e) => e.channel === channel).length;
      console.log(
        `5xx burst: ${sent.length} messages, ${burst} failures injected per channel, drained in ${drainedMs} ms; ` +
          `failed sends ${CHANNELS.map(failedBy).join("/")} (telegram/slack/whatsapp), retries observed ${observed}, ` +
          `retry gaps ${Math.min(...gaps)}–${Math.max(...gaps)} ms`,
      );
      for (const channel of CHANNELS) expect(failedBy(channel)).toBe(burst);
      expect(failed.map((e) => e.status).filter((s) => s < 500 && s !== 429)).toEqual([]);
      expect(gaps.filter((g) => !(g >= MIN_BACKOFF_MS))).toEqual([]);
      expect(observed).toBe(failed.length);
      expectOnceEachInOrder(world, sent);
    },
    TIMEOUT_MS,
  );

  it(
    "permanent 4xx: that message fails without a retry, its thread and the others go on",
    async () => {
      const base = RANGES.permanent;
      const blockedChat = base + 3; // Telegram: the user blocked the bot for good
      const { telegram, slack, twilio } = world.fakes;
      const cases: { channel: Channel; thread: number; code: string; inject(thread: number): void }[] = [
        {
          channel: "telegram",
          thread: base,
          code: "403",
          inject: (t) => telegram.failChat(chatOf(t), "sendMessage", { kind: "blocked" }),
        },
        {
          channel: "telegram",
          thread: base + 1,
          code: "400",
          inject: (t) => telegram.failChat(chatOf(t), "sendMessage", { kind: "chat_not_found" }),
        },
        {
          channel: "slack",
          thread: base,
          code: "channel_not_found",
          inject: (t) =>
            slack.failChannel(slackChannelOf(t), "chat.postMessage", { error: "channel_not_found" }),
        },
        {
          channel: "slack",
          thread: base + 1,
          code: "is_archived",
          inject: (t) => slack.failChannel(slackChannelOf(t), "chat.postMessage", { error: "is_archived" }),
        },
        {
          channel: "slack",
          thread: base + 2,
          code: "http_404",
          inject: (t) => slack.failChannel(slackChannelOf(t), "chat.postMessage", { status: 404 }),
        },
        {
          channel: "whatsapp",
          thread: base,
          code: "63016",
          inject: (t) => twilio.failTo(numberOf(t), outsideWindow()),
        },
        {
          channel: "whatsapp",
          thread: base + 1,
          code: "21610",
          inject: (t) =>
            twilio.failTo(numberOf(t), {
              status: 400,
              code: 21610,
              message: "Attempt to send to unsubscribed recipient",
            }),
        },
      ];
      for (const c of cases) c.inject(c.thread);
      telegram.blockChat(chatOf(blockedChat));
      const permanentsBefore = await permanents();
      const retriesBefore = await retries();

      // Each victim thread: its first message fails, its second goes through. The blocked chat fails all.
      const victims = cases.flatMap((c) =>
        [0, 1].map((seq) => ({ channel: c.channel, thread: c.thread, seq })),
      );
      const blocked = [0, 1, 2].map((seq) => ({ channel: "telegram" as const, thread: blockedChat, seq }));
      const others = shift(messages(CHANNELS, THREADS, PER_THREAD), base + 10);
      const sent = [...victims, ...blocked, ...others];
      const expectFailed = [
        ...cases.map((c) => ({ channel: c.channel, thread: c.thread, seq: 0 })),
        ...blocked,
      ];
      const started = Date.now();
      const statuses = await sendInOrder(service.url, sent);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      const inbox = openInbox(world.database.url!);
      onTestFinished(() => inbox.close());
      const finished = async () => {
        const states = await inbox.states();
        return sent.every((m) => ["delivered", "failed"].includes(states.get(markerOf(m))?.status ?? ""));
      };
      await waitFor(finished, WAIT_MS, "every message delivered or failed");
      const drainedMs = Date.now() - started;
      await new Promise((r) => setTimeout(r, 500));

      const states = await inbox.states();
      const failedMarkers = new Set(expectFailed.map(markerOf));
      const attemptsOf = (m: Message) => byMarker(sendAttempts(world.fakes), m);
      const statusOf = (m: Message) => states.get(markerOf(m))?.status;
      const failedAsked = expectFailed.map((m) => attemptsOf(m).length);
      const admin = await fetch(`${service.url}/admin/messages?status=failed&limit=100`, {
        headers: { authorization: `Bearer ${IDS.adminToken}` },
      });
      const listed = (await admin.json()) as { count: number; items: { text: string; error: string }[] };
      console.log(
        `permanent 4xx: ${sent.length} messages, ${expectFailed.length} failing, finished in ${drainedMs} ms; ` +
          `send attempts of the failing ones: ${failedAsked.join(",")}; permanent sends counted ` +
          `${(await permanents()) - permanentsBefore}, retries ${(await retries()) - retriesBefore}; ` +
          `admin API lists ${listed.count} failed`,
      );
      // The failing messages: one send each, no retry, failed with the channel's code on the part.
      expect(expectFailed.filter((m) => statusOf(m) !== "failed").map(markerOf)).toEqual([]);
      expect(failedAsked.filter((n) => n !== 1)).toEqual([]);
      expect((await retries()) - retriesBefore).toBe(0);
      expect((await permanents()) - permanentsBefore).toBe(expectFailed.length);
      for (const c of cases) {
        const state = states.get(markerOf({ ...c, seq: 0 }))!;
        expect(state.parts).toEqual([{ part: 0, status: "failed", error_code: c.code }]);
        expect(state.error).toMatch(new RegExp(`^${c.channel} send failed: `));
      }
      for (const m of blocked)
        expect(states.get(markerOf(m))!.parts).toEqual([{ part: 0, status: "failed", error_code: "403" }]);
      // The admin API shows exactly these as failed (retryable by an operator).
      expect(listed.count).toBe(expectFailed.length);
      expect(new Set(listed.items.map((i) => i.text))).toEqual(failedMarkers);
      // Everything else was delivered once, in order, including the victims' later messages.
      const delivered = sent.filter((m) => !failedMarkers.has(markerOf(m)));
      expect(delivered.filter((m) => statusOf(m) !== "delivered").map(markerOf)).toEqual([]);
      const t = tally(world.fakes);
      expect(sent.filter((m) => t.calls.get(markerOf(m)) !== 1).map(markerOf)).toEqual([]);
      expect(delivered.filter((m) => t.replies.get(markerOf(m)) !== 1).map(markerOf)).toEqual([]);
      // A victim's second message was taken up only after its first had failed.
      for (const c of cases) {
        const failedAt = attemptsOf({ ...c, seq: 0 })[0]!.at;
        const next = quickchatCalls(world.fakes).find((e) => e.marker === markerOf({ ...c, seq: 1 }))!;
        expect(next.at).toBeGreaterThanOrEqual(failedAt);
      }
      expect(outOfOrderThreads(t.callOrder)).toEqual([]);
      expect(overlappingThreads(world.fakes, others)).toEqual([]);
    },
    TIMEOUT_MS,
  );
});
