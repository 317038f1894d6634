import { z } from "zod";
import { httpUrl } from "../shared.js";
import type { ChannelWarning } from "../types.js";

export const DEFAULT_GRAPH_BASE = "https://graph.facebook.com";

/** The newest Graph API version (introduced 2026-07-29); v25.0 stays available until 2028-07-29. */
export const DEFAULT_GRAPH_VERSION = "v26.0";

export const whatsappCloudSchema = z.strictObject({
  /** The Meta app's secret: the key of every webhook's X-Hub-Signature-256. */
  app_secret: z.string().min(1),
  /** A system user's access token with whatsapp_business_messaging; sent as `Authorization: Bearer`. */
  access_token: z.string().min(1),
  /** Chosen by the operator and typed into the App Dashboard; Meta echoes it in the GET handshake. */
  verify_token: z.string().min(1),
  /** The business phone number's Graph id (not the phone number itself): the sender of every reply. */
  phone_number_id: z
    // A YAML number would lose digits past 2^53: the id is a string, quoted in YAML.
    .string({ error: 'must be a string of digits (quote it in YAML: "106540352242922")' })
    .regex(/^[0-9]{1,32}$/, "must be the numeric phone number id, e.g. 106540352242922"),
  graph_base: httpUrl.default(DEFAULT_GRAPH_BASE),
  graph_version: z
    .string()
    .regex(/^v[0-9]{1,3}\.[0-9]{1,3}$/, "must look like v26.0")
    .default(DEFAULT_GRAPH_VERSION),
  /** Let WhatsApp render a preview of the first link in a reply. */
  preview_url: z.boolean().default(false),
});

export type WhatsappCloudConfig = z.output<typeof whatsappCloudSchema>;

/**
 * Meta calls only endpoints with a valid TLS certificate, self-signed ones excluded:
 * https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/create-webhook-endpoint
 */
export function whatsappCloudWarnings(
  _config: WhatsappCloudConfig,
  webhookUrl: URL | undefined,
): ChannelWarning[] {
  return webhookUrl && webhookUrl.protocol !== "https:"
    ? [{ message: "Meta delivers webhooks only to https URLs: PUBLIC_URL is not https" }]
    : [];
}
