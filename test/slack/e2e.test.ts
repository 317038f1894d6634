import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inboundMessages } from "../../src/db/schema.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import {
  createSlackFake,
  type FakeSlack,
  type FakeSlackBot,
  type SlackMessageFields,
  slackEventHeaders,
  slackPayloads,
} from "../fakes/slack.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { guardUnexpected } from "../support/unexpected.js";

/**
 * The whole service over HTTP: signed Events API deliveries in, the real WebClient out to the Slack fake,
 * Quickchat's fake in between, PGlite as the inbox.
 */

const BOT: FakeSlackBot = { token: "xoxb-acme", teamId: "T0ACME", userId: "U0BOT", botId: "B0BOT" };
const SIGNING_SECRET = "acme-slack-signing-secret";
const TEAM = BOT.teamId;
const DM = "D0ALICE";
const CHANNEL = "C0GENERAL";
const ALICE = "U0ALICE";
const ROUTE = "/webhooks/acme/slack";

let quickchat: QuickchatFake;
let slack: FakeSlack;
let slackServer: RunningFake;
let bridge: TestBridge;
const guard = guardUnexpected();

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

beforeEach(async () => {
  quickchat = await new QuickchatFake({
    scenarios: { "acme-scenario": "acme-token" },
    reply: (text) => `You said: <b>${escapeHtml(text)}</b>`,
  }).start();
  slack = createSlackFake({
    bots: [BOT],
    users: [{ id: ALICE, name: "alice", realName: "Alice Liddell", displayName: "Alice" }],
  });
  slackServer = await startFake(slack.app);
  guard.watch(quickchat, slack);
  bridge = await startTestBridge({
    tenants: [
      {
        id: "acme",
        quickchat: { scenario_id: "acme-scenario", token: "acme-token", base_url: quickchat.url },
        slack: { signing_secret: SIGNING_SECRET, bot_token: BOT.token, api_url: `${slackServer.url}/api/` },
      },
    ],
  });
});

afterEach(async () => {
  await bridge?.stop();
  await slackServer?.close();
  await quickchat?.close();
});

function deliver(payload: object, options: { timestamp?: number } = {}) {
  const body = JSON.stringify(payload);
  return bridge.post(ROUTE, body, slackEventHeaders(SIGNING_SECRET, body, options));
}

async function deliverOk(payload: object) {
  const response = await deliver(payload);
  expect(response.status).toBe(200);
}

const dm = (text: string, ts: string) => slackPayloads.dm({ team: TEAM, channel: DM, user: ALICE, text, ts });
const inChannel = (fields: Omit<SlackMessageFields, "team" | "channel" | "user">) => ({
  team: TEAM,
  channel: CHANNEL,
  user: ALICE,
  ...fields,
});
const posted = (count: number) => waitFor(() => slack.posted.length >= count, 10_000, `${count} Slack posts`);

