/**
 * The Telegram adapter with the real grammY client, over HTTP, against the loopback Bot API fake.
 */
import type { Update } from "grammy/types";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { TelegramConfig } from "../../src/channels/telegram/config.js";
import {
  getTelegramWebhookInfo,
  setTelegramWebhook,
  TelegramCallError,
  telegram,
} from "../../src/channels/telegram/index.js";
import type { DeliveryTarget, Route, WebhookRequest } from "../../src/channels/types.js";
import { type TenantConfig, tenantSchema } from "../../src/config/schema.js";
import { HttpError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import { createTelegramFake, type TelegramFake } from "../fakes/telegram.js";
import { sendError } from "../support/send-error.js";
import {
  ALICE,
  BOT,
  editedMessageUpdate,
  FORUM,
  GROUP,
  messageUpdate,
  privateChat,
  SUPERGROUP,
  textMessage,
  topicRoot,
} from "./updates.js";

const TOKEN = "7012345678:AAHfakeTokenForTests_0123456789abcdef";
const SECRET = "tenant-secret_1";

let fake: TelegramFake;
let server: RunningFake;

beforeAll(async () => {
  fake = createTelegramFake({ [TOKEN]: BOT });
  server = await startFake(fake.app);
});
afterAll(() => server.close());
beforeEach(() => {
  fake.calls.length = 0;
});

function tenantWith(telegram: Partial<TelegramConfig> = {}, id = "acme"): TenantConfig {
  return tenantSchema.parse({
    id,
    quickchat: { scenario_id: "abc123", token: "qc-token" },
    telegram: { bot_token: TOKEN, webhook_secret: SECRET, api_root: server.url, ...telegram },
  });
}

const newAdapter = () => telegram.createAdapter({ log: createLogger("silent") });

/** `secret: null` sends no secret header. */
function webhook(update: Update | string, secret: string | null = SECRET): WebhookRequest {
  const headers = new Headers({ "content-type": "application/json" });
  if (secret !== null) headers.set("X-Telegram-Bot-Api-Secret-Token", secret);
  const body = typeof update === "string" ? update : JSON.stringify(update);
  return { rawBody: Buffer.from(body), headers, url: new URL("http://bridge.test/webhooks/acme/telegram") };
}

function target(tenant: TenantConfig, route: Route): DeliveryTarget<TelegramConfig> {
  return { tenant, config: tenant.telegram!, route, threadKey: String(route.chat_id), inboundId: "1" };
}

describe("receiving webhooks", () => {
  it("verifies the secret token: 401 when missing or wrong", () => {
    const adapter = newAdapter();
    const tenant = tenantWith();
    const update = messageUpdate(textMessage("hi", { chat: privateChat(ALICE) }));
    expect(() => adapter.verify(webhook(update), tenant.telegram!, tenant)).not.toThrow();
    for (const secret of [null, "other-tenant-secret"]) {
      expect(() => adapter.verify(webhook(update, secret), tenant.telegram!, tenant)).toThrow(
        expect.objectContaining({ status: 401 }),
      );
    }
  });

  it("a private message is parsed without any Bot API call", async () => {
    const adapter = newAdapter();
    const tenant = tenantWith();
    const result = await adapter.receive(
      webhook(messageUpdate(textMessage("hi", { chat: privateChat(ALICE) }))),
      tenant.telegram!,
      tenant,
    );
    expect(result).toMatchObject({ type: "messages", messages: [{ kind: "text", text: "hi" }] });
    expect(fake.calls).toEqual([]);
  });

  it("group messages use getMe, called once per bot and shared by concurrent webhooks", async () => {
    const adapter = newAdapter();
    const tenant = tenantWith();
    const updates = ["@acme_support_bot one", "@acme_support_bot two", "not for the bot"].map((text) =>
      messageUpdate(textMessage(text, { chat: GROUP })),
    );
    const results = await Promise.all(
      updates.map((u) => adapter.receive(webhook(u), tenant.telegram!, tenant)),
    );
    expect(results.map((r) => (r.type === "messages" ? r.messages.length : -1))).toEqual([1, 1, 0]);
    await adapter.receive(webhook(updates[0]!), tenant.telegram!, tenant);
    expect(fake.callsTo("getMe")).toHaveLength(1);
  });

  it("a changed token is a new bot: getMe again, with the new token", async () => {
    const otherToken = "7099999999:AAHanotherFakeToken_abcdefghijklmnop";
    fake.addBot(otherToken, { ...BOT, id: 7_099_999_999, username: "acme_new_bot" });
    const adapter = newAdapter();
    const update = messageUpdate(textMessage("@acme_new_bot hi", { chat: SUPERGROUP }));
    const before = tenantWith();
    const after = tenantWith({ bot_token: otherToken });
    const ignored = await adapter.receive(webhook(update), before.telegram!, before);
    const accepted = await adapter.receive(webhook(update), after.telegram!, after);
    expect(ignored).toMatchObject({ messages: [] });
    expect(accepted).toMatchObject({ messages: [{ text: "hi" }] });
    expect(fake.callsTo("getMe").map((c) => c.token)).toEqual([TOKEN, otherToken]);
  });

  it("a failing getMe answers 503 so Telegram redelivers, and is retried on the next webhook", async () => {
    const adapter = newAdapter();
    const tenant = tenantWith();
    const update = messageUpdate(textMessage("@acme_support_bot hi", { chat: GROUP }));
    fake.failNext("getMe", { kind: "server_error" });
    const failure = await adapter.receive(webhook(update), tenant.telegram!, tenant).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(HttpError);
    expect(failure).toMatchObject({ status: 503 });
    await expect(adapter.receive(webhook(update), tenant.telegram!, tenant)).resolves.toMatchObject({
      messages: [{ text: "hi" }],
    });
  });

  it.each([
    ["malformed JSON", '{"update_id": 1, "message": ', "body is not valid JSON"],
    ["a JSON array", "[1,2]", "not a Telegram Update: body is not a JSON object"],
    ["a message without chat", '{"update_id":1,"message":{"message_id":1,"date":1,"text":"x"}}', "chat"],
  ])("%s is a 400 with a reason", async (_name, body, reason) => {
    const adapter = newAdapter();
    const tenant = tenantWith();
    const error = await adapter.receive(webhook(body), tenant.telegram!, tenant).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ status: 400 });
    expect((error as HttpError).message).toContain(reason);
  });

  it("ignored updates store nothing and say why; the ack is an empty 200", async () => {
    const adapter = newAdapter();
    const tenant = tenantWith();
    const update = editedMessageUpdate(textMessage("fixed typo", { chat: privateChat(ALICE) }));
    expect(await adapter.receive(webhook(update), tenant.telegram!, tenant)).toEqual({
      type: "messages",
      messages: [],
      ignored: "edited_message update",
    });
    const ack = adapter.ack();
    expect(ack.status).toBe(200);
    expect(await ack.text()).toBe("");
  });
});

