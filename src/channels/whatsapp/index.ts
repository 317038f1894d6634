import { createHash } from "node:crypto";
import type { WhatsappConfig } from "../../config/schema.js";
import { storable } from "../shared.js";
import { type AdapterDeps, type ChannelAdapter, ChannelSendError, type WebhookRequest } from "../types.js";
import { readTwilioForm } from "./form.js";
import { parseIncomingMessage, parseStatusCallback } from "./inbound.js";
import { createTwilioClient, sendWhatsappText, type TwilioClient } from "./outbound.js";
import { precheckTwilioRequest, twilioCalledUrl, verifyTwilioSignature } from "./verify.js";

/** Empty TwiML: "received, no inline reply". Twilio logs an empty body as an error (channel-facts 3.2). */
const EMPTY_TWIML = "<Response></Response>";

export function createWhatsappAdapter(deps: AdapterDeps): ChannelAdapter<WhatsappConfig> {
  const log = deps.log.child({ channel: "whatsapp" });
  const clients = new Map<string, { key: string; client: TwilioClient }>();
  /** Requests whose signature was accepted: a status report is only applied from one of them. */
  const verified = new WeakSet<WebhookRequest>();

  function verify(req: WebhookRequest, config: WhatsappConfig, tenantId: string): void {
    if (verified.has(req)) return;
    verifyTwilioSignature(req, config, log, tenantId);
    verified.add(req);
  }

  /** One SDK client per tenant, rebuilt when its credentials or base URL change. */
  function clientFor(tenantId: string, config: WhatsappConfig): TwilioClient {
    const key = createHash("sha256")
      .update(`${config.account_sid}\0${config.auth_token}\0${config.api_base}`)
      .digest("hex");
    const cached = clients.get(tenantId);
    if (cached?.key === key) return cached.client;
    let client: TwilioClient;
    try {
      client = createTwilioClient(config);
    } catch (error) {
      // The SDK refuses account SIDs that do not start with AC; no retry will fix that.
      throw new ChannelSendError("permanent", `Twilio client: ${(error as Error).message}`);
    }
    clients.set(tenantId, { key, client });
    return client;
  }

  return {
    channel: "whatsapp",
    config: (tenant) => tenant.whatsapp,

    precheck: (headers) => precheckTwilioRequest(headers),

    verify: (req, config, tenant) => verify(req, config, tenant.id),

    async receive(req, _config, tenant) {
      // The signature just proved Twilio reaches us at this base, so delivery reports can come back to it.
      const { base } = twilioCalledUrl(req);
      const statusCallback = `${base}/webhooks/${tenant.id}/whatsapp/status`;
      const result = parseIncomingMessage(readTwilioForm(req), { statusCallback });
      return result.type === "message"
        ? { type: "messages", messages: [storable(result.message)] }
        : { type: "messages", messages: [], ignored: result.reason };
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
}
