import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { type Db, rowsOf } from "../../src/db/client.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import {
  createSlackFake,
  type FakeSlack,
  type FakeSlackBot,
  slackEventHeaders,
  slackPayloads,
} from "../fakes/slack.js";
import { createTelegramFake, deliverUpdate, type TelegramFake } from "../fakes/telegram.js";
import { createTwilioFake, inboundText, postTwilioWebhook, type TwilioFake } from "../fakes/twilio.js";
import type { TestBridge } from "../support/harness.js";
import { BOT, messageUpdate, privateChat, textMessage } from "../telegram/updates.js";

export const ADMIN_TOKEN = "admin-token-0123456789abcdef";
/** One key for every bridge of a test file, so replicas can read each other's rows. */
export const SECRET_KEY = randomBytes(32).toString("base64");
export const PUBLIC_URL = "https://bridge.example.com";

export const adminEnv = (extra: Record<string, string> = {}) => ({
  ADMIN_TOKEN,
  BRIDGE_SECRET_KEY: SECRET_KEY,
  ...extra,
});

export interface AdminResponse {
  status: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are inspected loosely in tests
  json: any;
}

/** Calls the admin API; every response body is kept in `seen` so tests can search them for secrets. */
export function adminClient(bridge: () => TestBridge, seen: string[] = []) {
  return {
    seen,
    async call(method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN) {
      const response = await fetch(`${bridge().url}/admin${path}`, {
        method,
        headers: {
          ...(token !== null && { authorization: `Bearer ${token}` }),
          ...(body !== undefined && { "content-type": "application/json" }),
        },
        ...(body !== undefined && { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });
      const text = await response.text();
      seen.push(text);
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: response.status, text, json } as AdminResponse;
    },
  };
}

/** The `tenants` table exactly as stored, read with plain SQL. */
export async function rawTenantRows(db: Db): Promise<Record<string, unknown>[]> {
  return rowsOf(await db.execute(sql`select * from tenants order by id`));
}

/** Per-tenant credentials, all long enough that masking shows their last 4 characters. */
export function credentials(id: string, n: number) {
  return {
    quickchatToken: `${id}-quickchat-token-${randomBytes(8).toString("hex")}`,
    telegramToken: `70000000${n}:AAH${id}TelegramBotToken${randomBytes(8).toString("hex")}`,
    telegramSecret: `${id}-telegram-secret-${randomBytes(8).toString("hex")}`,
    slackSigning: `${id}-slack-signing-${randomBytes(8).toString("hex")}`,
    slack: {
      token: `xoxb-${id}-${randomBytes(8).toString("hex")}`,
      teamId: `T0${id.toUpperCase()}`,
      userId: `U0BOT${n}`,
      botId: `B0BOT${n}`,
    } satisfies FakeSlackBot,
    twilioSid: `AC${String(n).repeat(32).slice(0, 32)}`,
    twilioToken: `${id}-twilio-auth-token-${randomBytes(8).toString("hex")}`,
  };
}
export type Credentials = ReturnType<typeof credentials>;

export const secretValues = (c: Credentials) => [
  c.quickchatToken,
  c.telegramToken,
  c.telegramSecret,
  c.slackSigning,
  c.slack.token,
  c.twilioToken,
];

export const SLACK_USER = "U0ALICE";
export const WHATSAPP_FROM = "whatsapp:+14155238886";

/** Quickchat, Telegram, Slack and Twilio fakes that know every given tenant's credentials. */
export class ChannelFakes {
  /** scenario → token: mutable, the Quickchat fake reads it on each request. */
  readonly scenarios: Record<string, string> = {};
  quickchat!: QuickchatFake;
  telegram!: TelegramFake;
  slack!: FakeSlack;
  twilio!: TwilioFake;
  private servers: RunningFake[] = [];
  telegramUrl = "";
  slackUrl = "";
  twilioUrl = "";

  constructor(private readonly tenants: Record<string, Credentials>) {}

  async start(): Promise<this> {
    for (const [id, c] of Object.entries(this.tenants)) this.scenarios[`${id}-scenario`] = c.quickchatToken;
    this.quickchat = await new QuickchatFake({
      scenarios: this.scenarios,
      reply: (text) => `You said: <b>${text.replace(/[<>&]/g, "")}</b>`,
    }).start();
    this.telegram = createTelegramFake();
    for (const c of Object.values(this.tenants)) this.telegram.addBot(c.telegramToken, BOT);
    this.slack = createSlackFake({
      bots: Object.values(this.tenants).map((c) => c.slack),
      users: [{ id: SLACK_USER, name: "alice", realName: "Alice Liddell" }],
    });
    this.twilio = createTwilioFake(
      Object.fromEntries(Object.values(this.tenants).map((c) => [c.twilioSid, c.twilioToken])),
    );
    const [t, s, w] = await Promise.all([
      startFake(this.telegram.app),
      startFake(this.slack.app),
      startFake(this.twilio.app),
    ]);
    this.servers = [t, s, w];
    this.telegramUrl = t.url;
    this.slackUrl = s.url;
    this.twilioUrl = w.url;
    return this;
  }

  /** Every fake, for the unexpected-failure guard (test/support/unexpected.ts). */
  all() {
    return [this.quickchat, this.telegram, this.slack, this.twilio];
  }

  async close(): Promise<void> {
    await Promise.all([...this.servers.map((s) => s.close()), this.quickchat?.close()]);
  }

  /** A full tenant body (all three channels) as POST /admin/tenants takes it. */
  tenantBody(id: string) {
    const c = this.tenants[id];
    if (!c) throw new Error(`no credentials for ${id}`);
    return {
      id,
      quickchat: { scenario_id: `${id}-scenario`, token: c.quickchatToken, base_url: this.quickchat.url },
      telegram: { bot_token: c.telegramToken, webhook_secret: c.telegramSecret, api_root: this.telegramUrl },
      slack: { signing_secret: c.slackSigning, bot_token: c.slack.token, api_url: `${this.slackUrl}/api/` },
      whatsapp: {
        account_sid: c.twilioSid,
        auth_token: c.twilioToken,
        from: WHATSAPP_FROM,
        api_base: this.twilioUrl,
      },
    };
  }

  /** Telegram messages the bot of `id` sent. */
  telegramSent(id: string) {
    const token = this.tenants[id]?.telegramToken;
    return this.telegram.callsTo("sendMessage").filter((call) => call.token === token);
  }

  slackSent(id: string) {
    const token = this.tenants[id]?.slack.token;
    return this.slack.callsTo("chat.postMessage").filter((call) => call.token === token);
  }

  twilioSent(id: string) {
    const sid = this.tenants[id]?.twilioSid;
    return this.twilio.sent().filter((call) => call.accountSid === sid);
  }
}

let counter = 0;

/** Posts a Telegram private-chat text to `tenant`'s route, with `secret` as the webhook secret header. */
export function sendTelegram(
  url: string,
  tenant: string,
  text: string,
  secret: string,
  chatId = 123_456_789,
) {
  const user = { id: chatId, is_bot: false, first_name: "Alice" };
  return deliverUpdate(
    `${url}/webhooks/${tenant}/telegram`,
    messageUpdate(textMessage(text, { chat: privateChat(user), from: user })),
    secret,
  );
}

/** Posts a signed Slack DM event to `tenant`'s route. */
export function sendSlack(url: string, tenant: string, text: string, signingSecret: string, team: string) {
  const ts = `${Math.floor(Date.now() / 1000)}.${String(++counter).padStart(6, "0")}`;
  const body = JSON.stringify(slackPayloads.dm({ team, channel: "D0ALICE", user: SLACK_USER, text, ts }));
  return fetch(`${url}/webhooks/${tenant}/slack`, {
    method: "POST",
    body,
    headers: slackEventHeaders(signingSecret, body),
  });
}

/** Posts a Twilio WhatsApp text to `tenant`'s route, signed for PUBLIC_URL with `authToken`. */
export function sendWhatsapp(
  url: string,
  tenant: string,
  text: string,
  authToken: string,
  accountSid: string,
) {
  const path = `/webhooks/${tenant}/whatsapp`;
  return postTwilioWebhook(`${url}${path}`, {
    authToken,
    params: inboundText(text, { accountSid, to: WHATSAPP_FROM }),
    signedUrl: `${PUBLIC_URL}${path}`,
  });
}
