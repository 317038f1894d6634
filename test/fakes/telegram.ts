/**
 * A loopback fake of the Telegram Bot API (`/bot<token>/<method>`) for the methods the bridge uses, answering
 * with Telegram's real status codes and error bodies, plus a helper that delivers
 * webhook updates the way Telegram does.
 */
import type { Message, Update, UserFromGetMe, WebhookInfo } from "grammy/types";
import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { checkTelegramHtml } from "../support/telegram-html.js";

/**
 * sendMessage's limit, "1-4096 characters after entities parsing". Counted in UTF-16 units, the stricter
 * reading (the docs don't say), and the unit the formatter's splitter counts in.
 */
export const TELEGRAM_TEXT_LIMIT = 4096;

export type TelegramParams = Record<string, unknown>;

export interface TelegramCall {
  token: string;
  method: string;
  params: TelegramParams;
  /** Date.now() when the call arrived. */
  time: number;
  /** The HTTP status the fake answered. */
  status: number;
}

/** A failure injected for the next call(s) of a method. */
export type TelegramFailure =
  | { kind: "flood"; retryAfter: number }
  | { kind: "parse" }
  | { kind: "blocked" }
  | { kind: "chat_not_found" }
  | { kind: "migrated"; toChatId: number }
  | { kind: "server_error" }
  /** What a proxy in front of Telegram answers when it is down: 502 with an HTML page. */
  | { kind: "bad_gateway" };

/**
 * `invalid`: Telegram refused the request itself (missing or malformed parameters, unknown token or method), as
 * opposed to an injected failure or a chat's state (blocked, migrated).
 */
type Outcome = { result: unknown } | { error: ErrorAnswer; invalid?: boolean };

