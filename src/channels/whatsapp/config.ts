import { z } from "zod";
import { httpUrl } from "../shared.js";
import type { ChannelWarning } from "../types.js";

export const DEFAULT_TWILIO_API_BASE = "https://api.twilio.com";

/** A tenant's `whatsapp` block: WhatsApp through Twilio. */
export const whatsappSchema = z.strictObject({
  /** Twilio's API reference gives an Account SID's pattern: https://www.twilio.com/docs/iam/api/account */
  account_sid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, "must be AC followed by 32 hexadecimal characters"),
  auth_token: z.string().min(1),
  from: z.string().regex(/^whatsapp:\+?[0-9]+$/, "must look like whatsapp:+14155238886"),
  api_base: httpUrl.default(DEFAULT_TWILIO_API_BASE),
});

export type WhatsappConfig = z.output<typeof whatsappSchema>;

/**
 * The Console shows auth tokens as 32 hexadecimal characters, but the API reference gives them no pattern
 * (https://www.twilio.com/docs/iam/api/authtoken): warned about, not refused.
 */
const AUTH_TOKEN = /^[0-9a-f]{32}$/i;

export function whatsappWarnings(config: WhatsappConfig): ChannelWarning[] {
  return AUTH_TOKEN.test(config.auth_token)
    ? []
    : [
        {
          field: "auth_token",
          message: "auth tokens are 32 hexadecimal characters (Console > Account Info)",
        },
      ];
}
