import { z } from "zod";
import { httpUrl } from "../shared.js";
import type { ChannelWarning } from "../types.js";

export const DEFAULT_TELEGRAM_API_ROOT = "https://api.telegram.org";

/**
 * What the Bot API server itself accepts as a token; anything else it answers 401 "invalid token specified"
 * before looking the bot up: the bot's numeric id (no leading zero), a colon, a secret without "/", 80
 * characters at most (ClientManager::send in https://github.com/tdlib/telegram-bot-api). Whitespace is
 * refused too: it cannot travel in the URL path the token is sent in.
 */
const BOT_TOKEN = /^[1-9][0-9]*:[^/\s]+$/;
const BOT_TOKEN_MAX = 80;

/**
 * The secret part of the tokens @BotFather hands out: 35 characters of A-Z, a-z, 0-9, _ and - in practice
 * (the docs' example, https://core.telegram.org/bots/api#authorizing-your-bot, has 34). Not guaranteed,
 * so only warned about, with room on either side.
 */
const BOTFATHER_SECRET = /^[A-Za-z0-9_-]{30,40}$/;

/** "Ports currently supported for webhooks: 443, 80, 88, 8443" (https://core.telegram.org/bots/api#setwebhook). */
const WEBHOOK_PORTS = new Set(["", "443", "80", "88", "8443"]);

/** A tenant's `telegram` block. */
export const telegramSchema = z.strictObject({
  bot_token: z
    .string()
    .max(BOT_TOKEN_MAX, `must be at most ${BOT_TOKEN_MAX} characters`)
    .regex(
      BOT_TOKEN,
      "must look like <bot id>:<secret>, the token @BotFather gave (no spaces or line breaks)",
    ),
  webhook_secret: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,256}$/, "must be 1-256 characters of A-Z, a-z, 0-9, _ and -"),
  api_root: httpUrl.default(DEFAULT_TELEGRAM_API_ROOT),
});

export type TelegramConfig = z.output<typeof telegramSchema>;

export function telegramWarnings(config: TelegramConfig, webhookUrl: URL | undefined): ChannelWarning[] {
  const warnings: ChannelWarning[] = [];
  const secret = config.bot_token.slice(config.bot_token.indexOf(":") + 1);
  if (!BOTFATHER_SECRET.test(secret)) {
    warnings.push({
      field: "bot_token",
      message: "@BotFather's tokens have about 35 characters of A-Z, a-z, 0-9, _ and - after the colon",
    });
  }
  if (webhookUrl && webhookUrl.protocol !== "https:") {
    warnings.push({ message: "Telegram delivers webhooks only to https URLs: PUBLIC_URL is not https" });
  }
  if (webhookUrl && !WEBHOOK_PORTS.has(webhookUrl.port)) {
    warnings.push({
      message: `Telegram delivers webhooks only to ports 443, 80, 88 and 8443, not ${webhookUrl.port} (PUBLIC_URL)`,
    });
  }
  return warnings;
}
