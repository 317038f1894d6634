import { plainDialect, whatsappDialect } from "../../format/index.js";
import { TenantClients, webhookResult } from "../shared.js";
import { ChannelSendError, defineChannel, type WebhookRequest } from "../types.js";
import { DEFAULT_TWILIO_API_BASE, type WhatsappConfig, whatsappSchema, whatsappWarnings } from "./config.js";
import { readTwilioForm } from "./form.js";
import { parseIncomingMessage, parseStatusCallback } from "./inbound.js";
import { createTwilioClient, sendWhatsappText, type TwilioClient } from "./outbound.js";
import { precheckTwilioRequest, twilioCalledUrl, verifyTwilioSignature } from "./verify.js";

/** Empty TwiML: "received, no inline reply". Twilio logs an empty body as an error. */
const EMPTY_TWIML = "<Response></Response>";

/** WhatsApp through Twilio's Messaging API. */
export const whatsapp = defineChannel({
  name: "whatsapp",
  title: "WhatsApp (Twilio)",
  schema: whatsappSchema,
  secrets: ["auth_token"],
  destination: { field: "api_base", default: DEFAULT_TWILIO_API_BASE },
  env: {
    TWILIO_ACCOUNT_SID: "account_sid",
    TWILIO_AUTH_TOKEN: "auth_token",
    TWILIO_WHATSAPP_FROM: "from",
    TWILIO_API_BASE: "api_base",
  },
  secretHeaders: ["x-twilio-signature"],
  // Twilio's 1600 characters count the markup string itself.
  format: { limit: 1600, markup: whatsappDialect, plain: plainDialect, countsMarkup: true },
  warnings: whatsappWarnings,

  createAdapter(deps) {
    const log = deps.log.child({ channel: "whatsapp" });
    const clients = new TenantClients<TwilioClient>();
    /** Requests whose signature was accepted: a status report is only applied from one of them. */
    const verified = new WeakSet<WebhookRequest>();

    function verify(req: WebhookRequest, config: WhatsappConfig, tenantId: string): void {
      if (verified.has(req)) return;
      verifyTwilioSignature(req, config, log, tenantId);
      verified.add(req);
    }

    const clientFor = (tenantId: string, config: WhatsappConfig): TwilioClient =>
      clients.get(tenantId, [config.account_sid, config.auth_token, config.api_base], () => {
        try {
          return createTwilioClient(config);
        } catch (error) {
          // The SDK refuses account SIDs that do not start with AC; no retry will fix that.
          throw new ChannelSendError("permanent", `Twilio client: ${(error as Error).message}`, "bad_config");
        }
      });

    return {
      precheck: (headers) => precheckTwilioRequest(headers),

      verify: (req, config, tenant) => verify(req, config, tenant.id),

      async receive(req, _config, tenant) {
        // The signature just proved Twilio reaches us at this base, so delivery reports can come back to it.
        const { base } = twilioCalledUrl(req);
        const statusCallback = `${base}/webhooks/${tenant.id}/whatsapp/status`;
        return webhookResult(parseIncomingMessage(readTwilioForm(req), { statusCallback }));
      },

      ack: () => new Response(EMPTY_TWIML, { status: 200, headers: { "content-type": "text/xml" } }),

      send: async (target, text) =>
        sendWhatsappText(clientFor(target.tenant.id, target.config), target.route, text),

      // Verified here rather than trusting the caller: a forged report would corrupt the delivery state. A
      // request `verify` already accepted is not hashed again.
      async receiveStatus(req, config, tenant) {
        verify(req, config, tenant.id);
        return parseStatusCallback(readTwilioForm(req));
      },
    };
  },
});
