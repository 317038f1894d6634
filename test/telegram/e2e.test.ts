/**
 * The whole service over HTTP: Telegram-style webhook deliveries in, the real grammY client out to the Bot
 * API fake, Quickchat's fake in between, PGlite as the inbox.
 */
import type { Update } from "grammy/types";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inboundMessages } from "../../src/db/schema.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import { createTelegramFake, deliverUpdate, type TelegramFake } from "../fakes/telegram.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { guardUnexpected } from "../support/unexpected.js";
import {
  ALICE,
  album,
  automaticForward,
  BOB,
  BOT,
  botMessage,
  CHANNEL,
  deeplyNestedReplyBody,
  FORUM,
  GROUP,
  messageUpdate,
  onBehalfOf,
  photoMessage,
  privateChat,
  SUPERGROUP,
  stickerMessage,
  textMessage,
  topicRoot,
} from "./updates.js";

const TOKEN = "7012345678:AAHfakeTokenForTests_0123456789abcdef";
const SECRET = "acme-telegram-secret";
const TEXTS = { unsupported: "I can only read text messages.", reset: "Okay, let's start over." };

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
/** About 9,000 characters of paragraphs. */
const LONG_REPLY = Array.from(
  { length: 90 },
  (_, i) => `<p>Paragraph ${i + 1}: ${"the quick brown fox jumps over the lazy dog ".repeat(2).trim()}.</p>`,
).join("");

let quickchat: QuickchatFake;
let telegram: TelegramFake;
let telegramServer: RunningFake;
let bridge: TestBridge;
const guard = guardUnexpected([TEXTS]);

beforeEach(async () => {
  quickchat = await new QuickchatFake({
    scenarios: { "acme-scenario": "acme-token" },
    reply: (text) =>
      text === "long answer please"
        ? LONG_REPLY
        : text === "markup Telegram rejects"
          ? "Press <b>Enter</b> & wait"
          : `You said: <b>${escapeHtml(text)}</b><br>Anything else?`,
  }).start();
  telegram = createTelegramFake({ [TOKEN]: BOT });
  telegramServer = await startFake(telegram.app);
  guard.watch(quickchat, telegram);
  bridge = await startTestBridge({
    tenants: [
      {
        id: "acme",
        quickchat: { scenario_id: "acme-scenario", token: "acme-token", base_url: quickchat.url },
        telegram: { bot_token: TOKEN, webhook_secret: SECRET, api_root: telegramServer.url },
        texts: TEXTS,
      },
    ],
  });
});

afterEach(async () => {
  // Whatever happened in the test, the bot token and the webhook secret never reach the logs.
  const logs = bridge?.logs.join("\n") ?? "";
  expect(logs).not.toContain(TOKEN);
  expect(logs).not.toContain(SECRET);
  await bridge?.stop();
  await telegramServer?.close();
  await quickchat?.close();
});

async function deliverOk(update: Update) {
  const response = await deliverUpdate(`${bridge.url}/webhooks/acme/telegram`, update, SECRET);
  expect(response.status).toBe(200);
}

const sent = () => telegram.callsTo("sendMessage");
const sentCount = (count: number) =>
  waitFor(() => sent().length >= count, 10_000, `${count} sendMessage calls`);
const inbox = () => bridge.database.db.select().from(inboundMessages);
/** Lets the worker run a little, for asserting that something did not happen. */
const settle = () => new Promise((r) => setTimeout(r, 600));

const dm = { chat: privateChat(ALICE) };

