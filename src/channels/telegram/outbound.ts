import { Api, GrammyError, HttpError } from "grammy";
import { ChannelSendError, type Route, type SentPart } from "../types.js";
import type { TelegramConfig } from "./config.js";
import { telegramFetch } from "./fetch.js";

/** Telegram's own default is 500 s; a stuck send should rather fail and be retried by the relay. */
export const REQUEST_TIMEOUT_SECONDS = 30;

/** The update types the bridge handles; everything else is not even delivered. */
export const ALLOWED_UPDATES = ["message"] as const;

/** A grammY client for the tenant's bot, on the tenant's Bot API server. */
export function createTelegramApi(config: TelegramConfig): Api {
  // grammY refuses an apiRoot with a trailing slash.
  const apiRoot = config.api_root.replace(/\/+$/, "");
  return new Api(config.bot_token, {
    apiRoot,
    timeoutSeconds: REQUEST_TIMEOUT_SECONDS,
    fetch: telegramFetch,
  });
}

/** The route fields written by `inbound.ts`. */
function readRoute(route: Route) {
  const number = (key: string) => {
    const value = route[key];
    return typeof value === "number" ? value : undefined;
  };
  const chatId = route.chat_id;
  if (typeof chatId !== "number" && typeof chatId !== "string") {
    throw new ChannelSendError("permanent", "Telegram route has no chat_id", "bad_route");
  }
  return { chatId, topic: number("message_thread_id"), replyTo: number("reply_to_message_id") };
}

/**
 * Sends one part of a reply: HTML unless `plain`, into the topic, and in groups as a reply to the user's
 * message. Every part is a reply (the relay sends parts one by one and does not say which one this is), which
 * also keeps a long answer visibly attached to its question in a busy group. A group that was migrated to a
 * supergroup is followed once, and the new route is returned so later parts and replies go there directly.
 */
export async function sendTelegramMessage(
  api: Api,
  route: Route,
  text: string,
  options: { plain: boolean },
): Promise<SentPart> {
  const { chatId, topic, replyTo } = readRoute(route);
  const send = (chat: number | string, replyToMessage: number | undefined) =>
    api.sendMessage(chat, text, {
      ...(options.plain ? {} : { parse_mode: "HTML" as const }),
      ...(topic === undefined ? {} : { message_thread_id: topic }),
      ...(replyToMessage === undefined
        ? {}
        : { reply_parameters: { message_id: replyToMessage, allow_sending_without_reply: true } }),
    });

  try {
    const sent = await send(chatId, replyTo);
    return { channelMessageId: String(sent.message_id) };
  } catch (error) {
    const newChatId = error instanceof GrammyError ? error.parameters.migrate_to_chat_id : undefined;
    if (newChatId === undefined) throw classifySendError(error);
    // Message ids of the old group mean nothing in the supergroup: the reply reference is dropped.
    const { reply_to_message_id: _dropped, ...rest } = route;
    const migrated: Route = { ...rest, chat_id: newChatId };
    try {
      const sent = await send(newChatId, undefined);
      return { channelMessageId: String(sent.message_id), route: migrated };
    } catch (retryError) {
      throw classifySendError(retryError);
    }
  }
}

/** Shows "typing…" in the chat (and topic); Telegram clears it after 5 s or when the bot's message arrives. */
export async function sendTelegramTyping(api: Api, route: Route): Promise<void> {
  const { chatId, topic } = readRoute(route);
  try {
    await api.sendChatAction(chatId, "typing", topic === undefined ? {} : { message_thread_id: topic });
  } catch (error) {
    throw classifySendError(error);
  }
}

/**
 * Telegram's descriptions for the permanent failures an operator most needs to tell apart, as a fixed label.
 * The description itself (whatever the Bot API server at api_root wrote) is never repeated.
 */
const KNOWN_FAILURES: [RegExp, string][] = [
  [/can't parse entities/i, "markup rejected"],
  [/bot was blocked/i, "bot blocked by the user"],
  [/chat not found/i, "chat not found"],
  [/bot was kicked|not a member/i, "bot not in the chat"],
  [/user is deactivated/i, "user deactivated"],
  [/topic_closed|topic closed/i, "topic closed"],
  [/message is too long/i, "message too long"],
  [/not enough rights/i, "not enough rights"],
  [/unauthorized/i, "bot token rejected"],
];

/**
 * Maps grammY's errors to what the relay does next. Telegram error descriptions are not a stable contract,
 * so only the markup case is decided by text (case-insensitively); everything else goes by error code.
 * Messages carry the error code and at most a fixed label, never the remote description (GrammyError's own
 * message embeds it). Errors that are neither (bugs) are returned unchanged.
 */
export function classifySendError(error: unknown): unknown {
  if (error instanceof HttpError) {
    // Only grammY's own message: the wrapped error's message contains the request URL, hence the token.
    return new ChannelSendError("retry", error.message, "network");
  }
  if (!(error instanceof GrammyError)) return error;
  const { error_code: code, description } = error;
  const label = KNOWN_FAILURES.find(([pattern]) => pattern.test(description))?.[1];
  const message = `Telegram ${error.method} answered ${code}${label ? ` (${label})` : ""}`;
  if (code === 429) {
    const seconds = error.parameters.retry_after;
    return new ChannelSendError("retry", message, "429", seconds === undefined ? undefined : seconds * 1000);
  }
  if (code >= 500) return new ChannelSendError("retry", message, String(code));
  if (code === 400 && label === "markup rejected") return new ChannelSendError("markup", message, "400");
  // Blocked by the user, chat not found, kicked, topic closed, too long, token revoked: retrying cannot help.
  return new ChannelSendError("permanent", message, String(code));
}
