/**
 * Telegram through the real grammY client: updates posted with the webhook's secret token header, replies
 * read from the Bot API fake (test/fakes/telegram.ts).
 */
import type { Chat, Update, User } from "grammy/types";
import { type RunningFake, startFake } from "../../fakes/server.js";
import { createTelegramFake, type TelegramFailure, type TelegramFake } from "../../fakes/telegram.js";
import {
  BOT,
  editedMessageUpdate,
  messageUpdate,
  photoMessage,
  privateChat,
  textMessage,
} from "../../telegram/updates.js";
import type { ChannelDriver, DriverThread, SendFailure, UserMessage, Webhook } from "../driver.js";

const TOKEN = "7012345678:AAHcontractTokenForTests_0123456789ab";
const SECRET = "contract-telegram-secret";

interface TelegramThread extends DriverThread {
  user: User;
  chat: Chat.PrivateChat;
}

const webhook = (update: Update, secret = SECRET): Webhook => ({
  body: JSON.stringify(update),
  headers: { "content-type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret },
});

const telegramFailure = (failure: SendFailure): TelegramFailure =>
  failure.kind === "rate_limit"
    ? { kind: "flood", retryAfter: failure.retryAfterSeconds }
    : { kind: "server_error" };

export function telegramDriver(): ChannelDriver<TelegramThread> {
  let fake: TelegramFake;
  let server: RunningFake;
  let users = 0;

  return {
    name: "telegram",
    route: "telegram",
    // sendMessage: "Text of the message to be sent, 1-4096 characters after entities parsing"
    // (https://core.telegram.org/bots/api#sendmessage).
    partLimit: 4096,
    ack: { status: 200, body: "" },
    forgedStatus: 401,

    async start() {
      fake = createTelegramFake({ [TOKEN]: BOT });
      server = await startFake(fake.app);
    },
    stop: () => server?.close(),
    tenantBlock: () => ({ telegram: { bot_token: TOKEN, webhook_secret: SECRET, api_root: server.url } }),

    newThread() {
      const user: User = {
        id: 610_000_000 + ++users,
        is_bot: false,
        first_name: "Contract",
        last_name: `${users}`,
      };
      const chat = privateChat(user);
      return { key: String(chat.id), user, chat };
    },
    text(thread, text): UserMessage {
      const message = textMessage(text, { chat: thread.chat, from: thread.user });
      return {
        webhook: webhook(messageUpdate(message)),
        dedupeKey: `${thread.chat.id}:${message.message_id}`,
      };
    },
    unsupported(thread): UserMessage {
      const message = photoMessage({ chat: thread.chat, from: thread.user });
      return {
        webhook: webhook(messageUpdate(message)),
        dedupeKey: `${thread.chat.id}:${message.message_id}`,
      };
    },
    ignored: (thread) =>
      webhook(editedMessageUpdate(textMessage("fixed a typo", { chat: thread.chat, from: thread.user }))),
    // Telegram posts the same update again, update_id and all.
    redelivery: (message) => message.webhook,
    forged: (original) => ({
      ...original,
      headers: { ...original.headers, "X-Telegram-Bot-Api-Secret-Token": "not-the-secret" },
    }),

    delivered: (thread) => fake.messages.filter((m) => m.chatId === thread.chat.id).map((m) => m.text),
    attempts: (thread) =>
      fake.calls
        .filter((call) => call.method === "sendMessage" && Number(call.params.chat_id) === thread.chat.id)
        .map((call) => ({ at: call.time, accepted: call.status === 200 })),
    failNextSend: (thread, failure, times = 1) =>
      fake.failChat(thread.chat.id, "sendMessage", telegramFailure(failure), times),
    refuseConnections: () => server.refuseConnections(),
    acceptConnections: () => server.acceptConnections(),
    watched: () => fake,
  };
}
