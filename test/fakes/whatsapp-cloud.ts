/**
 * A loopback fake of the WhatsApp Cloud API's send endpoint (`POST /{version}/{phone_number_id}/messages`,
 * Graph API) plus builders for the webhooks Meta posts (`whatsapp_business_account`, field `messages`), signed
 * as Meta signs them. Wire facts: src/channels/whatsapp_cloud/README.md. Error bodies have Graph's shape and
 * Meta's codes; their message texts are close to the real ones, and nothing reads them.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** `text.body`'s limit, counted in UTF-16 units (the stricter reading: Meta says "characters"). */
export const CLOUD_TEXT_LIMIT = 4096;

type Json = Record<string, unknown>;

/** A Graph error answer, injected for one send. */
export interface GraphFailure {
  status: number;
  code: number;
  subcode?: number;
  message?: string;
  retryAfterSeconds?: number;
}

/** An answer given as is, such as a proxy's error page. */
export interface RawAnswer {
  status: number;
  contentType: string;
  raw: string;
}

/** What the next send gets instead of a normal answer: an error, another answer, or no answer at all. */
export type InjectedFailure =
  | GraphFailure
  | RawAnswer
  /** The connection is destroyed before any answer. */
  | "drop"
  /** No answer until the client gives up and closes the connection. */
  | "hang";

export const throughputLimit = (retryAfterSeconds?: number): GraphFailure => ({
  status: 429,
  code: 130429,
  message: "(#130429) Rate limit hit",
  ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
});
export const pairRateLimit = (): GraphFailure => ({
  status: 400,
  code: 131056,
  message: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
});
export const appRateLimit = (): GraphFailure => ({
  status: 400,
  code: 4,
  message: "(#4) Application request limit reached",
});
export const windowClosed = (): GraphFailure => ({
  status: 400,
  code: 131047,
  message: "(#131047) Re-engagement message",
});
export const undeliverable = (): GraphFailure => ({
  status: 400,
  code: 131026,
  message: "(#131026) Message undeliverable",
});
export const tokenExpired = (): GraphFailure => ({
  status: 401,
  code: 190,
  subcode: 463,
  message: "Error validating access token: Session has expired.",
});
export const somethingWentWrong = (): GraphFailure => ({
  status: 500,
  code: 131000,
  message: "(#131000) Something went wrong",
});

/** What a proxy in front of the Graph API answers when it cannot reach it. */
export const badGateway = (): RawAnswer => ({
  status: 502,
  contentType: "text/html",
  raw: "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
});

export interface CloudSend {
  /** A message, or a read receipt with a typing indicator (`"status": "read"`). */
  kind: "message" | "read";
  version: string;
  phoneNumberId: string;
  /** The Authorization header as sent (null when absent). */
  authorization: string | null;
  /** The parsed JSON body as posted (undefined when it was not JSON). */
  body: unknown;
  /** The HTTP status the fake answered; 0 when it answered nothing (drop, hang). */
  status: number;
  /** The wamid handed out when accepted. */
  id?: string;
  /** Arrival time (ms since the epoch). */
  at: number;
}

/** A request the fake refused on its own checks (token, number, parameters, path): no test asked for it. */
export interface CloudRejection {
  status: number;
  code: number;
  message: string;
}

export interface WhatsappCloudFake {
  app: Hono;
  /** The access token accepted as Bearer; assign to rotate it. */
  accessToken: string;
  /** Business phone number ids the token may send from. */
  phoneNumberIds: Set<string>;
  /** Every send, refused ones included, in arrival order. */
  calls: CloudSend[];
  /** Requests answered with Graph's own errors (not injected failures), in arrival order. */
  rejections: CloudRejection[];
  /** Every message (not read receipt) to this `to` or `recipient`, refused ones included, in arrival order. */
  messagesTo(recipient: string): CloudSend[];
  /** Accepted messages only. */
  sent(): CloudSend[];
  /** The texts users saw, in order (the unexpected-failure guard reads them). */
  textsToUsers(): string[];
  /** `rejections`, described. */
  refused(): string[];
  /** Accepted read receipts (typing indicators) only. */
  typings(): CloudSend[];
  /** The next sends get these answers, one each, in order (after the token is checked). */
  failNext(...failures: InjectedFailure[]): void;
  /** The next messages to this `to` or `recipient` get these answers, one each, in order (after `failNext`'s). */
  failTo(recipient: string, ...failures: InjectedFailure[]): void;
}

export const cloudMessageId = () => `wamid.${randomBytes(30).toString("base64")}`;

