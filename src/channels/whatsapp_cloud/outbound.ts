import { isRecord, parseRetryAfter } from "../shared.js";
import { ChannelSendError, type Route, type SentPart } from "../types.js";
import type { WhatsappCloudConfig } from "./config.js";

/** The Graph API usually answers in well under a second; a hung request falls back to the relay's retry. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** What Meta accepts in `text.body`; longer parts are refused with error 100. */
export const TEXT_BODY_LIMIT = 4096;

const DIGITS = /^[0-9]{1,32}$/;

/** The route `inbound.ts` stored, checked again because it comes back from the database. */
function readRoute(route: Route): {
  phoneNumberId: string;
  to?: string;
  recipient?: string;
  messageId?: string;
} {
  const { phone_number_id: phoneNumberId, to, recipient, message_id: messageId } = route;
  // Digits only: the id becomes a path segment of the request URL.
  if (typeof phoneNumberId !== "string" || !DIGITS.test(phoneNumberId)) {
    throw new ChannelSendError("permanent", "WhatsApp Cloud route has no valid phone_number_id", "bad_route");
  }
  return {
    phoneNumberId,
    ...(typeof to === "string" && to !== "" ? { to } : {}),
    ...(typeof recipient === "string" && recipient !== "" ? { recipient } : {}),
    ...(typeof messageId === "string" && messageId !== "" ? { messageId } : {}),
  };
}

/** `POST {graph_base}/{graph_version}/{phone_number_id}/messages`. */
export function messagesUrl(
  config: Pick<WhatsappCloudConfig, "graph_base" | "graph_version">,
  phoneNumberId: string,
): string {
  return `${config.graph_base.replace(/\/+$/, "")}/${config.graph_version}/${phoneNumberId}/messages`;
}