describe("private chats", () => {
  it("a message gets Quickchat's HTML reply rendered for Telegram; the next one continues the conversation", async () => {
    await deliverOk(messageUpdate(textMessage("What are your hours?", dm)));
    await sentCount(1);
    expect(sent()[0]?.params).toEqual({
      chat_id: ALICE.id,
      text: "You said: <b>What are your hours?</b>\nAnything else?",
      parse_mode: "HTML",
    });
    expect(quickchat.calls[0]?.body).toMatchObject({
      scenario_id: "acme-scenario",
      text: "What are your hours?",
      client_metadata: {
        channel: "telegram",
        channel_user_id: String(ALICE.id),
        channel_thread_id: String(ALICE.id),
        user_name: "Alice Liddell",
      },
    });
    expect(quickchat.calls[0]?.body.conv_id).toBeUndefined();

    await deliverOk(messageUpdate(textMessage("And on Sundays?", dm)));
    await sentCount(2);
    expect(quickchat.calls[1]?.body.conv_id).toBe("conv-1");
  });

  it("a malformed body is a 400 and an unknown tenant a 404", async () => {
    const malformed = await bridge.post("/webhooks/acme/telegram", "{not json", {
      "X-Telegram-Bot-Api-Secret-Token": SECRET,
    });
    expect(malformed.status).toBe(400);
    const unknown = await deliverUpdate(
      `${bridge.url}/webhooks/nobody/telegram`,
      messageUpdate(textMessage("hi", dm)),
      SECRET,
    );
    expect(unknown.status).toBe(404);
  });

  it("a photo's caption is forwarded to Quickchat", async () => {
    await deliverOk(messageUpdate(photoMessage({ ...dm, caption: "Is this part broken?" })));
    await sentCount(1);
    expect(quickchat.calls.map((c) => c.body.text)).toEqual(["Is this part broken?"]);
  });

  it("/start with a payload starts a new conversation and forwards the payload; /reset confirms without Quickchat", async () => {
    await deliverOk(messageUpdate(textMessage("hello", dm)));
    await sentCount(1);
    await deliverOk(messageUpdate(textMessage("/start spring-promo", dm)));
    await sentCount(2);
    expect(quickchat.calls[1]?.body).toMatchObject({ text: "spring-promo" });
    expect(quickchat.calls[1]?.body.conv_id).toBeUndefined();

    await deliverOk(messageUpdate(textMessage("/reset", dm)));
    await sentCount(3);
    expect(sent()[2]?.params.text).toBe(TEXTS.reset);
    expect(quickchat.calls).toHaveLength(2);

    await deliverOk(messageUpdate(textMessage("/start", dm)));
    await sentCount(4);
    expect(quickchat.calls[2]?.body.text).toBe("Hello!");
    expect(quickchat.calls[2]?.body.conv_id).toBeUndefined();
  });
});

