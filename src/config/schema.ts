import { z } from "zod";

/** Tenant ids appear in webhook URLs, so they are restricted to URL-safe characters. */
export const tenantId = z.string().regex(/^[a-z0-9-]{1,64}$/, "must match [a-z0-9-]{1,64}");

const url = z.url({ protocol: /^https?$/ });

export const DEFAULT_TELEGRAM_API_ROOT = "https://api.telegram.org";
export const DEFAULT_SLACK_API_URL = "https://slack.com/api/";
export const DEFAULT_TWILIO_API_BASE = "https://api.twilio.com";

export const quickchatSchema = z
  .strictObject({
    scenario_id: z.string().min(1),
    token: z.string().min(1).optional(),
    api_key: z.string().min(1).optional(),
    base_url: url.optional(),
    kb_topic: z.string().min(1).optional(),
  })
  .refine((q) => Boolean(q.token) !== Boolean(q.api_key), {
    message: "set exactly one of token (Bearer) or api_key (legacy)",
  });

export const telegramSchema = z.strictObject({
  bot_token: z.string().min(1),
  webhook_secret: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,256}$/, "must be 1-256 characters of A-Z, a-z, 0-9, _ and -"),
  api_root: url.default(DEFAULT_TELEGRAM_API_ROOT),
});

export const slackSchema = z.strictObject({
  signing_secret: z.string().min(1),
  bot_token: z.string().min(1),
  api_url: url.default(DEFAULT_SLACK_API_URL),
  unfurl_links: z.boolean().default(false),
});

export const whatsappSchema = z.strictObject({
  account_sid: z.string().min(1),
  auth_token: z.string().min(1),
  from: z.string().regex(/^whatsapp:\+?[0-9]+$/, "must look like whatsapp:+14155238886"),
  api_base: url.default(DEFAULT_TWILIO_API_BASE),
});

export const textsSchema = z.strictObject({
  unavailable: z
    .string()
    .min(1)
    .default("Sorry, I can't answer right now. Please try again in a few minutes."),
  unsupported: z.string().min(1).default("I can only read text messages."),
  reset: z.string().min(1).default("Okay, let's start over."),
  greeting: z.string().min(1).default("Hello!"),
});

export const tenantSchema = z.strictObject({
  id: tenantId,
  quickchat: quickchatSchema,
  telegram: telegramSchema.optional(),
  slack: slackSchema.optional(),
  whatsapp: whatsappSchema.optional(),
  texts: textsSchema.default(textsSchema.parse({})),
});

export const configFileSchema = z.strictObject({
  public_url: url.optional(),
  tenants: z.array(tenantSchema).default([]),
});

export type TenantConfig = z.output<typeof tenantSchema>;
export type TenantInput = z.input<typeof tenantSchema>;
export type TelegramConfig = z.output<typeof telegramSchema>;
export type SlackConfig = z.output<typeof slackSchema>;
export type WhatsappConfig = z.output<typeof whatsappSchema>;
export type QuickchatConfig = z.output<typeof quickchatSchema>;
export type TenantTexts = z.output<typeof textsSchema>;
export type ConfigFile = z.output<typeof configFileSchema>;

export const DEFAULT_QUICKCHAT_BASE_URL = "https://app.quickchat.ai";
export const LEGACY_QUICKCHAT_BASE_URL = "https://chat.quickchat.ai";
