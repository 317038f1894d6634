import { createHmac, randomUUID } from "node:crypto";
import { type Context, Hono } from "hono";

/**
 * A loopback Slack Web API (`POST /api/<method>`, form-encoded or JSON, Bearer token) for the methods the
 * bridge calls, plus a request signer and Events API payload builders for inbound tests.
 */

export interface FakeSlackBot {
  token: string;
  teamId: string;
  userId: string;
  botId: string;
}

export interface FakeSlackUser {
  id: string;
  name: string;
  realName?: string;
  displayName?: string;
}

export interface SlackApiCall {
  method: string;
  /** The token the call authenticated with (header or `token` field). */
  token: string | undefined;
  /** Arguments as received: strings for form-encoded bodies, JSON values for JSON bodies. */
  args: Record<string, unknown>;
  /** When the call arrived (ms since the epoch). */
  at: number;
  /** The HTTP status answered and whether the body said `ok: true`. */
  status?: number;
  ok?: boolean;
}

export interface PostedMessage {
  channel: string;
  ts: string;
  text: string;
  threadTs?: string;
  mrkdwn: boolean;
}

/**
 * What an injected failure answers:
 * - `{ status: 429, retryAfter }`: HTTP 429 with `Retry-After` (omit it to send none) and `ratelimited`;
 * - `{ status }`: another HTTP status (5xx) with a short text body;
 * - `{ error }`: HTTP 200 `{"ok":false,"error":...}`, optionally with a Retry-After header.
 */
export type SlackFault = { status: number; retryAfter?: string } | { error: string; retryAfter?: string };

/** Slack truncates or refuses `text` longer than this. */
export const SLACK_MAX_TEXT_LENGTH = 40_000;

/** A call the fake refused as invalid (`ok: false` not injected): no test asked for it. */
export interface SlackRejection {
  method: string;
  error: string;
}

export interface FakeSlack {
  app: Hono;
  calls: SlackApiCall[];
  posted: PostedMessage[];
  /** Calls answered `ok: false` by Slack's own checks (bad arguments, unknown token or user), not by `fail`. */
  rejections: SlackRejection[];
  /** The texts users saw, in order (the unexpected-failure guard reads them). */
  textsToUsers(): string[];
  /** `rejections`, described. */
  refused(): string[];
  callsTo(method: string): SlackApiCall[];
  /** A workspace member users.info knows from now on. */
  addUser(user: FakeSlackUser): void;
  /** The next `times` calls of `method` fail with `fault`. */
  fail(method: string, fault: SlackFault, times?: number): void;
  /** The next `times` calls of `method` for this channel fail with `fault` (after any `fail` faults). */
  failChannel(channel: string, method: string, fault: SlackFault, times?: number): void;
}

type Handler = (args: Record<string, unknown>, bot: FakeSlackBot) => Record<string, unknown>;

export function createSlackFake(options: { bots: FakeSlackBot[]; users?: FakeSlackUser[] }): FakeSlack {
  const calls: SlackApiCall[] = [];
  const posted: PostedMessage[] = [];
  const rejections: SlackRejection[] = [];
  const faults = new Map<string, SlackFault[]>();
  const users = new Map((options.users ?? []).map((user) => [user.id, user]));
  let sequence = 0;
  const nextTs = () => `1700000000.${String(++sequence).padStart(6, "0")}`;

  const handlers: Record<string, Handler> = {
    "auth.test": (_, bot) => ({
      url: `https://${bot.teamId.toLowerCase()}.slack.com/`,
      team: "Fake Team",
      user: "bridge-bot",
      team_id: bot.teamId,
      user_id: bot.userId,
      bot_id: bot.botId,
      is_enterprise_install: false,
    }),
    "chat.postMessage": (args) => {
      const channel = stringArg(args.channel);
      const text = stringArg(args.text);
      if (!channel) return { ok: false, error: "channel_not_found" };
      if (!text) return { ok: false, error: "no_text" };
      if (text.length > SLACK_MAX_TEXT_LENGTH) return { ok: false, error: "msg_too_long" };
      const threadTs = stringArg(args.thread_ts);
      const message: PostedMessage = { channel, ts: nextTs(), text, mrkdwn: flagArg(args.mrkdwn, true) };
      if (threadTs) message.threadTs = threadTs;
      posted.push(message);
      return {
        channel,
        ts: message.ts,
        message: { type: "message", text, ts: message.ts, ...(threadTs ? { thread_ts: threadTs } : {}) },
      };
    },
    "users.info": (args) => {
      const user = users.get(stringArg(args.user) ?? "");
      if (!user) return { ok: false, error: "user_not_found" };
      return {
        user: {
          id: user.id,
          name: user.name,
          real_name: user.realName ?? "",
          profile: { display_name: user.displayName ?? "", real_name: user.realName ?? "" },
        },
      };
    },
    "assistant.threads.setStatus": (args) => {
      if (!stringArg(args.channel_id) || !stringArg(args.thread_ts) || typeof args.status !== "string") {
        return { ok: false, error: "invalid_arguments" };
      }
      return {};
    },
  };

  const app = new Hono();
  app.post("/api/:method", async (c) => {
    const method = c.req.param("method");
    const args = await readArgs(c);
    const token = c.req.header("authorization")?.replace(/^Bearer /, "") ?? stringArg(args.token);
    const call: SlackApiCall = { method, token, args, at: Date.now() };
    calls.push(call);
    const answer = (response: Response, ok: boolean) => {
      call.status = response.status;
      call.ok = ok;
      return response;
    };
    const refuse = (error: string) => {
      rejections.push({ method, error });
      return answer(c.json({ ok: false, error }), false);
    };

    const channel = stringArg(args.channel) ?? stringArg(args.channel_id);
    const fault = faults.get(method)?.shift() ?? faults.get(`${method}:${channel}`)?.shift();
    if (fault) return answer(answerFault(c, fault), false);
    const handler = handlers[method];
    if (!handler) return refuse("unknown_method");
    if (!token) return refuse("not_authed");
    const bot = options.bots.find((candidate) => candidate.token === token);
    if (!bot) return refuse("invalid_auth");
    const result = handler(args, bot);
    if ("ok" in result) return refuse(String(result.error));
    return answer(c.json({ ok: true, ...result }), true);
  });

  return {
    app,
    calls,
    posted,
    rejections,
    textsToUsers: () => posted.map((m) => m.text),
    refused: () => rejections.map((r) => `slack ${r.method}: ${r.error}`),
    callsTo: (method) => calls.filter((call) => call.method === method),
    addUser: (user) => users.set(user.id, user),
    fail(method, fault, times = 1) {
      const queue = faults.get(method) ?? [];
      for (let i = 0; i < times; i++) queue.push(fault);
      faults.set(method, queue);
    },
    failChannel(channel, method, fault, times = 1) {
      const key = `${method}:${channel}`;
      const queue = faults.get(key) ?? [];
      for (let i = 0; i < times; i++) queue.push(fault);
      faults.set(key, queue);
    },
  };
}