describe("payloads from real traffic (issue 24)", () => {
  it("an update whose reply_to_message chain is 12,000 deep is answered 200, stored and replied to", async () => {
    const response = await fetch(`${bridge.url}/webhooks/acme/telegram`, {
      method: "POST",
      headers: { "content-type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET },
      body: deeplyNestedReplyBody(ALICE, "deep question", 12_000),
    });
    expect(response.status).toBe(200);
    await sentCount(1);
    expect(quickchat.calls.map((c) => c.body.text)).toEqual(["deep question"]);
  });

  it("a caption-less album gets one unsupported answer; an automatic forward of a channel post none", async () => {
    guard.expectUserText("unsupported");
    const photos = album(dm, [undefined, undefined, undefined]);
    for (const photo of photos) await deliverOk(messageUpdate(photo));
    await deliverOk(
      messageUpdate(automaticForward("Release notes, ask @acme_support_bot", SUPERGROUP, CHANNEL)),
    );
    await deliverOk(messageUpdate(textMessage("after the album", dm)));
    await sentCount(2);
    await settle();
    expect(sent().map((c) => c.params.text)).toEqual([
      TEXTS.unsupported,
      "You said: <b>after the album</b>\nAnything else?",
    ]);
    expect(quickchat.calls.map((c) => c.body.text)).toEqual(["after the album"]);
  });

  it("a group message that is only the bot's mention is answered with the greeting, in the same conversation", async () => {
    await deliverOk(messageUpdate(textMessage("@acme_support_bot hi", { chat: GROUP })));
    await sentCount(1);
    await deliverOk(messageUpdate(textMessage("@acme_support_bot", { chat: GROUP })));
    await sentCount(2);
    expect(quickchat.calls.map((c) => [c.body.text, c.body.conv_id])).toEqual([
      ["hi", undefined],
      ["Hello!", "conv-1"],
    ]);
  });

  it("an anonymous admin's mention is answered", async () => {
    await deliverOk(messageUpdate(onBehalfOf("@acme_support_bot rules?", SUPERGROUP, SUPERGROUP, "Mod")));
    await sentCount(1);
    expect(quickchat.calls[0]?.body).toMatchObject({
      text: "rules?",
      client_metadata: { channel_user_id: String(SUPERGROUP.id), user_name: "Mod" },
    });
  });
});

describe("groups and forum topics", () => {
  it("ignores messages that don't address the bot; answers a mention, a command and a reply to the bot, in the right topic", async () => {
    const topic = topicRoot(FORUM, "Billing");
    const inTopic = { chat: FORUM, topic };

    await deliverOk(messageUpdate(textMessage("lunch anyone?", { chat: GROUP, from: BOB })));
    await deliverOk(messageUpdate(textMessage("where is my invoice?", inTopic)));
    await settle();
    expect(await inbox()).toHaveLength(0);
    expect(quickchat.calls).toHaveLength(0);

    const mention = textMessage("@acme_support_bot where is my invoice?", inTopic);
    await deliverOk(messageUpdate(mention));
    await sentCount(1);
    expect(quickchat.calls[0]?.body.text).toBe("where is my invoice?");
    expect(sent()[0]?.params).toMatchObject({
      chat_id: FORUM.id,
      message_thread_id: topic.message_id,
      reply_parameters: { message_id: mention.message_id, allow_sending_without_reply: true },
    });

    const command = textMessage("/reset@acme_support_bot", inTopic);
    await deliverOk(messageUpdate(command));
    await sentCount(2);
    expect(sent()[1]?.params).toMatchObject({
      text: TEXTS.reset,
      message_thread_id: topic.message_id,
      reply_parameters: { message_id: command.message_id },
    });

    const reply = textMessage("and the March one?", {
      chat: GROUP,
      from: BOB,
      replyTo: botMessage("Which invoice?", GROUP),
    });
    await deliverOk(messageUpdate(reply));
    await sentCount(3);
    expect(sent()[2]?.params).toMatchObject({
      chat_id: GROUP.id,
      reply_parameters: { message_id: reply.message_id },
    });
    expect(sent()[2]?.params).not.toHaveProperty("message_thread_id");
    expect(quickchat.calls.at(-1)?.body.client_metadata).toMatchObject({
      channel_thread_id: String(GROUP.id),
      channel_user_id: String(BOB.id),
    });
  });

  it("a sticker replying to the bot in a group gets the unsupported text", async () => {
    guard.expectUserText("unsupported");
    await deliverOk(
      messageUpdate(stickerMessage({ chat: GROUP, replyTo: botMessage("Anything else?", GROUP) })),
    );
    await sentCount(1);
    expect(sent()[0]?.params.text).toBe(TEXTS.unsupported);
  });

  it("follows a group migrated to a supergroup, for the later parts too", async () => {
    const supergroup = -1_004_012_345_678;
    telegram.migrateChat(GROUP.id, supergroup);
    await deliverOk(messageUpdate(textMessage("@acme_support_bot long answer please", { chat: GROUP })));
    await waitFor(async () => (await inbox())[0]?.status === "delivered", 10_000, "delivery");
    const calls = telegram.callsTo("sendMessage", { includeFailed: true });
    expect(calls.length).toBeGreaterThanOrEqual(4);
    expect(calls.map((c) => [c.params.chat_id, c.status])).toEqual([
      [GROUP.id, 400],
      ...calls.slice(1).map(() => [supergroup, 200]),
    ]);
  });
});

describe("delivery", () => {
  it("a part whose markup Telegram rejects is re-sent as plain text", async () => {
    telegram.failNext("sendMessage", { kind: "parse" });
    await deliverOk(messageUpdate(textMessage("markup Telegram rejects", dm)));
    await sentCount(1);
    const calls = telegram.callsTo("sendMessage", { includeFailed: true });
    expect(calls.map((c) => [c.status, c.params.parse_mode])).toEqual([
      [400, "HTML"],
      [200, undefined],
    ]);
    expect(calls[1]?.params.text).toBe("Press Enter & wait");
  });

  it("a user who blocked the bot fails the message without retries", async () => {
    telegram.blockChat(ALICE.id);
    await deliverOk(messageUpdate(textMessage("hello", dm)));
    await waitFor(async () => (await inbox())[0]?.status === "failed", 10_000, "failure");
    await settle();
    expect(telegram.callsTo("sendMessage", { includeFailed: true })).toHaveLength(1);
  });

  it("a reply within a second is sent without a typing signal", async () => {
    await deliverOk(messageUpdate(textMessage("quick one", dm)));
    await sentCount(1);
    await new Promise((r) => setTimeout(r, 1200)); // past the typing delay
    expect(telegram.callsTo("sendChatAction")).toEqual([]);
  });

  it("typing is shown during a slow (6 s) Quickchat answer, renewed every 4 s", async () => {
    quickchat.latencyMs = 6000;
    await deliverOk(messageUpdate(textMessage("think hard", dm)));
    await sentCount(1);
    const typing = telegram.callsTo("sendChatAction");
    expect(typing.length).toBeGreaterThanOrEqual(2);
    expect(typing[0]?.params).toEqual({ chat_id: ALICE.id, action: "typing" });
    expect(typing[1]!.time - typing[0]!.time).toBeGreaterThanOrEqual(3900);
    expect(typing.every((c) => c.time <= sent()[0]!.time)).toBe(true);
  }, 20_000);
});