describe("sending", () => {
  const adapter = newAdapter();
  let tenant: TenantConfig;
  beforeAll(() => {
    tenant = tenantWith();
  });

  it("a private reply is HTML, with no reply reference", async () => {
    const sent = await adapter.send(target(tenant, { chat_id: ALICE.id }), "<b>Hi</b> &amp; welcome", {
      plain: false,
    });
    const [call] = fake.callsTo("sendMessage");
    expect(call?.params).toEqual({ chat_id: ALICE.id, text: "<b>Hi</b> &amp; welcome", parse_mode: "HTML" });
    expect(sent).toEqual({ channelMessageId: expect.stringMatching(/^\d+$/) });
  });

  it("a plain re-send has no parse_mode", async () => {
    await adapter.send(target(tenant, { chat_id: ALICE.id }), "<p> is not a tag here", { plain: true });
    expect(fake.callsTo("sendMessage")[0]?.params).toEqual({
      chat_id: ALICE.id,
      text: "<p> is not a tag here",
    });
  });

  it("in a forum topic: same topic, as a reply to the user's message", async () => {
    const topic = topicRoot(FORUM).message_id;
    const route = { chat_id: FORUM.id, message_thread_id: topic, reply_to_message_id: 4242 };
    await adapter.send(target(tenant, route), "Your invoice is on its way.", { plain: false });
    expect(fake.callsTo("sendMessage")[0]?.params).toEqual({
      chat_id: FORUM.id,
      text: "Your invoice is on its way.",
      parse_mode: "HTML",
      message_thread_id: topic,
      reply_parameters: { message_id: 4242, allow_sending_without_reply: true },
    });
  });

  it("markup Telegram rejects is a markup error; the plain re-send then goes through", async () => {
    const route = { chat_id: ALICE.id };
    const error = await sendError(adapter.send(target(tenant, route), "<p>Hello</p>", { plain: false }));
    expect(error).toMatchObject({ kind: "markup", code: "400" });
    expect(error.message).toBe("Telegram sendMessage answered 400 (markup rejected)");
    await expect(adapter.send(target(tenant, route), "Hello", { plain: true })).resolves.toBeDefined();
  });

  it("an injected parse error is a markup error too", async () => {
    fake.failNext("sendMessage", { kind: "parse" });
    expect(
      await sendError(adapter.send(target(tenant, { chat_id: ALICE.id }), "<b>x</b>", { plain: false })),
    ).toMatchObject({ kind: "markup" });
  });

  it("a 502 HTML page from a proxy is a retry without a delay", async () => {
    fake.failNext("sendMessage", { kind: "bad_gateway" });
    const error = await sendError(
      adapter.send(target(tenant, { chat_id: ALICE.id }), "hi", { plain: false }),
    );
    expect(error).toMatchObject({ kind: "retry", code: "network", retryAfterMs: undefined });
  });

  it("an unreachable Bot API is a retry, and the error does not reveal the token", async () => {
    const down = tenantWith({ api_root: "http://127.0.0.1:9" });
    const error = await sendError(
      newAdapter().send(target(down, { chat_id: ALICE.id }), "hi", { plain: false }),
    );
    expect(error).toMatchObject({ kind: "retry", code: "network" });
    expect(JSON.stringify({ message: error.message, stack: error.stack })).not.toContain(TOKEN);
  });

  it.each([
    [
      "blocked by the user",
      { kind: "blocked" } as const,
      "403",
      "Telegram sendMessage answered 403 (bot blocked by the user)",
    ],
    [
      "chat not found",
      { kind: "chat_not_found" } as const,
      "400",
      "Telegram sendMessage answered 400 (chat not found)",
    ],
  ])("%s is permanent", async (_name, failure, code, message) => {
    fake.failNext("sendMessage", failure);
    const error = await sendError(
      adapter.send(target(tenant, { chat_id: ALICE.id }), "hi", { plain: false }),
    );
    expect(error).toMatchObject({ kind: "permanent", code, message });
  });

  it("a revoked token is permanent", async () => {
    const revoked = tenantWith({ bot_token: "7000000000:AAHrevokedToken_aaaaaaaaaaaaaaaaaaaaaaa" });
    const error = await sendError(
      newAdapter().send(target(revoked, { chat_id: ALICE.id }), "hi", { plain: false }),
    );
    expect(error).toMatchObject({
      kind: "permanent",
      code: "401",
      message: "Telegram sendMessage answered 401 (bot token rejected)",
    });
  });

  it("a group migrated to a supergroup is followed and the new route returned", async () => {
    const oldGroup = -4_055_000_001;
    const supergroup = -1_004_055_000_001;
    fake.migrateChat(oldGroup, supergroup);
    const sent = await adapter.send(target(tenant, { chat_id: oldGroup, reply_to_message_id: 77 }), "hi", {
      plain: false,
    });
    expect(sent.route).toEqual({ chat_id: supergroup });
    const calls = fake.callsTo("sendMessage", { includeFailed: true });
    expect(calls.map((c) => [c.params.chat_id, c.status])).toEqual([
      [oldGroup, 400],
      [supergroup, 200],
    ]);
    expect(calls[1]?.params).not.toHaveProperty("reply_parameters");
  });

  describe("the 4096-character limit counts text after entity parsing", () => {
    it("accepts 4096 visible characters, even when the markup is longer", async () => {
      const text = `<b>${"&amp;".repeat(4096)}</b>`;
      await expect(
        adapter.send(target(tenant, { chat_id: ALICE.id }), text, { plain: false }),
      ).resolves.toBeDefined();
    });

    it("refuses 4097 as Telegram does: permanent, never retried", async () => {
      const error = await sendError(
        adapter.send(target(tenant, { chat_id: ALICE.id }), "a".repeat(4097), {
          plain: true,
        }),
      );
      expect(error).toMatchObject({
        kind: "permanent",
        message: "Telegram sendMessage answered 400 (message too long)",
      });
    });
  });

  it("typing: sendChatAction every 4 s, into the topic", async () => {
    expect(adapter.typing?.intervalMs).toBe(4000);
    await adapter.typing?.send(
      target(tenant, { chat_id: FORUM.id, message_thread_id: 9, reply_to_message_id: 5 }),
    );
    expect(fake.callsTo("sendChatAction")[0]?.params).toEqual({
      chat_id: FORUM.id,
      action: "typing",
      message_thread_id: 9,
    });
  });

  it("typing failures are classified like sends", async () => {
    fake.failNext("sendChatAction", { kind: "flood", retryAfter: 2 });
    const error = await sendError(adapter.typing!.send(target(tenant, { chat_id: ALICE.id })));
    expect(error).toMatchObject({ kind: "retry", retryAfterMs: 2000 });
  });

  it("an api_root with a trailing slash works", async () => {
    const slashed = tenantWith({ api_root: `${server.url}/` });
    await expect(
      newAdapter().send(target(slashed, { chat_id: ALICE.id }), "hi", { plain: false }),
    ).resolves.toBeDefined();
  });
});

