/**
 * The benchmark's loopback fakes (Quickchat, Telegram, Slack, Twilio), run as a child process of bench/run.ts
 * so they share an event loop with neither the service nor the load generator. Controlled over IPC.
 *
 * Every webhook the load generator sends carries a marker `m<seq>w<epoch ms>` in its text; Quickchat echoes
 * it and the channel fakes find it in the outbound send, so each message's timeline is recorded here:
 * Quickchat arrival and answer, and the first outbound send.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { QuickchatFake } from "../test/fakes/quickchat.js";
import { createSlackFake } from "../test/fakes/slack.js";
import { createTelegramFake } from "../test/fakes/telegram.js";
import { createTwilioFake } from "../test/fakes/twilio.js";
import { BENCH_IDS, type FakesReply, type FakesRequest, type MessageTimeline, now } from "./shared.js";

const MARKER = /m(\d+)w(\d+\.\d+)/;

interface Timeline {
  webhookAt: number;
  qcArrive?: number;
  qcDone?: number;
  firstSend?: number;
  sends: number;
}

const timelines = new Map<number, Timeline>();
let sendCount = 0;
let qcCalls = 0;
let qcPending = 0;
let firstQuickchatAt = 0;
let firstSendAt = 0;
let lastSendAt = 0;
/** While set, Quickchat holds every request without answering (an outage); `answer` opens the gate. */
let holding: { gate: Promise<void>; open: () => void } | undefined;

function hold(): void {
  if (holding) return;
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  holding = { gate, open };
}

function timeline(marker: RegExpMatchArray): Timeline {
  const id = Number(marker[1]);
  let entry = timelines.get(id);
  if (!entry) {
    entry = { webhookAt: Number(marker[2]), sends: 0 };
    timelines.set(id, entry);
  }
  return entry;
}

const quickchat = new QuickchatFake({
  scenarios: { [BENCH_IDS.scenario]: BENCH_IDS.quickchatToken },
  reply: (text, _convId, ord) => {
    const marker = text.match(MARKER);
    if (marker) timeline(marker).qcDone = now();
    return `You said: <b>${text}</b><br>(message ${ord})`;
  },
});
// The fake's Hono app is private; it is served here behind a wrapper that timestamps arrivals.
const quickchatApp = (quickchat as unknown as { app(): Hono }).app();

const telegram = createTelegramFake();
telegram.addBot(BENCH_IDS.telegramToken, {
  id: 7000001,
  is_bot: true,
  first_name: "Bench",
  username: "bench_bot",
  can_join_groups: true,
  can_read_all_group_messages: false,
  supports_inline_queries: false,
  can_connect_to_business: false,
  has_main_web_app: false,
} as Parameters<typeof telegram.addBot>[1]);

const slack = createSlackFake({
  bots: [
    { token: BENCH_IDS.slackBotToken, teamId: BENCH_IDS.slackTeam, userId: "UBOTFAKE", botId: "BBOTFAKE" },
  ],
  users: [{ id: "U0BENCHUSER", name: "bench", realName: "Bench User" }],
});

const twilio = createTwilioFake({ [BENCH_IDS.twilioSid]: BENCH_IDS.twilioToken });

function serveOn(app: Hono): Promise<string> {
  return new Promise((resolve) => {
    serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch }, (info) =>
      resolve(`http://127.0.0.1:${info.port}`),
    );
  });
}

/**
 * Serves a fake behind a middleware that records the marker of every successful request whose path matches
 * `isSend`. The middleware reads the body through Hono's body cache, which the fake's own parsing reuses (a
 * cloned Request cost the fakes process more CPU than the fake itself).
 */
function serveRecording(fake: Hono, isSend: (path: string) => boolean): Promise<string> {
  const app = new Hono();
  app.use(async (c, next) => {
    if (!isSend(c.req.path)) return next();
    const at = now();
    const marker = (await c.req.text()).match(MARKER);
    await next();
    if (marker && c.res.status < 300) {
      const entry = timeline(marker);
      entry.sends++;
      entry.firstSend ??= at;
      sendCount++;
      if (firstSendAt === 0) firstSendAt = at;
      lastSendAt = at;
    }
  });
  app.route("/", fake);
  return serveOn(app);
}

function serveQuickchat(): Promise<string> {
  const app = new Hono();
  app.use(async (c, next) => {
    const at = now();
    qcCalls++;
    qcPending++;
    if (firstQuickchatAt === 0) firstQuickchatAt = at;
    const marker = (await c.req.text()).match(MARKER);
    if (marker) timeline(marker).qcArrive = at;
    try {
      if (holding) await holding.gate;
      await next();
    } finally {
      qcPending--;
    }
  });
  app.route("/", quickchatApp);
  return serveOn(app);
}

const urls = {
  quickchat: await serveQuickchat(),
  telegram: await serveRecording(telegram.app, (p) => p.endsWith("/sendMessage")),
  slack: await serveRecording(slack.app, (p) => p.endsWith("/chat.postMessage")),
  twilio: await serveRecording(twilio.app, (p) => p.endsWith("/Messages.json")),
};

function reset(): void {
  timelines.clear();
  sendCount = 0;
  qcCalls = 0;
  firstQuickchatAt = 0;
  firstSendAt = 0;
  lastSendAt = 0;
  // The fakes keep every call for assertions; the bench does not need them.
  quickchat.calls.length = 0;
  telegram.calls.length = 0;
  slack.calls.length = 0;
  slack.posted.length = 0;
  twilio.calls.length = 0;
}

function answer(request: FakesRequest): FakesReply {
  switch (request.type) {
    case "latency":
      quickchat.latencyMs = request.ms;
      return { type: "ok" };
    case "reset":
      reset();
      return { type: "ok" };
    case "hold":
      hold();
      return { type: "ok" };
    case "answer":
      holding?.open();
      holding = undefined;
      return { type: "answered", at: now() };
    case "counts":
      return {
        type: "counts",
        sends: sendCount,
        qcCalls,
        qcPending,
        firstQuickchatAt,
        firstSendAt,
        lastSendAt,
      };
    case "timelines": {
      const list: MessageTimeline[] = [];
      for (const [id, t] of timelines) {
        list.push({
          id,
          webhookAt: t.webhookAt,
          ...(t.qcArrive !== undefined && { qcArrive: t.qcArrive }),
          ...(t.qcDone !== undefined && { qcDone: t.qcDone }),
          ...(t.firstSend !== undefined && { firstSend: t.firstSend }),
        });
      }
      return { type: "timelines", list };
    }
  }
}

process.on("message", (message: { seq: number; request: FakesRequest }) => {
  process.send?.({ seq: message.seq, reply: answer(message.request) });
});
process.on("disconnect", () => process.exit(0));
// An orderly exit, so that a CPU profile (BENCH_CPU_PROF) is written.
process.on("SIGTERM", () => process.exit(0));
process.send?.({ seq: 0, reply: { type: "ready", urls } });
