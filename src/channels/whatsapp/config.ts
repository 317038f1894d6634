import { z } from "zod";
import { httpUrl } from "../shared.js";

export const DEFAULT_TWILIO_API_BASE = "https://api.twilio.com";

/** A tenant's `whatsapp` block: WhatsApp through Twilio. */
export const whatsappSchema = z.strictObject({
  account_sid: z.string().min(1),
  auth_token: z.string().min(1),
  from: z.string().regex(/^whatsapp:\+?[0-9]+$/, "must look like whatsapp:+14155238886"),
  api_base: httpUrl.default(DEFAULT_TWILIO_API_BASE),
});

export type WhatsappConfig = z.output<typeof whatsappSchema>;
