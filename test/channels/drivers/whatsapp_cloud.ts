/**
 * WhatsApp through Meta's Cloud API: webhooks serialised and signed as Meta does (X-Hub-Signature-256 over
 * the body), replies read from the Graph API fake (test/fakes/whatsapp-cloud.ts).
 */
import { type RunningFake, startFake } from "../../fakes/server.js";
import {
  BUSINESS,
  type CloudUser,
  cloudMessage,
  cloudMessageId,
  cloudWebhookRequest,
  createWhatsappCloudFake,
  inboundImage,
  inboundMessage,
  inboundText,
  somethingWentWrong,
  throughputLimit,
  type WhatsappCloudFake,
} from "../../fakes/whatsapp-cloud.js";
import type { ChannelDriver, DriverThread, SendFailure, UserMessage } from "../driver.js";

const APP_SECRET = "contract-meta-app-secret-0123456789";
const ACCESS_TOKEN = "EAAGcontractSystemUserAccessToken0123";
const VERIFY_TOKEN = "contract-verify-token";
const PHONE_NUMBER_ID = BUSINESS.phoneNumberId;

/** A user's chat with our business number; replies go to their phone number. */
interface CloudThread extends DriverThread {
  user: CloudUser & { waId: string };
}

const signed = (payload: unknown) => cloudWebhookRequest(payload, APP_SECRET);

// Meta documents no Retry-After for its throughput limit; the bridge honours one when an answer has it.
const graphFailure = (failure: SendFailure) =>
  failure.kind === "rate_limit" ? throughputLimit(failure.retryAfterSeconds) : somethingWentWrong();

/** The signature's last hex digit changed: well-formed, so it is the HMAC check that refuses it. */
function tamperedSignature(signature: string): string {
  const last = signature.at(-1);
  return `${signature.slice(0, -1)}${last === "0" ? "1" : "0"}`;
}

export function whatsappCloudDriver(): ChannelDriver<CloudThread> {
  let fake: WhatsappCloudFake;
  let server: RunningFake;
  let users = 0;

  /** A message with a wamid of its own, which the bridge dedupes on. */
  const message = (build: (id: string) => unknown): UserMessage => {
    const id = cloudMessageId();
    return { webhook: signed(build(id)), dedupeKey: id };
  };

  return {
    name: "whatsapp_cloud",
    route: "whatsapp_cloud",
    // `text.body`: "Maximum 4096 characters"
    // (https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/text-messages/).
    partLimit: 4096,
    ack: { status: 200, body: "" },
    forgedStatus: 401,

    async start() {
      fake = createWhatsappCloudFake({ accessToken: ACCESS_TOKEN, phoneNumberIds: [PHONE_NUMBER_ID] });
      server = await startFake(fake.app);
    },
    stop: () => server?.close(),
    tenantBlock: () => ({
      whatsapp_cloud: {
        app_secret: APP_SECRET,
        access_token: ACCESS_TOKEN,
        verify_token: VERIFY_TOKEN,
        phone_number_id: PHONE_NUMBER_ID,
        graph_base: server.url,
      },
    }),

    newThread() {
      const n = String(++users).padStart(7, "0");
      // Every message webhook carries the business-scoped user id, which keys the thread.
      const user = { waId: `4479${n}`, userId: `GB.CONTRACT${n}`, name: `Contract User ${users}` };
      return { key: `${PHONE_NUMBER_ID}|${user.userId}`, user };
    },
    text: (thread, text) => message((id) => inboundText(text, { user: thread.user, id })),
    // An image without a caption: nothing the bridge can read.
    unsupported: (thread) => message((id) => inboundImage(undefined, { user: thread.user, id })),
    // The user's reaction to one of our replies: no question to answer.
    ignored: (thread) =>
      signed(
        inboundMessage(
          cloudMessage("reaction", { message_id: cloudMessageId(), emoji: "👍" }, { user: thread.user }),
          thread.user,
        ),
      ),
    // Meta posts the same body again, with the same signature.
    redelivery: (original) => original.webhook,
    forged: (original) => ({
      ...original,
      headers: {
        ...original.headers,
        "x-hub-signature-256": tamperedSignature(original.headers["x-hub-signature-256"] ?? ""),
      },
    }),

    delivered: (thread) =>
      fake
        .messagesTo(thread.user.waId)
        .filter((call) => call.id !== undefined)
        .map((call) => (call.body as { text: { body: string } }).text.body),
    attempts: (thread) =>
      fake.messagesTo(thread.user.waId).map((call) => ({ at: call.at, accepted: call.id !== undefined })),
    failNextSend: (thread, failure, times = 1) =>
      fake.failTo(thread.user.waId, ...Array.from({ length: times }, () => graphFailure(failure))),
    refuseConnections: () => server.refuseConnections(),
    acceptConnections: () => server.acceptConnections(),
    watched: () => fake,
  };
}