/** Posts to the messages endpoint; the answer's JSON on a 2xx, else the classified failure is thrown. */
async function postMessages(
  config: WhatsappCloudConfig,
  phoneNumberId: string,
  body: Record<string, unknown>,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<{ status: number; answer: unknown }> {
  let status: number;
  let headers: Headers;
  let answer: unknown;
  try {
    const response = await fetch(messagesUrl(config, phoneNumberId), {
      method: "POST",
      headers: { authorization: `Bearer ${config.access_token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      // Covers reading the answer too: the signal aborts the body's stream.
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = response.status;
    headers = response.headers;
    answer = parseJson(await response.text());
  } catch (error) {
    throw transportFailure(error, timeoutMs);
  }
  if (status < 200 || status > 299) throw classifyGraphError(status, answer, headers);
  return { status, answer };
}

/**
 * Sends one part of a reply as a text message from the business number the user wrote to, addressed by
 * phone number when the route has it (Meta's preference), else by business-scoped user id. WhatsApp markup
 * (`*bold*`...) is plain text to the API and never rejected, so there is no `markup` failure here. Returns the
 * wamid that delivery statuses report on. The Graph API has no idempotency key: a retry after a connection
 * lost mid-answer can deliver a part twice, as with the other channels.
 */
export async function sendText(
  config: WhatsappCloudConfig,
  route: Route,
  text: string,
  options: { timeoutMs?: number } = {},
): Promise<SentPart> {
  const target = readRoute(route);
  const addressee =
    target.to !== undefined
      ? { to: target.to }
      : target.recipient !== undefined
        ? { recipient: target.recipient }
        : undefined;
  if (addressee === undefined) {
    throw new ChannelSendError("permanent", "WhatsApp Cloud route has neither to nor recipient", "bad_route");
  }
  const { status, answer } = await postMessages(
    config,
    target.phoneNumberId,
    {
      messaging_product: "whatsapp",
      recipient_type: "individual",
      ...addressee,
      type: "text",
      text: { body: text, preview_url: config.preview_url },
    },
    options.timeoutMs,
  );
  const id = sentMessageId(answer);
  if (id === undefined) {
    // Accepted, so possibly sent: retrying could deliver it twice.
    throw new ChannelSendError(
      "permanent",
      `Graph API answered ${status} without a message id`,
      "no_message_id",
    );
  }
  return { channelMessageId: id };
}

/** WhatsApp dismisses a typing indicator after this long, or when the reply arrives. */
export const TYPING_INDICATOR_MS = 25_000;

/**
 * Marks the user's message (the route's `message_id`) as read and shows "typing…" until the reply or for
 * TYPING_INDICATOR_MS; sending it again renews it. The user sees blue ticks on their message.
 */
export async function sendTypingIndicator(
  config: WhatsappCloudConfig,
  route: Route,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const target = readRoute(route);
  if (target.messageId === undefined) {
    throw new ChannelSendError("permanent", "WhatsApp Cloud route has no message_id", "bad_route");
  }
  await postMessages(
    config,
    target.phoneNumberId,
    {
      messaging_product: "whatsapp",
      status: "read",
      message_id: target.messageId,
      typing_indicator: { type: "text" },
    },
    options.timeoutMs,
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `{"messaging_product":"whatsapp","contacts":[...],"messages":[{"id":"wamid...."}]}` */
function sentMessageId(answer: unknown): string | undefined {
  const messages = isRecord(answer) ? answer.messages : undefined;
  const first: unknown = Array.isArray(messages) ? messages[0] : undefined;
  const id = isRecord(first) ? first.id : undefined;
  return typeof id === "string" && id !== "" ? id : undefined;
}

/** No answer: a timeout, or the connection failed or dropped. The request may not have reached Meta. */
function transportFailure(error: unknown, timeoutMs: number): ChannelSendError {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === "TimeoutError" || name === "AbortError") {
    return new ChannelSendError("retry", `Graph API did not answer within ${timeoutMs} ms`, "network");
  }
  // undici's "fetch failed" carries the socket error as its cause (ECONNREFUSED, UND_ERR_SOCKET...).
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  const detail = typeof cause === "string" && /^[A-Z0-9_]{1,40}$/.test(cause) ? ` (${cause})` : "";
  return new ChannelSendError("retry", `Graph API unreachable${detail}`, "network");
}

interface KnownError {
  kind: "retry" | "permanent";
  /** What an operator reads in the logs; Meta's own `message` is never repeated (it is whatever answered). */
  label: string;
}

const retry = (label: string): KnownError => ({ kind: "retry", label });
const permanent = (label: string): KnownError => ({ kind: "permanent", label });

/**
 * Graph error codes of a send (channel README, "Errors"). Throttling codes are retried: the relay's backoff
 * (and Retry-After, when a proxy sends one) spaces the attempts, and its retry window bounds them. Codes that
 * need the operator (token, permissions, account state) or can never succeed for this message fail it.
 */
const GRAPH_ERRORS = new Map<number, KnownError>([
  [1, retry("unknown error, possibly a temporary server problem")],
  [2, retry("service temporarily unavailable")],
  [4, retry("app rate limit reached (too many API calls)")],
  [17, retry("user rate limit reached")],
  [613, retry("rate limit reached")],
  [80007, retry("WhatsApp Business Account rate limit reached")],
  [130429, retry("throughput limit reached (messages per second of this number)")],
  [131000, retry("something went wrong at WhatsApp")],
  [131016, retry("WhatsApp service unavailable")],
  [
    131048,
    retry("spam rate limit: earlier messages were blocked or reported, sending is restricted for now"),
  ],
  [131056, retry("pair rate limit: too many messages to this user in a short time")],
  [131057, retry("business account in maintenance mode")],
  [133004, retry("server temporarily unavailable")],
  [0, permanent("authentication failed: check access_token")],
  [3, permanent("the app lacks the capability for this call")],
  [10, permanent("permission denied: the access token lacks whatsapp_business_messaging for this number")],
  [
    100,
    permanent(
      "invalid parameter (an invalid recipient, a text over 4096 characters, a wrong phone_number_id)",
    ),
  ],
  [190, permanent("access token expired or invalid: set a new access_token")],
  [368, permanent("business account temporarily blocked for policy violations")],
  [130472, permanent("the user's number is part of a WhatsApp experiment")],
  [130497, permanent("business account restricted from messaging users in this country")],
  [131005, permanent("access denied")],
  [131008, permanent("required parameter missing")],
  [131009, permanent("parameter value not valid")],
  [131021, permanent("the recipient is the sending business number itself")],
  [
    131026,
    permanent(
      "message undeliverable: the recipient cannot receive it (not on WhatsApp, old app, terms not accepted)",
    ),
  ],
  [131030, permanent("recipient not in the allowed list of this test number")],
  [131031, permanent("business account locked")],
  [131042, permanent("business payment issue")],
  [
    131047,
    permanent(
      "more than 24 hours since the user's last message: only a template can reach them until they write",
    ),
  ],
  [131051, permanent("unsupported message type")],
  [131062, permanent("this message cannot be sent to a business-scoped user id")],
  [133010, permanent("business phone number not registered with the Cloud API")],
]);

/** 200-299: "API Permission", a permission not granted or revoked. */
const PERMISSION_ERROR = permanent("permission missing or revoked for the access token");

function knownError(code: number | undefined): KnownError | undefined {
  if (code === undefined) return undefined;
  return GRAPH_ERRORS.get(code) ?? (code >= 200 && code <= 299 ? PERMISSION_ERROR : undefined);
}

const integer = (value: unknown): number | undefined => {
  const number = typeof value === "string" && /^[0-9]{1,9}$/.test(value) ? Number(value) : value;
  return Number.isSafeInteger(number) ? (number as number) : undefined;
};

/**
 * Maps a Graph API error answer to what the relay does next. Decided by the Graph error code
 * (`{"error":{"message","type","code","error_subcode","error_data","fbtrace_id"}}`); an unknown code by the
 * HTTP status: 429 and 5xx are retried, any other 4xx is permanent. The ChannelSendError's `code` is the
 * Graph code (else the HTTP status); its message has the code, the subcode, a fixed label and Meta's trace id
 * (for a support request), never the remote message text.
 */
export function classifyGraphError(httpStatus: number, body: unknown, headers: Headers): ChannelSendError {
  const error = isRecord(body) && isRecord(body.error) ? body.error : {};
  const code = integer(error.code);
  const subcode = integer(error.error_subcode);
  const trace =
    typeof error.fbtrace_id === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(error.fbtrace_id)
      ? error.fbtrace_id
      : undefined;
  const known = knownError(code);
  const kind = known?.kind ?? (httpStatus === 429 || httpStatus >= 500 ? "retry" : "permanent");
  const message =
    `Graph API answered ${httpStatus}` +
    (code === undefined ? "" : ` (#${code}${subcode === undefined ? "" : `/${subcode}`})`) +
    (known ? `: ${known.label}` : "") +
    (trace ? ` [fbtrace_id ${trace}]` : "");
  const retryAfterMs = kind === "retry" ? parseRetryAfter(headers.get("retry-after")) : undefined;
  return new ChannelSendError(kind, message, String(code ?? httpStatus), retryAfterMs);
}
