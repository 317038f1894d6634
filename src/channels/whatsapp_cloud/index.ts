import { plainDialect, whatsappDialect } from "../../format/index.js";
import { defineChannel } from "../types.js";
import { DEFAULT_GRAPH_BASE, whatsappCloudSchema, whatsappCloudWarnings } from "./config.js";
import { parseWebhook } from "./inbound.js";
import { sendText, sendTypingIndicator, TEXT_BODY_LIMIT, TYPING_INDICATOR_MS } from "./outbound.js";
import { checkSubscription, precheckSignatureHeader, SIGNATURE_HEADER, verifySignature } from "./verify.js";

/** Meta batches updates into webhook bodies of up to 3 MB. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** WhatsApp through Meta's Cloud API (Graph API), without Twilio. Wire facts: README.md beside this file. */
export const whatsappCloud = defineChannel({
  name: "whatsapp_cloud",
  title: "WhatsApp (Meta Cloud API)",
  schema: whatsappCloudSchema,
  secrets: ["app_secret", "access_token", "verify_token"],
  destination: { field: "graph_base", default: DEFAULT_GRAPH_BASE },
  env: {
    WHATSAPP_CLOUD_APP_SECRET: "app_secret",
    WHATSAPP_CLOUD_ACCESS_TOKEN: "access_token",
    WHATSAPP_CLOUD_VERIFY_TOKEN: "verify_token",
    WHATSAPP_CLOUD_PHONE_NUMBER_ID: "phone_number_id",
    WHATSAPP_CLOUD_GRAPH_BASE: "graph_base",
  },
  secretHeaders: [SIGNATURE_HEADER.toLowerCase()],
  // The same markup as through Twilio; Meta counts the body as sent, markup included.
  format: { limit: TEXT_BODY_LIMIT, markup: whatsappDialect, plain: plainDialect, countsMarkup: true },
  maxBodyBytes: MAX_BODY_BYTES,
  warnings: whatsappCloudWarnings,

  createAdapter: () => ({
    handshake: (url, config) =>
      new Response(checkSubscription(url, config), { headers: { "content-type": "text/plain" } }),

    precheck: (headers) => void precheckSignatureHeader(headers),

    verify: (req, config) => verifySignature(req.rawBody, req.headers, config.app_secret),

    async receive(req, config) {
      const { messages, statuses, ignored } = parseWebhook(req.rawBody, config);
      return {
        type: "messages",
        messages,
        statuses,
        ...(ignored.length > 0 && { ignored: ignored.join("; ") }),
      };
    },

    // Anything but a 2xx makes Meta deliver the batch again, for days.
    ack: () => new Response(null, { status: 200 }),

    send: (target, text) => sendText(target.config, target.route, text),

    // Marks the user's message read and shows "typing…", which WhatsApp drops after 25 s: renewed before.
    typing: {
      intervalMs: TYPING_INDICATOR_MS - 5000,
      send: (target) => sendTypingIndicator(target.config, target.route),
    },
  }),
});