function answerFault(c: Context, fault: SlackFault): Response {
  const headers: Record<string, string> = fault.retryAfter ? { "retry-after": fault.retryAfter } : {};
  if ("error" in fault) return c.json({ ok: false, error: fault.error }, 200, headers);
  if (fault.status === 429) return c.json({ ok: false, error: "ratelimited" }, 429, headers);
  return c.text("upstream trouble", fault.status as 500, headers);
}

async function readArgs(c: Context): Promise<Record<string, unknown>> {
  const type = c.req.header("content-type") ?? "";
  if (type.includes("application/json")) {
    const body: unknown = await c.req.json();
    return typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  }
  return Object.fromEntries(new URLSearchParams(await c.req.text()));
}

function stringArg(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** Slack reads booleans from form fields as "true"/"1" and "false"/"0". */
function flagArg(value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  return value === true || value === "true" || value === "1";
}

// ---------------------------------------------------------------------------------------------------------
// Inbound: signing and Events API payloads

/** `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret (Slack's request signing). */
export function signSlackRequest(secret: string, body: string, timestamp: number | string): string {
  return `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
}

/** Headers of a signed Events API delivery; `retryNum` adds Slack's redelivery headers. */
export function slackEventHeaders(
  secret: string,
  body: string,
  options: { timestamp?: number; retryNum?: number } = {},
): Record<string, string> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return {
    "content-type": "application/json",
    "x-slack-request-timestamp": String(timestamp),
    "x-slack-signature": signSlackRequest(secret, body, timestamp),
    ...(options.retryNum === undefined
      ? {}
      : { "x-slack-retry-num": String(options.retryNum), "x-slack-retry-reason": "http_timeout" }),
  };
}

export interface SlackMessageFields {
  team: string;
  channel: string;
  user: string;
  text: string;
  ts: string;
  threadTs?: string;
}

/** Builders of realistic Events API payloads (shapes from Slack's docs and bolt's test fixtures). */
export const slackPayloads = {
  urlVerification: (challenge: string) => ({
    token: "Jhj5dZrVaK7ZwHHjRyZWjbDl",
    challenge,
    type: "url_verification",
  }),

  /** `message.im`: a user writing to the bot in its DM (threaded when `threadTs` is set). */
  dm: (m: SlackMessageFields) => envelope(m.team, { ...userMessage(m), channel_type: "im" }),

  /** An AI-assistant thread message: a DM message inside the thread Slack opened for the assistant. */
  assistantMessage: (m: SlackMessageFields & { threadTs: string }) =>
    envelope(m.team, { ...userMessage(m), channel_type: "im", parent_user_id: "UBOTFAKE" }),

  assistantThreadStarted: (f: { team: string; channel: string; user: string; threadTs: string }) =>
    envelope(f.team, {
      type: "assistant_thread_started",
      assistant_thread: {
        user_id: f.user,
        context: { channel_id: "C0CONTEXT", team_id: f.team, enterprise_id: null },
        channel_id: f.channel,
        thread_ts: f.threadTs,
      },
      event_ts: f.threadTs,
    }),

  appMention: (m: SlackMessageFields) => {
    const { client_msg_id: _, ...event } = userMessage(m);
    return envelope(m.team, { ...event, type: "app_mention" });
  },

  /** `message.channels`: a channel message, a thread reply when `threadTs` is set. */
  channelMessage: (m: SlackMessageFields) => envelope(m.team, { ...userMessage(m), channel_type: "channel" }),

  /** A modern app's message: `bot_id` and `bot_profile`, no subtype. */
  botMessage: (f: {
    team: string;
    channel: string;
    botId: string;
    botUserId: string;
    text: string;
    ts: string;
  }) =>
    envelope(f.team, {
      type: "message",
      text: f.text,
      user: f.botUserId,
      bot_id: f.botId,
      app_id: "A0FAKEAPP",
      bot_profile: { id: f.botId, name: "some bot", app_id: "A0FAKEAPP", team_id: f.team, deleted: false },
      team: f.team,
      channel: f.channel,
      ts: f.ts,
      event_ts: f.ts,
      channel_type: "im",
    }),

  /** Slackbot's notice in a DM (recorded traffic): `user: "USLACKBOT"`, no `bot_id`, no subtype. */
  slackbotNotice: (f: { team: string; channel: string; text: string; ts: string }) =>
    envelope(f.team, {
      type: "message",
      text: f.text,
      user: "USLACKBOT",
      channel: f.channel,
      ts: f.ts,
      event_ts: f.ts,
      channel_type: "im",
    }),

  /** A classic integration's message: `subtype: "bot_message"`, `bot_id`, `username`, no user. */
  legacyBotMessage: (f: { team: string; channel: string; botId: string; text: string; ts: string }) =>
    envelope(f.team, {
      type: "message",
      subtype: "bot_message",
      text: f.text,
      bot_id: f.botId,
      username: "legacy bot",
      channel: f.channel,
      ts: f.ts,
      event_ts: f.ts,
      channel_type: "channel",
    }),

  messageChanged: (m: SlackMessageFields & { editTs: string; oldText: string }) =>
    envelope(m.team, {
      type: "message",
      subtype: "message_changed",
      hidden: true,
      message: { ...userMessage(m), edited: { user: m.user, ts: m.editTs } },
      previous_message: { ...userMessage({ ...m, text: m.oldText }) },
      channel: m.channel,
      ts: m.editTs,
      event_ts: m.editTs,
      channel_type: "im",
    }),

  messageDeleted: (f: { team: string; channel: string; deletedTs: string; ts: string }) =>
    envelope(f.team, {
      type: "message",
      subtype: "message_deleted",
      hidden: true,
      deleted_ts: f.deletedTs,
      channel: f.channel,
      previous_message: { type: "message", text: "gone", user: "U0SOMEONE", ts: f.deletedTs },
      ts: f.ts,
      event_ts: f.ts,
      channel_type: "channel",
    }),

  channelJoin: (f: { team: string; channel: string; user: string; ts: string }) =>
    envelope(f.team, {
      type: "message",
      subtype: "channel_join",
      user: f.user,
      text: `<@${f.user}> has joined the channel`,
      inviter: "U0INVITER",
      team: f.team,
      channel: f.channel,
      ts: f.ts,
      event_ts: f.ts,
      channel_type: "channel",
    }),

  /** A user's upload: `subtype: "file_share"` with `files`; `text` is the comment (possibly empty). */
  fileShare: (m: SlackMessageFields) =>
    envelope(m.team, {
      ...userMessage(m),
      subtype: "file_share",
      files: [{ id: "F0FAKEFILE", name: "photo.png", mimetype: "image/png" }],
      upload: false,
      channel_type: "im",
    }),
};

function userMessage(m: SlackMessageFields) {
  return {
    client_msg_id: randomUUID(),
    type: "message",
    text: m.text,
    user: m.user,
    ts: m.ts,
    blocks: [
      {
        type: "rich_text",
        block_id: "bLk1",
        elements: [{ type: "rich_text_section", elements: [{ type: "text", text: m.text }] }],
      },
    ],
    team: m.team,
    channel: m.channel,
    event_ts: m.ts,
    ...(m.threadTs ? { thread_ts: m.threadTs, parent_user_id: "U0PARENT" } : {}),
  };
}

function envelope(team: string, event: Record<string, unknown>) {
  return {
    token: "XXYYZZ",
    team_id: team,
    context_team_id: team,
    api_app_id: "A0FAKEAPP",
    event,
    type: "event_callback",
    event_id: `Ev${randomUUID().replaceAll("-", "").slice(0, 10).toUpperCase()}`,
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [
      { enterprise_id: null, team_id: team, user_id: "UBOTFAKE", is_bot: true, is_enterprise_install: false },
    ],
    is_ext_shared_channel: false,
    event_context: `4-${randomUUID()}`,
  };
}
