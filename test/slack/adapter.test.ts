import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { adapterOf } from "../../src/channels/registry.js";
import type { SlackConfig } from "../../src/channels/slack/config.js";
import type { SlackRoute } from "../../src/channels/slack/inbound.js";
import { createSlackAdapter, slack } from "../../src/channels/slack/index.js";
import { THINKING_STATUS } from "../../src/channels/slack/outbound.js";
import type {
  ChannelAdapter,
  DeliveryTarget,
  WebhookRequest,
  WebhookResult,
} from "../../src/channels/types.js";
import { type TenantConfig, tenantSchema } from "../../src/config/schema.js";
import { HttpError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import {
  createSlackFake,
  type FakeSlack,
  type FakeSlackBot,
  slackEventHeaders,
  slackPayloads,
} from "../fakes/slack.js";
import { sendError } from "../support/send-error.js";

const BOT: FakeSlackBot = { token: "xoxb-acme-1", teamId: "T0ACME", userId: "U0BOT", botId: "B0BOT" };
const ROTATED: FakeSlackBot = { ...BOT, token: "xoxb-acme-2" };
const SIGNING_SECRET = "acme-signing-secret";
const DM: SlackRoute = { channel: "D0ALICE" };
const THREAD: SlackRoute = { channel: "C0GENERAL", thread_ts: "1700000000.000100" };
const ASSISTANT: SlackRoute = { channel: "D0ALICE", thread_ts: "1700000000.000200", assistant: true };

let fake: FakeSlack;
let server: RunningFake;
let clock: number;
let adapter: ChannelAdapter<SlackConfig>;

beforeEach(async () => {
  fake = createSlackFake({
    bots: [BOT, ROTATED],
    users: [
      { id: "U0ALICE", name: "alice", realName: "Alice Liddell", displayName: "alice" },
      { id: "U0BOB", name: "bob", realName: "Bob Builder" },
      { id: "U0NONAME", name: "noname" },
    ],
  });
  server = await startFake(fake.app);
  clock = Date.now();
  adapter = adapterOf(slack, createSlackAdapter({ log: createLogger("silent") }, { now: () => clock }));
});

afterEach(() => server.close());

function tenant(slack: Partial<SlackConfig> = {}): TenantConfig {
  return tenantSchema.parse({
    id: "acme",
    quickchat: { scenario_id: "scn", token: "qc" },
    slack: { signing_secret: SIGNING_SECRET, bot_token: BOT.token, api_url: `${server.url}/api/`, ...slack },
  });
}

function target(route: SlackRoute, t = tenant()): DeliveryTarget<SlackConfig> {
  return { tenant: t, config: t.slack!, route, threadKey: "k", inboundId: "1" };
}

function webhook(payload: object, timestamp = Math.floor(clock / 1000)): WebhookRequest {
  const body = JSON.stringify(payload);
  return {
    rawBody: Buffer.from(body),
    headers: new Headers(slackEventHeaders(SIGNING_SECRET, body, { timestamp })),
    url: new URL("http://bridge.test/webhooks/acme/slack"),
  };
}

async function receive(payload: object, t = tenant()): Promise<WebhookResult> {
  const req = webhook(payload);
  await adapter.verify(req, t.slack!, t);
  return adapter.receive(req, t.slack!, t);
}

const dm = (text: string, ts: string) =>
  slackPayloads.dm({ team: BOT.teamId, channel: "D0ALICE", user: "U0ALICE", text, ts });

describe("receive", () => {
  it("answers url_verification with the challenge, without calling Slack", async () => {
    const result = await receive(slackPayloads.urlVerification("3eZbrw1aBm2rZgRNFdxV"));
    expect(result.type).toBe("response");
    const response = (result as Extract<WebhookResult, { type: "response" }>).response;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("3eZbrw1aBm2rZgRNFdxV");
    expect(fake.calls).toEqual([]);
  });

  it("parses a DM with the bot identity from one auth.test per token", async () => {
    const [first, second] = await Promise.all([receive(dm("hi", "1.1")), receive(dm("again", "1.2"))]);
    await receive(dm("third", "1.3"));
    expect(first).toMatchObject({
      type: "messages",
      messages: [{ text: "hi", threadKey: "T0ACME:D0ALICE" }],
    });
    expect(second).toMatchObject({ type: "messages", messages: [{ text: "again" }] });
    expect(fake.callsTo("auth.test")).toHaveLength(1);
    expect(fake.callsTo("auth.test")[0]?.token).toBe(BOT.token);
  });

  it("ignores the bot's own messages using the identity auth.test returned", async () => {
    const own = slackPayloads.dm({
      team: BOT.teamId,
      channel: "D0ALICE",
      user: BOT.userId,
      text: "Hello!",
      ts: "2.1",
    });
    expect(await receive(own)).toEqual({ type: "messages", messages: [], ignored: "own message" });
  });

  it("looks the identity up again when the tenant's token changes", async () => {
    await receive(dm("hi", "3.1"));
    await receive(dm("hi", "3.2"), tenant({ bot_token: ROTATED.token }));
    expect(fake.callsTo("auth.test").map((call) => call.token)).toEqual([BOT.token, ROTATED.token]);
  });

  it("answers 503 when auth.test fails, so Slack redelivers, and tries again on the next event", async () => {
    const broken = tenant({ bot_token: "xoxb-revoked" });
    const error = await receive(dm("hi", "4.1"), broken).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(503);
    fake.fail("auth.test", { status: 503 });
    await expect(receive(dm("hi", "4.2"))).rejects.toMatchObject({ status: 503 });
    await expect(receive(dm("hi", "4.3"))).resolves.toMatchObject({ messages: [{ text: "hi" }] });
  });

  it("acknowledges other payload types without storing anything", async () => {
    const body = { token: "t", type: "app_rate_limited", team_id: BOT.teamId, minute_rate_limited: 1 };
    expect(await receive(body)).toEqual({ type: "messages", messages: [], ignored: "app_rate_limited" });
  });

  it("rejects a stale delivery in verify, and a body that is not JSON in receive", async () => {
    const t = tenant();
    const stale = webhook(dm("hi", "5.1"), Math.floor(clock / 1000) - 6 * 60);
    expect(() => adapter.verify(stale, t.slack!, t)).toThrow(HttpError);
    const form = { ...webhook({}), rawBody: Buffer.from("payload=%7B%7D") };
    await expect(adapter.receive(form, t.slack!, t)).rejects.toMatchObject({ status: 400 });
  });

  it("acks with an empty 200", async () => {
    const response = adapter.ack();
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
  });
});

describe("send", () => {
  it("posts mrkdwn to a DM with link unfurling off by default", async () => {
    const sent = await adapter.send(target(DM), "*hello*", { plain: false });
    const [call] = fake.callsTo("chat.postMessage");
    expect(call?.token).toBe(BOT.token);
    expect(call?.args).toMatchObject({
      channel: "D0ALICE",
      text: "*hello*",
      mrkdwn: "true",
      unfurl_links: "false",
    });
    expect(call?.args).not.toHaveProperty("thread_ts");
    expect(sent.channelMessageId).toBe(fake.posted[0]?.ts);
  });

  it("replies in the thread, as plain text when asked, and unfurls when configured", async () => {
    await adapter.send(target(THREAD, tenant({ unfurl_links: true })), "a *b*", { plain: true });
    expect(fake.posted).toEqual([
      expect.objectContaining({ channel: "C0GENERAL", threadTs: THREAD.thread_ts, mrkdwn: false }),
    ]);
    expect(fake.callsTo("chat.postMessage")[0]?.args).toMatchObject({
      unfurl_links: "true",
      unfurl_media: "true",
    });
  });

  it("sends parts in the order it is called", async () => {
    for (const part of ["one", "two", "three"]) await adapter.send(target(THREAD), part, { plain: false });
    expect(fake.posted.map((m) => m.text)).toEqual(["one", "two", "three"]);
  });

  it("classifies a 429 as retry with Retry-After, without the client waiting for it", async () => {
    fake.fail("chat.postMessage", { status: 429, retryAfter: "1800" });
    const started = Date.now();
    const error = await sendError(adapter.send(target(DM), "hi", { plain: false }));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error).toMatchObject({ kind: "retry", code: "ratelimited", retryAfterMs: 1_800_000 });
    expect(fake.callsTo("chat.postMessage")).toHaveLength(1);
    await adapter.send(target(DM), "hi", { plain: false });
    expect(fake.posted).toHaveLength(1);
  });

  it("retries a 429 without a readable Retry-After", async () => {
    fake.fail("chat.postMessage", { status: 429 });
    expect(await sendError(adapter.send(target(DM), "hi", { plain: false }))).toMatchObject({
      kind: "retry",
    });
  });

  it("retries ok:false ratelimited, honouring its Retry-After", async () => {
    fake.fail("chat.postMessage", { error: "ratelimited", retryAfter: "3" });
    const error = await sendError(adapter.send(target(DM), "hi", { plain: false }));
    expect(error).toMatchObject({ kind: "retry", code: "ratelimited", retryAfterMs: 3000 });
  });

  it.each(["internal_error", "service_unavailable", "fatal_error", "request_timeout"])(
    "retries ok:false %s",
    async (code) => {
      fake.fail("chat.postMessage", { error: code });
      expect(await sendError(adapter.send(target(DM), "hi", { plain: false }))).toMatchObject({
        kind: "retry",
        code,
      });
    },
  );

  it.each([
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "no_text",
  ])("fails the message on ok:false %s", async (code) => {
    fake.fail("chat.postMessage", { error: code });
    expect(await sendError(adapter.send(target(DM), "hi", { plain: false }))).toMatchObject({
      kind: "permanent",
      code,
    });
  });

  it("fails on a revoked token answered by the fake itself", async () => {
    const t = tenant({ bot_token: "xoxb-unknown" });
    const error = await sendError(adapter.send(target(DM, t), "hi", { plain: false }));
    expect(error).toMatchObject({ kind: "permanent", code: "invalid_auth" });
  });

  it("fails a text over Slack's 40,000 characters (msg_too_long) and accepts one at the limit", async () => {
    await adapter.send(target(DM), "x".repeat(40_000), { plain: false });
    const error = await sendError(adapter.send(target(DM), "x".repeat(40_001), { plain: false }));
    expect(error).toMatchObject({ kind: "permanent", code: "msg_too_long" });
  });

  it("retries a 5xx answer, honouring its Retry-After", async () => {
    fake.fail("chat.postMessage", { status: 503, retryAfter: "5" });
    expect(await sendError(adapter.send(target(DM), "hi", { plain: false }))).toMatchObject({
      kind: "retry",
      code: "http_503",
      retryAfterMs: 5000,
    });
  });
});