describe("Slack webhook", () => {
  it("answers url_verification with the challenge", async () => {
    const response = await deliver(
      slackPayloads.urlVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"),
    );
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
  });

  it("rejects a stale timestamp and missing signature headers with 401, storing nothing", async () => {
    const payload = dm("hi", "1700000001.000100");
    const stale = await deliver(payload, { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
    expect(stale.status).toBe(401);
    expect(await stale.text()).toMatch(/5 minutes/);

    expect((await bridge.post(ROUTE, JSON.stringify(payload))).status).toBe(401);

    // A valid delivery afterwards is the first thing Quickchat hears.
    await deliverOk(dm("real one", "1700000001.000200"));
    await posted(1);
    expect(quickchat.calls.map((c) => c.body.text)).toEqual(["real one"]);
  });

  it("answers 400 to a signed body that is not an Events API payload", async () => {
    const body = "payload=%7B%7D";
    const response = await bridge.post(ROUTE, body, slackEventHeaders(SIGNING_SECRET, body));
    expect(response.status).toBe(400);
  });
});

describe("Slack conversations", () => {
  it("answers a DM in the DM, and the next DM continues the conversation", async () => {
    await deliverOk(dm("hello", "1700000002.000100"));
    await posted(1);
    await deliverOk(dm("and again", "1700000002.000200"));
    await posted(2);

    expect(slack.posted).toEqual([
      expect.objectContaining({ channel: DM, text: "You said: *hello*", mrkdwn: true }),
      expect.objectContaining({ channel: DM, text: "You said: *and again*" }),
    ]);
    expect(slack.posted.every((m) => m.threadTs === undefined)).toBe(true);
    expect(quickchat.calls.map((c) => c.body.conv_id)).toEqual([undefined, "conv-1"]);
    expect(quickchat.calls[0]?.body.client_metadata).toEqual({
      channel: "slack",
      channel_user_id: ALICE,
      channel_thread_id: `${TEAM}:${DM}`,
      user_name: "Alice",
    });
    expect(slack.callsTo("auth.test")).toHaveLength(1);
    expect(slack.callsTo("users.info")).toHaveLength(1);
    const logs = bridge.logs.join("\n");
    expect(logs).not.toContain(BOT.token);
    expect(logs).not.toContain(SIGNING_SECRET);
  });

  it("answers a channel mention in a thread at the mention, and a follow-up there without a mention", async () => {
    const root = "1700000003.000100";
    await deliverOk(slackPayloads.appMention(inChannel({ text: "<@U0BOT> what is a river?", ts: root })));
    await posted(1);
    await deliverOk(
      slackPayloads.channelMessage(
        inChannel({ text: "and a lake?", ts: "1700000003.000300", threadTs: root }),
      ),
    );
    await posted(2);

    expect(slack.posted).toEqual([
      expect.objectContaining({ channel: CHANNEL, threadTs: root, text: "You said: *what is a river?*" }),
      expect.objectContaining({ channel: CHANNEL, threadTs: root, text: "You said: *and a lake?*" }),
    ]);
    expect(quickchat.calls.map((c) => [c.body.text, c.body.conv_id])).toEqual([
      ["what is a river?", undefined],
      ["and a lake?", "conv-1"],
    ]);
    expect(quickchat.calls[1]?.body.client_metadata?.channel_thread_id).toBe(`${TEAM}:${CHANNEL}:${root}`);
  });

  it("answers a mention once, though it arrives both as message and as app_mention", async () => {
    const fields = inChannel({ text: "<@U0BOT> once please", ts: "1700000004.000100" });
    await deliverOk(slackPayloads.channelMessage(fields));
    await deliverOk(slackPayloads.appMention(fields));
    await posted(1);
    await deliverOk(slackPayloads.appMention(fields));
    // A later message in the same thread is answered after it: nothing else was queued before it.
    await deliverOk(
      slackPayloads.appMention(
        inChannel({ text: "<@U0BOT> next", ts: "1700000004.000200", threadTs: fields.ts }),
      ),
    );
    await posted(2);

    expect(quickchat.calls.map((c) => c.body.text)).toEqual(["once please", "next"]);
    expect(slack.posted.map((m) => m.text)).toEqual(["You said: *once please*", "You said: *next*"]);
  });

  it("ignores bot messages, edits, deletions, joins and threads the bot is not in", async () => {
    const ignored = [
      slackPayloads.botMessage({
        team: TEAM,
        channel: DM,
        botId: "B0OTHER",
        botUserId: "U0OTHER",
        text: "beep",
        ts: "1700000005.000100",
      }),
      slackPayloads.botMessage({
        team: TEAM,
        channel: DM,
        botId: BOT.botId,
        botUserId: BOT.userId,
        text: "own",
        ts: "1700000005.000200",
      }),
      slackPayloads.legacyBotMessage({
        team: TEAM,
        channel: CHANNEL,
        botId: "B0LEGACY",
        text: "<@U0BOT> hi",
        ts: "1700000005.000300",
      }),
      slackPayloads.messageChanged({
        team: TEAM,
        channel: DM,
        user: ALICE,
        text: "edited",
        oldText: "original",
        ts: "1700000005.000400",
        editTs: "1700000005.000500",
      }),
      slackPayloads.messageDeleted({
        team: TEAM,
        channel: CHANNEL,
        deletedTs: "1700000005.000400",
        ts: "1700000005.000600",
      }),
      slackPayloads.channelJoin({ team: TEAM, channel: CHANNEL, user: ALICE, ts: "1700000005.000700" }),
      slackPayloads.channelMessage(inChannel({ text: "lunch anyone?", ts: "1700000005.000800" })),
      slackPayloads.channelMessage(
        inChannel({ text: "in a thread", ts: "1700000005.000900", threadTs: "1700000000.000001" }),
      ),
    ];
    for (const payload of ignored) await deliverOk(payload);
    await deliverOk(dm("the only real one", "1700000005.001000"));
    await posted(1);

    expect(quickchat.calls.map((c) => c.body.text)).toEqual(["the only real one"]);
    expect(slack.posted).toHaveLength(1);
  });

  it("ignores Slackbot's notices in the bot's DM; answers a bare mention with the greeting (issue 24)", async () => {
    await deliverOk(
      slackPayloads.slackbotNotice({
        team: TEAM,
        channel: DM,
        text: "You have been removed from #sales by <@U0ADMIN>",
        ts: "1700000007.000100",
      }),
    );
    const root = "1700000007.000200";
    await deliverOk(slackPayloads.appMention(inChannel({ text: "<@U0BOT>", ts: root })));
    await posted(1);

    // The default greeting, as for a bare Telegram /start, but in the mention's thread, not a new conversation.
    expect(quickchat.calls.map((c) => c.body.text)).toEqual(["Hello!"]);
    expect(slack.posted).toEqual([
      expect.objectContaining({ channel: CHANNEL, threadTs: root, text: "You said: *Hello!*" }),
    ]);
    const rows = await bridge.database.db.select().from(inboundMessages);
    expect(rows.map((row) => row.dedupeKey)).toEqual([`${TEAM}:${CHANNEL}:${root}`]);
  });

  it("handles a mention after 250,000 NBSPs: acknowledged, stored and answered (160,000 took 24 s to scan)", async () => {
    const text = `${"\u00a0".repeat(250_000)}x<@U0BOT>`;
    await deliverOk(slackPayloads.channelMessage(inChannel({ text, ts: "1700000008.000100" })));
    await posted(1);
    expect(quickchat.calls.map((c) => c.body.text)).toEqual(["x"]);
  });

  it("shows the thinking status in an assistant thread and replies in that thread", async () => {
    quickchat.latencyMs = 1500; // the status appears once the answer takes over a second
    const threadTs = "1700000006.000100";
    await deliverOk(slackPayloads.assistantThreadStarted({ team: TEAM, channel: DM, user: ALICE, threadTs }));
    await deliverOk(
      slackPayloads.assistantMessage({
        team: TEAM,
        channel: DM,
        user: ALICE,
        text: "help me",
        ts: "1700000006.000200",
        threadTs,
      }),
    );
    await posted(1);

    const [status] = slack.callsTo("assistant.threads.setStatus");
    expect(status?.args).toMatchObject({ channel_id: DM, thread_ts: threadTs, status: "is thinking…" });
    expect(status!.at).toBeLessThanOrEqual(slack.callsTo("chat.postMessage")[0]!.at);
    expect(slack.posted[0]).toMatchObject({ channel: DM, threadTs, text: "You said: *help me*" });
    expect(quickchat.calls[0]?.body.client_metadata?.channel_thread_id).toBe(`${TEAM}:${DM}:${threadTs}`);
  });
});

describe("Slack delivery", () => {
  it("acknowledges a stored event well within Slack's 3 seconds while Quickchat takes 10", async () => {
    // The first event of a tenant pays the one auth.test; measure a later one.
    await deliverOk(
      slackPayloads.channelJoin({ team: TEAM, channel: CHANNEL, user: ALICE, ts: "1700000009.000050" }),
    );
    quickchat.latencyMs = 10_000;
    const started = performance.now();
    await deliverOk(dm("take your time", "1700000009.000100"));
    const ackMs = performance.now() - started;

    expect(ackMs).toBeLessThan(1000);
    await waitFor(() => quickchat.calls.length === 1, 5000, "the worker to ask Quickchat");
    expect(slack.posted).toHaveLength(0);
  });
});
