import { z } from "zod";
import { channelBlocks } from "../channels/registry.js";
import { httpUrl } from "../channels/shared.js";

/** Tenant ids appear in webhook URLs, so they are restricted to URL-safe characters. */
export const tenantId = z.string().regex(/^[a-z0-9-]{1,64}$/, "must match [a-z0-9-]{1,64}");

export const quickchatSchema = z
  .strictObject({
    scenario_id: z.string().min(1),
    token: z.string().min(1).optional(),
    api_key: z.string().min(1).optional(),
    base_url: httpUrl.optional(),
    kb_topic: z.string().min(1).optional(),
  })
  .refine((q) => Boolean(q.token) !== Boolean(q.api_key), {
    message: "set exactly one of token (Bearer) or api_key (legacy)",
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
  ...channelBlocks,
  texts: textsSchema.default(textsSchema.parse({})),
});

export const configFileSchema = z.strictObject({
  public_url: httpUrl.optional(),
  tenants: z.array(tenantSchema).default([]),
});

export type TenantConfig = z.output<typeof tenantSchema>;
export type TenantInput = z.input<typeof tenantSchema>;
export type QuickchatConfig = z.output<typeof quickchatSchema>;
export type TenantTexts = z.output<typeof textsSchema>;
export type ConfigFile = z.output<typeof configFileSchema>;

export const DEFAULT_QUICKCHAT_BASE_URL = "https://app.quickchat.ai";
export const LEGACY_QUICKCHAT_BASE_URL = "https://chat.quickchat.ai";
