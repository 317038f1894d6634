/** The bot's webhook settings, managed by the CLI (`bridge telegram set-webhook`, `webhook-info`). */
import { type Api, GrammyError, HttpError } from "grammy";
import type { WebhookInfo } from "grammy/types";
import { networkFailure } from "../shared.js";
import type { TelegramConfig } from "./config.js";
import { NotBotApiAnswer } from "./fetch.js";
import { ALLOWED_UPDATES, createTelegramApi, REQUEST_TIMEOUT_SECONDS } from "./outbound.js";

/**
 * A Bot API call made for the operator failed. Its message is one line: the method, the URL called with the
 * token masked, and what went wrong. It never carries the token.
 */
export class TelegramCallError extends Error {
  override name = "TelegramCallError";
}

/** Points the bot's webhook at `url` with the tenant's secret token. */
export async function setTelegramWebhook(config: TelegramConfig, url: string): Promise<void> {
  await call(config, "setWebhook", (api) =>
    api.setWebhook(url, { secret_token: config.webhook_secret, allowed_updates: [...ALLOWED_UPDATES] }),
  );
}

/** The bot's current webhook state as Telegram reports it. */
export function getTelegramWebhookInfo(config: TelegramConfig): Promise<WebhookInfo> {
  return call(config, "getWebhookInfo", (api) => api.getWebhookInfo());
}

async function call<T>(config: TelegramConfig, method: string, run: (api: Api) => Promise<T>): Promise<T> {
  try {
    return await run(createTelegramApi(config));
  } catch (error) {
    throw callError(config, method, error);
  }
}

/** What an operator can do about an error code Telegram answered. */
const HINTS: Record<number, string> = {
  401: "the bot token was rejected: check bot_token",
  404: "no bot has this token, or api_root is not a Bot API server",
};

function callError(config: TelegramConfig, method: string, error: unknown): unknown {
  // The token is the secret part of the URL's path (`/bot<token>/<method>`).
  const at = `${method} at ${config.api_root.replace(/\/+$/, "")}/bot<token>/${method}`;
  if (error instanceof GrammyError) {
    const hint = HINTS[error.error_code];
    const said = oneLine(error.description, config.bot_token);
    return new TelegramCallError(
      `${at} answered ${error.error_code}${said ? ` ${said}` : ""}${hint ? ` (${hint})` : ""}`,
      { cause: error },
    );
  }
  if (error instanceof HttpError) {
    return new TelegramCallError(`${at}: ${unanswered(error.error)}`, { cause: error });
  }
  return error;
}

/** Why no Bot API answer came: grammY's HttpError wraps what fetch threw, or its own timeout. */
function unanswered(cause: unknown): string {
  if (cause instanceof NotBotApiAnswer) {
    return `answered HTTP ${cause.status} ${cause.statusText} with a body that is not the Bot API's JSON (is api_root a Bot API server?)`;
  }
  const network = networkFailure(cause);
  if (network) return network;
  // grammY's own timer ("Request to 'setWebhook' timed out after 30 seconds") has no code.
  if (cause instanceof Error && /timed out/.test(cause.message)) {
    return `no answer within ${REQUEST_TIMEOUT_SECONDS} seconds`;
  }
  return `the request failed (${cause instanceof Error ? cause.name : typeof cause})`;
}

/**
 * Telegram's description made safe for one terminal line: control characters (a hostile or broken server
 * could send escape sequences) become spaces, the token is masked should the server quote it, and the text
 * is cut at 200 characters.
 */
function oneLine(text: string, token: string): string {
  return text
    .replaceAll(token, "<token>")
    .replace(/[\p{Cc}\p{Cf}\s]+/gu, " ")
    .trim()
    .slice(0, 200);
}
