import { unauthorized } from "../../errors.js";
import { safeEqual } from "../shared.js";
import type { TelegramConfig } from "./config.js";

/** Telegram sends the `secret_token` given to setWebhook in this header on every webhook request. */
export const SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token";

/** Throws 401 unless the request carries the tenant's webhook secret. */
export function verifyTelegramSecret(headers: Headers, config: TelegramConfig): void {
  const received = headers.get(SECRET_TOKEN_HEADER);
  if (received === null) throw unauthorized(`missing ${SECRET_TOKEN_HEADER} header`);
  if (!safeEqual(received, config.webhook_secret)) throw unauthorized(`wrong ${SECRET_TOKEN_HEADER}`);
}
