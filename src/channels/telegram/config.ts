import { z } from "zod";
import { httpUrl } from "../shared.js";

export const DEFAULT_TELEGRAM_API_ROOT = "https://api.telegram.org";

/** A tenant's `telegram` block. */
export const telegramSchema = z.strictObject({
  bot_token: z.string().min(1),
  webhook_secret: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,256}$/, "must be 1-256 characters of A-Z, a-z, 0-9, _ and -"),
  api_root: httpUrl.default(DEFAULT_TELEGRAM_API_ROOT),
});

export type TelegramConfig = z.output<typeof telegramSchema>;
