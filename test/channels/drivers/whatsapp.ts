/**
 * WhatsApp through the real twilio client: form webhooks signed as Twilio signs them (for the bridge's public
 * URL), replies read from the Messages API fake (test/fakes/twilio.ts).
 */
import { type RunningFake, startFake } from "../../fakes/server.js";
import {
  createTwilioFake,
  type InjectedFailure,
  inboundImage,
  inboundReaction,
  inboundText,
  rateLimited,
  serverError,
  signTwilioRequest,
  type TwilioFake,
  type TwilioParams,
  toFormBody,
} from "../../fakes/twilio.js";
import type { ChannelDriver, DriverThread, SendFailure, UserMessage, Webhook } from "../driver.js";

const SID = "AC5555555555555555555555555555555c";
const TOKEN = "contract-twilio-auth-token-012345";
const OURS = "whatsapp:+14155238886";

/** A user's chat with our number. */
interface WhatsappThread extends DriverThread {
  user: string;
}

const twilioFailure = (failure: SendFailure): InjectedFailure =>
  failure.kind === "rate_limit" ? rateLimited(failure.retryAfterSeconds) : serverError();

export function whatsappDriver(): ChannelDriver<WhatsappThread> {
  let fake: TwilioFake;
  let server: RunningFake;
  let webhookUrl: string;
  let users = 0;

  const signed = (params: TwilioParams, token = TOKEN): Webhook => ({
    body: toFormBody(params),
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": signTwilioRequest(token, webhookUrl, params),
    },
  });
  const from = (thread: WhatsappThread) => ({ accountSid: SID, from: thread.user, to: OURS });
  const message = (params: TwilioParams): UserMessage => ({
    webhook: signed(params),
    dedupeKey: params.MessageSid ?? "",
  });

  return {
    name: "whatsapp",
    route: "whatsapp",
    // Messages API `Body`: "Can be up to 1,600 characters in length"
    // (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource).
    partLimit: 1600,
    ack: { status: 200, body: "<Response></Response>", contentType: /^text\/xml/ },
    forgedStatus: 403,

    async start(context) {
      webhookUrl = context.webhookUrl;
      fake = createTwilioFake({ [SID]: TOKEN });
      server = await startFake(fake.app);
    },
    stop: () => server?.close(),
    tenantBlock: () => ({
      whatsapp: { account_sid: SID, auth_token: TOKEN, from: OURS, api_base: server.url },
    }),

    newThread() {
      const user = `whatsapp:+3161${String(++users).padStart(7, "0")}`;
      return { key: `${OURS}|${user}`, user };
    },
    text: (thread, text) => message(inboundText(text, from(thread))),
    unsupported: (thread) => message(inboundImage(undefined, from(thread))),
    ignored: (thread) => signed(inboundReaction("👍", from(thread))),
    // Twilio retries the same request: same parameters, same signature.
    redelivery: (original) => original.webhook,
    forged: (original) => {
      const params = Object.fromEntries(new URLSearchParams(original.body));
      return signed(params, "not-the-auth-token");
    },

    delivered: (thread) =>
      fake
        .sent()
        .filter((call) => call.params.To === thread.user)
        .map((c) => c.params.Body ?? ""),
    attempts: (thread) =>
      fake.calls
        .filter((call) => call.params.To === thread.user)
        .map((call) => ({ at: call.at, accepted: call.sid !== undefined })),
    failNextSend: (thread, failure, times = 1) =>
      fake.failTo(thread.user, ...Array.from({ length: times }, () => twilioFailure(failure))),
    refuseConnections: () => server.refuseConnections(),
    acceptConnections: () => server.acceptConnections(),
    watched: () => fake,
  };
}