const fbtraceId = () => randomBytes(9).toString("base64url");

function graphError(failure: GraphFailure, details?: string): Json {
  return {
    error: {
      message: failure.message ?? `(#${failure.code}) Error`,
      type: "OAuthException",
      code: failure.code,
      ...(failure.subcode === undefined ? {} : { error_subcode: failure.subcode }),
      ...(details === undefined ? {} : { error_data: { messaging_product: "whatsapp", details } }),
      fbtrace_id: fbtraceId(),
    },
  };
}

const invalidParameter = (message: string, details?: string) =>
  graphError({ status: 400, code: 100, message }, details);

/** Graph's checks of a text message, in the order the fake makes them; undefined when it is acceptable. */
function invalidTextMessage(body: unknown): Json | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return invalidParameter("(#100) Invalid parameter", "The request body is not a JSON object.");
  }
  const message = body as Json;
  if (message.messaging_product !== "whatsapp") {
    return invalidParameter("(#100) The parameter messaging_product is required.");
  }
  const to = message.to ?? message.recipient;
  if (typeof to !== "string" || to === "") return invalidParameter("(#100) The parameter to is required.");
  if (message.recipient_type !== undefined && message.recipient_type !== "individual") {
    return invalidParameter("(#100) Invalid parameter", "recipient_type must be individual or group.");
  }
  if (message.type !== "text") return invalidParameter("(#100) Invalid parameter", "Unsupported type.");
  const text = message.text as Json | undefined;
  if (typeof text?.body !== "string" || text.body === "") {
    return invalidParameter("(#100) The parameter text['body'] is required.");
  }
  if (text.body.length > CLOUD_TEXT_LIMIT) {
    return invalidParameter(
      "(#100) Invalid parameter",
      `Param text['body'] must be at most ${CLOUD_TEXT_LIMIT} characters long.`,
    );
  }
  if (text.preview_url !== undefined && typeof text.preview_url !== "boolean") {
    return invalidParameter("(#100) Invalid parameter", "Param text['preview_url'] must be a boolean.");
  }
  return undefined;
}

/** Graph's checks of "mark as read" with a typing indicator. */
function invalidReadReceipt(body: Json): Json | undefined {
  if (body.messaging_product !== "whatsapp") {
    return invalidParameter("(#100) The parameter messaging_product is required.");
  }
  if (typeof body.message_id !== "string" || !body.message_id.startsWith("wamid.")) {
    return invalidParameter(
      "(#100) Invalid parameter",
      "Param message_id must be a valid WhatsApp message id.",
    );
  }
  const typing = body.typing_indicator as Json | undefined;
  if (typing !== undefined && typing?.type !== "text") {
    return invalidParameter("(#100) Invalid parameter", "Param typing_indicator['type'] must be text.");
  }
  return undefined;
}

/** Whom a message is addressed to: `to` (a phone number) or `recipient` (a business-scoped user id). */
export function recipientOf(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const { to, recipient } = body as Json;
  const addressee = to ?? recipient;
  return typeof addressee === "string" ? addressee : undefined;
}

/** The socket the request came on (`@hono/node-server` passes the Node request as `env.incoming`). */
const socketOf = (c: Context) => (c.env as { incoming: IncomingMessage }).incoming.socket;