describe("typing", () => {
  it("sets the assistant thread status, refreshed before Slack's 2-minute expiry", async () => {
    await adapter.typing?.send(target(ASSISTANT));
    expect(fake.callsTo("assistant.threads.setStatus").map((call) => call.args)).toEqual([
      { channel_id: "D0ALICE", thread_ts: ASSISTANT.thread_ts, status: THINKING_STATUS },
    ]);
    expect(adapter.typing?.intervalMs).toBeGreaterThan(60_000);
    expect(adapter.typing?.intervalMs).toBeLessThan(120_000);
  });

  it("does nothing outside assistant threads (Slack has no typing indicator for bots)", async () => {
    await adapter.typing?.send(target(DM));
    await adapter.typing?.send(target(THREAD));
    expect(fake.calls).toEqual([]);
  });

  it("reports a failed status update to the caller", async () => {
    fake.fail("assistant.threads.setStatus", { error: "channel_not_found" });
    expect(await sendError(adapter.typing!.send(target(ASSISTANT)))).toMatchObject({
      code: "channel_not_found",
    });
  });
});

describe("senderName", () => {
  it("prefers the display name, then the real name", async () => {
    expect(await adapter.senderName?.(target(DM), "U0ALICE")).toBe("alice");
    expect(await adapter.senderName?.(target(DM), "U0BOB")).toBe("Bob Builder");
    expect(await adapter.senderName?.(target(DM), "U0NONAME")).toBeUndefined();
  });

  it("caches names for an hour per tenant", async () => {
    await adapter.senderName?.(target(DM), "U0ALICE");
    clock += 59 * 60_000;
    await adapter.senderName?.(target(DM), "U0ALICE");
    expect(fake.callsTo("users.info")).toHaveLength(1);
    clock += 2 * 60_000;
    await adapter.senderName?.(target(DM), "U0ALICE");
    expect(fake.callsTo("users.info")).toHaveLength(2);
  });

  it("returns undefined on failures; Slack's definite answers are cached, transient ones are not", async () => {
    expect(await adapter.senderName?.(target(DM), "U0GHOST")).toBeUndefined();
    expect(await adapter.senderName?.(target(DM), "U0GHOST")).toBeUndefined();
    expect(fake.callsTo("users.info")).toHaveLength(1);

    fake.fail("users.info", { status: 429, retryAfter: "30" });
    expect(await adapter.senderName?.(target(DM), "U0ALICE")).toBeUndefined();
    expect(await adapter.senderName?.(target(DM), "U0ALICE")).toBe("alice");
  });
});