interface ErrorAnswer {
  status: number;
  description: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

const ERRORS = {
  unauthorized: { status: 401, description: "Unauthorized" },
  notFound: { status: 404, description: "Not Found" },
  blocked: { status: 403, description: "Forbidden: bot was blocked by the user" },
  chatNotFound: { status: 400, description: "Bad Request: chat not found" },
  chatIdEmpty: { status: 400, description: "Bad Request: chat_id is empty" },
  textEmpty: { status: 400, description: "Bad Request: message text is empty" },
  tooLong: { status: 400, description: "Bad Request: message is too long" },
  badParseMode: { status: 400, description: "Bad Request: unsupported parse_mode" },
  badAction: { status: 400, description: "Bad Request: wrong parameter action in request" },
  badSecret: { status: 400, description: "Bad Request: secret token contains unallowed characters" },
  serverError: { status: 500, description: "Internal Server Error" },
} satisfies Record<string, ErrorAnswer>;

const flood = (retryAfter: number): ErrorAnswer => ({
  status: 429,
  description: `Too Many Requests: retry after ${retryAfter}`,
  parameters: { retry_after: retryAfter },
});

const migrated = (toChatId: number): ErrorAnswer => ({
  status: 400,
  description: "Bad Request: group chat was migrated to a supergroup chat",
  parameters: { migrate_to_chat_id: toChatId },
});

const BAD_GATEWAY_PAGE =
  "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n";

const CHAT_ACTIONS = new Set([
  "typing",
  "upload_photo",
  "record_video",
  "upload_video",
  "record_voice",
  "upload_voice",
  "upload_document",
  "choose_sticker",
  "find_location",
  "record_video_note",
  "upload_video_note",
]);

interface BotState {
  user: UserFromGetMe;
  webhook: WebhookInfo & { secret_token?: string };
}

/** A message the bot sent, as the user sees it. */
export interface TelegramSentMessage {
  chatId: number;
  /** The visible text (markup parsed away). */
  text: string;
  topic?: number;
}

/** A request the fake refused as invalid: no test asked for it, so it points at a bug in what was sent. */
export interface TelegramRejection {
  method: string;
  status: number;
  description: string;
}

export interface TelegramFake {
  app: Hono;
  /** Every call, rejected ones included, in arrival order. */
  calls: TelegramCall[];
  /** Every message sendMessage accepted, in order. */
  messages: TelegramSentMessage[];
  /** Requests answered with a validation error (not an injected failure, nor a blocked or migrated chat). */
  rejections: TelegramRejection[];
  /** The texts users saw, in order (the unexpected-failure guard reads them). */
  textsToUsers(): string[];
  /** `rejections`, described. */
  refused(): string[];
  /** Calls of one method (answered with 200 unless `includeFailed`). */
  callsTo(method: string, options?: { includeFailed?: boolean }): TelegramCall[];
  /** Registers a bot; calls with an unknown token get 401. */
  addBot(token: string, user: UserFromGetMe): void;
  /** The next `times` calls of `method` fail this way. */
  failNext(method: string, failure: TelegramFailure, times?: number): void;
  /** The next `times` calls of `method` to this chat fail this way (after any `failNext` failures). */
  failChat(chatId: number, method: string, failure: TelegramFailure, times?: number): void;
  /** From now on, sends to `fromChatId` answer "group chat was migrated". */
  migrateChat(fromChatId: number, toChatId: number): void;
  /** From now on, sends to this chat answer 403 "bot was blocked by the user". */
  blockChat(chatId: number): void;
  /** The webhook settings last given to setWebhook for this token. */
  webhookOf(token: string): (WebhookInfo & { secret_token?: string }) | undefined;
}

/** Telegram reads form and query parameters as strings; objects and arrays arrive JSON-serialized. */
function decodeFormValue(value: unknown): unknown {
  if (typeof value !== "string" || !/^[[{]/.test(value)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

async function readParams(c: Context): Promise<TelegramParams> {
  const params: TelegramParams = {};
  for (const [key, value] of new URL(c.req.url).searchParams) params[key] = decodeFormValue(value);
  if (c.req.method !== "POST") return params;
  const type = c.req.header("content-type") ?? "";
  if (type.includes("application/json")) {
    const body: unknown = await c.req.json();
    if (typeof body === "object" && body !== null) Object.assign(params, body);
  } else if (type.includes("multipart/form-data") || type.includes("application/x-www-form-urlencoded")) {
    for (const [key, value] of Object.entries(await c.req.parseBody())) params[key] = decodeFormValue(value);
  }
  return params;
}

const asChatId = (value: unknown) =>
  typeof value === "number" || (typeof value === "string" && value !== "") ? Number(value) : undefined;

const asNumber = (value: unknown) =>
  typeof value === "number" ? value : typeof value === "string" && value !== "" ? Number(value) : undefined;

export function createTelegramFake(bots: Record<string, UserFromGetMe> = {}): TelegramFake {
  const app = new Hono();
  const calls: TelegramCall[] = [];
  const messages: TelegramSentMessage[] = [];
  const rejections: TelegramRejection[] = [];
  const state = new Map<string, BotState>();
  const injected = new Map<string, TelegramFailure[]>();
  const migrations = new Map<number, number>();
  const blocked = new Set<number>();
  const lastMessageId = new Map<number, number>();

  const addBot = (token: string, user: UserFromGetMe) =>
    state.set(token, {
      user,
      webhook: { url: "", has_custom_certificate: false, pending_update_count: 0 },
    });
  for (const [token, user] of Object.entries(bots)) addBot(token, user);

  function injectedFailure(method: string, params: TelegramParams): ErrorAnswer | "bad_gateway" | undefined {
    const failure =
      injected.get(method)?.shift() ?? injected.get(`${method}:${asChatId(params.chat_id)}`)?.shift();
    switch (failure?.kind) {
      case undefined:
        return undefined;
      case "flood":
        return flood(failure.retryAfter);
      case "parse":
        return {
          status: 400,
          description: 'Bad Request: can\'t parse entities: Unsupported start tag "p" at byte offset 0',
        };
      case "blocked":
        return ERRORS.blocked;
      case "chat_not_found":
        return ERRORS.chatNotFound;
      case "migrated":
        return migrated(failure.toChatId);
      case "server_error":
        return ERRORS.serverError;
      case "bad_gateway":
        return "bad_gateway";
    }
  }

  /** Problems of the target chat shared by every chat method. */
  function chatProblem(chatId: number | undefined): ErrorAnswer | undefined {
    if (chatId === undefined || Number.isNaN(chatId)) return ERRORS.chatIdEmpty;
    const movedTo = migrations.get(chatId);
    if (movedTo !== undefined) return migrated(movedTo);
    if (blocked.has(chatId)) return ERRORS.blocked;
    return undefined;
  }

  /** The text a user would see, or why Telegram refuses it. */
  function renderedText(text: unknown, parseMode: unknown): string | ErrorAnswer {
    if (typeof text !== "string") return ERRORS.textEmpty;
    let shown = text;
    if (parseMode === "HTML") {
      const checked = checkTelegramHtml(text);
      // The checker words its errors as Telegram does ("Bad Request: can't parse entities: ...").
      if (!checked.ok) return { status: 400, description: checked.error };
      shown = checked.visibleText;
    } else if (parseMode !== undefined && parseMode !== "") {
      return ERRORS.badParseMode;
    }
    shown = shown.trim();
    if (shown === "") return ERRORS.textEmpty;
    if (shown.length > TELEGRAM_TEXT_LIMIT) return ERRORS.tooLong;
    return shown;
  }

  type Handler = (bot: BotState, params: TelegramParams) => Outcome;

  const methods: Record<string, Handler> = {
    getMe: (bot) => ({ result: bot.user }),

    sendMessage(bot, params) {
      const chatId = asChatId(params.chat_id);
      const problem = chatProblem(chatId);
      if (problem) return { error: problem, invalid: problem === ERRORS.chatIdEmpty };
      const shown = renderedText(params.text, params.parse_mode);
      if (typeof shown !== "string") return { error: shown, invalid: true };
      const chat = chatId!;
      const messageId = (lastMessageId.get(chat) ?? 0) + 1;
      lastMessageId.set(chat, messageId);
      const topic = asNumber(params.message_thread_id);
      const sent: Message = {
        message_id: messageId,
        from: bot.user,
        chat:
          chat > 0
            ? { id: chat, type: "private", first_name: "User" }
            : { id: chat, type: "supergroup", title: "Chat" },
        date: Math.floor(Date.now() / 1000),
        text: shown,
        ...(topic === undefined ? {} : { message_thread_id: topic, is_topic_message: true }),
      };
      messages.push({ chatId: chat, text: shown, ...(topic === undefined ? {} : { topic }) });
      return { result: sent };
    },

    sendChatAction(_bot, params) {
      const problem = chatProblem(asChatId(params.chat_id));
      if (problem) return { error: problem, invalid: problem === ERRORS.chatIdEmpty };
      if (typeof params.action !== "string" || !CHAT_ACTIONS.has(params.action))
        return { error: ERRORS.badAction, invalid: true };
      return { result: true };
    },

    setWebhook(bot, params) {
      const secret = params.secret_token;
      if (secret !== undefined && (typeof secret !== "string" || !/^[A-Za-z0-9_-]{1,256}$/.test(secret))) {
        return { error: ERRORS.badSecret, invalid: true };
      }
      const allowed = Array.isArray(params.allowed_updates)
        ? (params.allowed_updates as WebhookInfo["allowed_updates"])
        : undefined;
      bot.webhook = {
        url: typeof params.url === "string" ? params.url : "",
        has_custom_certificate: false,
        pending_update_count: 0,
        max_connections: asNumber(params.max_connections) ?? 40,
        ...(allowed ? { allowed_updates: allowed } : {}),
        ...(typeof secret === "string" ? { secret_token: secret } : {}),
      };
      return { result: true };
    },

    getWebhookInfo(bot) {
      // Telegram never reveals the secret token.
      const { secret_token: _secret, ...info } = bot.webhook;
      return { result: info };
    },
  };

  app.all("/:bot{bot[^/]+}/:method", async (c) => {
    const token = c.req.param("bot").slice("bot".length);
    const method = c.req.param("method");
    let params: TelegramParams = {};
    try {
      params = await readParams(c);
    } catch {
      // Telegram answers an unreadable body like a missing parameter.
    }
    const call: TelegramCall = { token, method, params, time: Date.now(), status: 200 };
    calls.push(call);

    const bot = state.get(token);
    const handler = methods[method];
    const failure = bot && handler ? injectedFailure(method, params) : undefined;
    if (failure === "bad_gateway") {
      call.status = 502;
      return c.html(BAD_GATEWAY_PAGE, 502);
    }
    const outcome: Outcome = !bot
      ? { error: ERRORS.unauthorized, invalid: true }
      : !handler
        ? { error: ERRORS.notFound, invalid: true }
        : failure
          ? { error: failure }
          : handler(bot, params);
    if ("result" in outcome) return c.json({ ok: true, result: outcome.result });
    const { status, description, parameters } = outcome.error;
    call.status = status;
    if (outcome.invalid) rejections.push({ method, status, description });
    return c.json(
      { ok: false, error_code: status, description, ...(parameters ? { parameters } : {}) },
      status as ContentfulStatusCode,
    );
  });

  return {
    app,
    calls,
    messages,
    rejections,
    textsToUsers: () => messages.map((m) => m.text),
    refused: () => rejections.map((r) => `telegram ${r.method}: ${r.status} ${r.description}`),
    callsTo: (method, options) =>
      calls.filter((call) => call.method === method && (options?.includeFailed || call.status === 200)),
    addBot,
    failNext(method, failure, times = 1) {
      const queue = injected.get(method) ?? [];
      for (let i = 0; i < times; i++) queue.push(failure);
      injected.set(method, queue);
    },
    failChat(chatId, method, failure, times = 1) {
      const key = `${method}:${chatId}`;
      const queue = injected.get(key) ?? [];
      for (let i = 0; i < times; i++) queue.push(failure);
      injected.set(key, queue);
    },
    migrateChat: (from, to) => migrations.set(from, to),
    blockChat: (chatId) => blocked.add(chatId),
    webhookOf: (token) => state.get(token)?.webhook,
  };
}

/**
 * Posts an update to a webhook as Telegram does: JSON body, the secret token header when the webhook has one.
 * Telegram has no signature to compute: the shared secret itself is the proof.
 */
export function deliverUpdate(url: string, update: Update, secretToken?: string): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(secretToken === undefined ? {} : { "X-Telegram-Bot-Api-Secret-Token": secretToken }),
    },
    body: JSON.stringify(update),
  });
}