export function createWhatsappCloudFake(options: {
  accessToken: string;
  phoneNumberIds: string[];
}): WhatsappCloudFake {
  const calls: CloudSend[] = [];
  const rejections: CloudRejection[] = [];
  const failures: InjectedFailure[] = [];
  const failuresTo = new Map<string, InjectedFailure[]>();
  const app = new Hono();
  const fake: WhatsappCloudFake = {
    app,
    accessToken: options.accessToken,
    phoneNumberIds: new Set(options.phoneNumberIds),
    calls,
    rejections,
    messagesTo: (recipient) =>
      calls.filter((call) => call.kind === "message" && recipientOf(call.body) === recipient),
    sent: () => calls.filter((call) => call.kind === "message" && call.id !== undefined),
    textsToUsers: () => fake.sent().map((call) => (call.body as { text: { body: string } }).text.body),
    refused: () => rejections.map((r) => `whatsapp_cloud: ${r.status} #${r.code} ${r.message}`),
    typings: () => calls.filter((call) => call.kind === "read" && call.status === 200),
    failNext: (...next) => void failures.push(...next),
    failTo(recipient, ...next) {
      failuresTo.set(recipient, [...(failuresTo.get(recipient) ?? []), ...next]);
    },
  };
  /** Graph's own refusal of a request: recorded, since each one is a bug in what the client sent. */
  const rejected = (status: number, error: Json): Json => {
    const { code, message } = error.error as { code: number; message: string };
    rejections.push({ status, code, message });
    return error;
  };

  app.post("/:version/:phoneNumberId/messages", async (c) => {
    const { version, phoneNumberId } = c.req.param();
    const raw = await c.req.text();
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {}
    const kind = (body as Json | undefined)?.status === "read" ? "read" : "message";
    const authorization = c.req.header("authorization") ?? null;
    const call: CloudSend = { kind, version, phoneNumberId, authorization, body, status: 0, at: Date.now() };
    calls.push(call);
    const answer = (status: number, json: Json, headers: Record<string, string> = {}) => {
      call.status = status;
      return c.json(json, status as ContentfulStatusCode, headers);
    };
    const refuse = (status: number, error: Json) => answer(status, rejected(status, error));

    if (authorization !== `Bearer ${fake.accessToken}`) {
      return refuse(401, graphError({ status: 401, code: 190, message: "Invalid OAuth access token." }));
    }
    if (!fake.phoneNumberIds.has(phoneNumberId)) {
      return refuse(
        400,
        graphError({
          status: 400,
          code: 100,
          subcode: 33,
          message: `Unsupported post request. Object with ID '${phoneNumberId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
        }),
      );
    }
    const recipient = kind === "message" ? recipientOf(body) : undefined;
    const failure =
      failures.shift() ?? (recipient === undefined ? undefined : failuresTo.get(recipient)?.shift());
    if (failure === "drop") {
      socketOf(c).destroy();
      return new Response(null, { status: 204 });
    }
    if (failure === "hang") {
      // Answered only once the client has given up; by then nobody reads it.
      await new Promise((resolve) => socketOf(c).once("close", resolve));
      return new Response(null, { status: 504 });
    }
    if (failure && "raw" in failure) {
      call.status = failure.status;
      return new Response(failure.raw, {
        status: failure.status,
        headers: { "content-type": failure.contentType },
      });
    }
    if (failure) {
      const retryAfter = failure.retryAfterSeconds;
      return answer(
        failure.status,
        graphError(failure),
        retryAfter === undefined ? {} : { "retry-after": String(retryAfter) },
      );
    }
    if (kind === "read") {
      const invalid = invalidReadReceipt(body as Json);
      return invalid ? refuse(400, invalid) : answer(200, { success: true });
    }
    const invalid = invalidTextMessage(body);
    if (invalid) return refuse(400, invalid);

    const message = body as Json;
    const id = cloudMessageId();
    call.id = id;
    const contact =
      typeof message.to === "string"
        ? { input: message.to, wa_id: message.to.replace(/^\+/, "") }
        : { input: message.recipient, user_id: message.recipient };
    return answer(200, { messaging_product: "whatsapp", contacts: [contact], messages: [{ id }] });
  });

  app.all("*", (c) =>
    c.json(rejected(400, graphError({ status: 400, code: 100, message: "Unknown path components" })), 400),
  );
  return fake;
}

// ---------------------------------------------------------------------------------------------------------
// Webhooks Meta posts

/** Our business number, as Meta's examples have it. */
export const BUSINESS = {
  wabaId: "102290129340398",
  phoneNumberId: "106540352242922",
  displayPhoneNumber: "15550783881",
};

/** A WhatsApp user: phone number (absent for a username user who hides it), business-scoped id, name. */
export interface CloudUser {
  waId?: string;
  userId?: string;
  name?: string;
}

export const USER: CloudUser = {
  waId: "16505551234",
  userId: "US.13491208655302741918",
  name: "Sheena Nelson",
};

export interface MessageOptions {
  user?: CloudUser;
  id?: string;
  /** Extra message fields (`context`, `group_id`...). */
  extra?: Json;
}

/** One element of `value.messages`: the common fields and the type's own object. */
export function cloudMessage(type: string, content: Json | undefined, o: MessageOptions = {}): Json {
  const user = o.user ?? USER;
  return {
    ...(user.waId === undefined ? {} : { from: user.waId }),
    ...(user.userId === undefined ? {} : { from_user_id: user.userId }),
    id: o.id ?? cloudMessageId(),
    timestamp: String(Math.floor(Date.now() / 1000)),
    type,
    ...(content === undefined ? {} : { [type]: content }),
    ...o.extra,
  };
}

/** One element of `value.contacts`. */
export function cloudContact(user: CloudUser = USER): Json {
  return {
    profile: user.name === undefined ? {} : { name: user.name },
    ...(user.waId === undefined ? {} : { wa_id: user.waId }),
    ...(user.userId === undefined ? {} : { user_id: user.userId }),
  };
}

/** One element of `value.statuses`. */
export function cloudStatus(
  id: string,
  status: string,
  o: { recipient?: string; error?: { code: number; title: string } } = {},
): Json {
  return {
    id,
    status,
    timestamp: String(Math.floor(Date.now() / 1000)),
    recipient_id: o.recipient ?? USER.waId,
    ...(o.error
      ? {
          errors: [
            {
              code: o.error.code,
              title: o.error.title,
              message: o.error.title,
              error_data: { details: o.error.title },
              href: "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            },
          ],
        }
      : {}),
  };
}

/** A `messages` change's value: our number's metadata and whichever arrays are given. */
export function messagesValue(
  v: {
    phoneNumberId?: string;
    contacts?: Json[];
    messages?: Json[];
    statuses?: Json[];
    errors?: Json[];
  } = {},
): Json {
  return {
    messaging_product: "whatsapp",
    metadata: {
      display_phone_number: BUSINESS.displayPhoneNumber,
      phone_number_id: v.phoneNumberId ?? BUSINESS.phoneNumberId,
    },
    ...(v.contacts ? { contacts: v.contacts } : {}),
    ...(v.messages ? { messages: v.messages } : {}),
    ...(v.statuses ? { statuses: v.statuses } : {}),
    ...(v.errors ? { errors: v.errors } : {}),
  };
}

/** An entry of the business account: one change per value, of field `messages` unless a change is given. */
export function cloudEntry(...changes: (Json | { field: string; value: Json })[]): Json {
  return {
    id: BUSINESS.wabaId,
    changes: changes.map((change) =>
      "field" in change && "value" in change ? change : { value: change, field: "messages" },
    ),
  };
}

/** The whole webhook body. */
export const cloudWebhook = (...entries: Json[]): Json => ({
  object: "whatsapp_business_account",
  entry: entries,
});

/** A webhook with one message of `user` (and their contact). */
export function inboundMessage(message: Json, user: CloudUser = USER): Json {
  return cloudWebhook(cloudEntry(messagesValue({ contacts: [cloudContact(user)], messages: [message] })));
}

export const inboundText = (body: string, o: MessageOptions = {}) =>
  inboundMessage(cloudMessage("text", { body }, o), o.user);

/** An image, with its caption when given (Meta omits `caption` otherwise). */
export const inboundImage = (caption: string | undefined, o: MessageOptions = {}) =>
  inboundMessage(
    cloudMessage(
      "image",
      {
        ...(caption === undefined ? {} : { caption }),
        mime_type: "image/jpeg",
        sha256: randomBytes(32).toString("base64"),
        id: String(Date.now()),
      },
      o,
    ),
    o.user,
  );

/** A webhook with delivery statuses of our messages (status webhooks carry no contacts when failed). */
export const statusUpdate = (...statuses: Json[]) => cloudWebhook(cloudEntry(messagesValue({ statuses })));

/**
 * The JSON as Meta writes it: `/` as `\/` and every non-ASCII character as a `\uXXXX` escape with lower case
 * hex. The signature covers these bytes, not those of a re-serialisation.
 */
export function metaJson(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll("/", "\\/")
    .replaceAll(/[\u0080-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the raw body with the app secret. */
export function signCloudRequest(body: string | Buffer, appSecret: string): string {
  return `sha256=${createHmac("sha256", appSecret).update(body).digest("hex")}`;
}

/** A webhook request as Meta makes it: the body serialised as Meta does, signed with `appSecret`. */
export function cloudWebhookRequest(
  payload: unknown,
  appSecret: string,
): { body: string; headers: Record<string, string> } {
  const body = metaJson(payload);
  return {
    body,
    headers: {
      "content-type": "application/json",
      "user-agent": "facebookexternalua",
      "x-hub-signature-256": signCloudRequest(body, appSecret),
    },
  };
}

/** Posts a webhook body (serialised as Meta does) signed with `appSecret`, as Meta would. */
export function postCloudWebhook(
  url: string,
  payload: unknown,
  appSecret: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const request = cloudWebhookRequest(payload, appSecret);
  return fetch(url, { method: "POST", headers: { ...request.headers, ...headers }, body: request.body });
}