describe("webhook registration (CLI)", () => {
  it("setWebhook carries the secret token and only the handled update types; webhook-info reads it back", async () => {
    const config = tenantWith().telegram!;
    await setTelegramWebhook(config, "https://bridge.example.com/webhooks/acme/telegram");
    expect(fake.webhookOf(TOKEN)).toMatchObject({
      url: "https://bridge.example.com/webhooks/acme/telegram",
      secret_token: SECRET,
      allowed_updates: ["message"],
    });
    const info = await getTelegramWebhookInfo(config);
    expect(info).toMatchObject({
      url: "https://bridge.example.com/webhooks/acme/telegram",
      allowed_updates: ["message"],
    });
    expect(JSON.stringify(info)).not.toContain(SECRET);
  });

  it("a failed call is one line naming the URL with the token masked: a proxy's 502 page, or Telegram's own error", async () => {
    const config = tenantWith().telegram!;
    const at = `getWebhookInfo at ${server.url}/bot<token>/getWebhookInfo`;
    fake.failNext("getWebhookInfo", { kind: "bad_gateway" });
    const proxied = await getTelegramWebhookInfo(config).catch((e: unknown) => e);
    expect(proxied).toBeInstanceOf(TelegramCallError);
    expect((proxied as Error).message).toBe(
      `${at}: answered HTTP 502 Bad Gateway with a body that is not the Bot API's JSON (is api_root a Bot API server?)`,
    );
    fake.failNext("setWebhook", { kind: "server_error" });
    const failed = await setTelegramWebhook(config, "https://bridge.example.com/x").catch((e: unknown) => e);
    expect((failed as Error).message).toBe(
      `setWebhook at ${server.url}/bot<token>/setWebhook answered 500 Internal Server Error`,
    );
    for (const error of [proxied, failed])
      expect((error as Error).message).not.toContain(TOKEN.split(":")[1]);
  });
});
