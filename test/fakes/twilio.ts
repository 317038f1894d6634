/**
 * A loopback fake of Twilio's Messages API (`POST /2010-04-01/Accounts/:sid/Messages.json`) plus helpers to
 * build, sign and post the webhooks Twilio sends (incoming WhatsApp messages and status callbacks).
 * Wire facts: Twilio's webhook and Messages API documentation.
 */
import { createHmac, randomBytes } from "node:crypto";
import { Hono } from "hono";

/**
 * `Body`: "up to 1,600 characters", and emoji and other characters outside GSM-7 "exceed the limit sooner"
 * (error 21617): counted in UTF-16 units, where an emoji takes two.
 */
export const TWILIO_BODY_LIMIT = 1600;

export type TwilioParams = Record<string, string>;

export interface MessagesCall {
  accountSid: string;
  /** Decoded form parameters as posted (`To`, `From`, `Body`, `StatusCallback`...). */
  params: TwilioParams;
  /** The HTTP status the fake answered. */
  status: number;
  /** The created message's sid when accepted. */
  sid?: string;
  /** Arrival time (ms since the epoch), to check the relay's waits. */
  at: number;
}

/** A Twilio REST error answer, injected for one call. */
export interface InjectedFailure {
  status: number;
  code: number;
  message: string;
  retryAfterSeconds?: number;
}

export const rateLimited = (retryAfterSeconds = 1): InjectedFailure => ({
  status: 429,
  code: 20429,
  message: "Too many requests. Please retry according to the Retry-After response header.",
  retryAfterSeconds,
});

export const outsideWindow = (): InjectedFailure => ({
  status: 400,
  code: 63016,
  message:
    "Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template.",
});

export const serverError = (): InjectedFailure => ({
  status: 500,
  code: 20500,
  message: "An internal server error has occurred",
});

export const twilioSid = (prefix: string) => prefix + randomBytes(16).toString("hex");

const errorBody = (status: number, code: number, message: string) => ({
  code,
  message,
  more_info: `https://www.twilio.com/docs/errors/${code}`,
  status,
});

/** A request the fake refused on its own checks (credentials, parameters, path): no test asked for it. */
export interface TwilioRejection {
  status: number;
  code: number;
  message: string;
}

export interface TwilioFake {
  app: Hono;
  /** Credentials by account sid; mutate to rotate a token. */
  accounts: Map<string, string>;
  /** Every Messages call, rejected ones included, in arrival order. */
  calls: MessagesCall[];
  /** Requests answered with Twilio's own errors (not injected failures). */
  rejections: TwilioRejection[];
  /** Accepted messages only. */
  sent(): MessagesCall[];
  /** The texts users saw, in order (the unexpected-failure guard reads them). */
  textsToUsers(): string[];
  /** `rejections`, described. */
  refused(): string[];
  /** The next calls fail with these answers, one each, in order. */
  failNext(...failures: InjectedFailure[]): void;
  /** The next calls to this `To` number fail with these answers, one each, in order (after `failNext`'s). */
  failTo(to: string, ...failures: InjectedFailure[]): void;
  /**
   * Posts a status callback for a sent message to its `StatusCallback`, signed as Twilio does. `deliverTo`
   * sends it elsewhere (the app's loopback address) while signing the public URL, like a proxy in between.
   */
  postStatus(
    sid: string,
    status: string,
    options?: { errorCode?: string; deliverTo?: string },
  ): Promise<Response>;
}

export function createTwilioFake(accounts: Record<string, string>): TwilioFake {
  const credentials = new Map(Object.entries(accounts));
  const calls: MessagesCall[] = [];
  const rejections: TwilioRejection[] = [];
  const failures: InjectedFailure[] = [];
  const failuresTo = new Map<string, InjectedFailure[]>();
  const app = new Hono();
  const sent = () => calls.filter((call) => call.sid !== undefined);

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: {
        "content-type": "application/json; charset=utf-8",
        "twilio-request-id": twilioSid("RQ"),
        ...headers,
      },
    });

  app.post("/2010-04-01/Accounts/:sid/Messages.json", async (c) => {
    const accountSid = c.req.param("sid");
    const params = Object.fromEntries(new URLSearchParams(await c.req.text()));
    const answer = (status: number, body: unknown, headers?: Record<string, string>, sid?: string) => {
      calls.push({ accountSid, params, status, ...(sid ? { sid } : {}), at: Date.now() });
      return json(status, body, headers);
    };

    if (!authorized(c.req.header("authorization"), accountSid, credentials)) {
      rejections.push({ status: 401, code: 20003, message: "Authenticate" });
      return answer(401, errorBody(401, 20003, "Authenticate"), {
        "www-authenticate": 'Basic realm="Twilio API"',
      });
    }
    const failure = failures.shift() ?? failuresTo.get(params.To ?? "")?.shift();
    if (failure) {
      const retryAfter = failure.retryAfterSeconds;
      return answer(
        failure.status,
        errorBody(failure.status, failure.code, failure.message),
        retryAfter === undefined ? {} : { "retry-after": String(retryAfter) },
      );
    }
    const invalid = validate(params);
    if (invalid) {
      rejections.push({ status: 400, ...invalid });
      return answer(400, errorBody(400, invalid.code, invalid.message));
    }

    const sid = twilioSid("SM");
    return answer(201, messageResource(accountSid, sid, params), {}, sid);
  });

  app.all("*", (c) => {
    const message = `The requested resource ${c.req.path} was not found`;
    rejections.push({ status: 404, code: 20404, message });
    return json(404, errorBody(404, 20404, message));
  });

  return {
    app,
    accounts: credentials,
    calls,
    rejections,
    sent,
    textsToUsers: () => sent().map((call) => call.params.Body ?? ""),
    refused: () => rejections.map((r) => `twilio: ${r.status} ${r.code} ${r.message}`),
    failNext: (...next) => failures.push(...next),
    failTo(to, ...next) {
      failuresTo.set(to, [...(failuresTo.get(to) ?? []), ...next]);
    },
    async postStatus(sid, status, options = {}) {
      const call = calls.find((c) => c.sid === sid);
      const callbackUrl = call?.params.StatusCallback;
      if (!call || !callbackUrl) throw new Error(`no sent message ${sid} with a StatusCallback`);
      const token = credentials.get(call.accountSid)!;
      const params = statusCallbackParams({
        accountSid: call.accountSid,
        messageSid: sid,
        status,
        to: call.params.To ?? "",
        from: call.params.From ?? "",
        ...(options.errorCode ? { errorCode: options.errorCode } : {}),
      });
      return postTwilioWebhook(options.deliverTo ?? callbackUrl, {
        authToken: token,
        params,
        signedUrl: callbackUrl,
      });
    },
  };
}

function authorized(
  header: string | undefined,
  accountSid: string,
  credentials: Map<string, string>,
): boolean {
  if (!header?.startsWith("Basic ")) return false;
  const decoded = Buffer.from(header.slice("Basic ".length), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  return colon > 0 && username === accountSid && credentials.get(accountSid) === password;
}

/** The checks Twilio makes before queueing a message, with its error codes. */
function validate(params: TwilioParams): { code: number; message: string } | undefined {
  if (!params.To) return { code: 21604, message: "A 'To' phone number is required." };
  if (!params.From && !params.MessagingServiceSid) {
    return { code: 21603, message: "A 'From' phone number is required." };
  }
  if (!params.Body && !params.MediaUrl && !params.ContentSid) {
    return { code: 21602, message: "Message body is required." };
  }
  if ((params.Body ?? "").length > TWILIO_BODY_LIMIT) {
    return { code: 21617, message: "The concatenated message body exceeds the 1600 character limit" };
  }
  return undefined;
}

/** The Message resource Twilio returns on create (snake_case, RFC 2822 dates, string counts). */
function messageResource(accountSid: string, sid: string, params: TwilioParams) {
  const now = new Date().toUTCString().replace("GMT", "+0000");
  const uri = `/2010-04-01/Accounts/${accountSid}/Messages/${sid}`;
  return {
    account_sid: accountSid,
    api_version: "2010-04-01",
    body: params.Body ?? "",
    date_created: now,
    date_sent: null,
    date_updated: now,
    direction: "outbound-api",
    error_code: null,
    error_message: null,
    from: params.From ?? null,
    messaging_service_sid: params.MessagingServiceSid ?? null,
    num_media: "0",
    num_segments: "1",
    price: null,
    price_unit: null,
    sid,
    status: "queued",
    subresource_uris: { media: `${uri}/Media.json`, feedback: `${uri}/Feedback.json` },
    to: params.To,
    uri: `${uri}.json`,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Webhooks Twilio sends

/**
 * X-Twilio-Signature: HMAC-SHA1 with the auth token over the URL followed by every
 * parameter's name and value, names sorted; base64. Written from the documented steps, not with the SDK, so
 * it is an independent check of the SDK-based validator.
 */
export function signTwilioRequest(
  authToken: string,
  url: string,
  params: TwilioParams,
  /** Twilio signs with SHA-1; another algorithm makes a near miss for the tests. */
  algorithm: "sha1" | "sha256" = "sha1",
): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, name) => acc + name + params[name], url);
  return createHmac(algorithm, authToken).update(data, "utf8").digest("base64");
}

/** `application/x-www-form-urlencoded` as Twilio posts it (spaces as `+`, UTF-8 percent-encoded). */
export const toFormBody = (params: TwilioParams) => new URLSearchParams(params).toString();

/** Posts a form webhook signed for `signedUrl` (default: the URL posted to), as Twilio would. */
export function postTwilioWebhook(
  url: string,
  options: { authToken: string; params: TwilioParams; signedUrl?: string; headers?: Record<string, string> },
): Promise<Response> {
  const signature = signTwilioRequest(options.authToken, options.signedUrl ?? url, options.params);
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": signature,
      "user-agent": "TwilioProxy/1.1",
      ...options.headers,
    },
    body: toFormBody(options.params),
  });
}

export interface InboundOptions {
  accountSid?: string;
  /** The user, e.g. `whatsapp:+31612345678`. */
  from?: string;
  /** Our sender, e.g. `whatsapp:+14155238886`. */
  to?: string;
  profileName?: string;
  messageSid?: string;
}

const DEFAULT_USER = "whatsapp:+31612345678";
const DEFAULT_SENDER = "whatsapp:+14155238886";

/** The parameters every incoming WhatsApp message carries (as observed in real bodies). */
function baseParams(o: InboundOptions, sid: string, messageType: string): TwilioParams {
  const from = o.from ?? DEFAULT_USER;
  return {
    SmsMessageSid: sid,
    NumMedia: "0",
    ProfileName: o.profileName ?? "Anne de Vries",
    MessageType: messageType,
    SmsSid: sid,
    WaId: from.replace(/^whatsapp:\+?/, ""),
    SmsStatus: "received",
    Body: "",
    To: o.to ?? DEFAULT_SENDER,
    NumSegments: "1",
    ReferralNumMedia: "0",
    MessageSid: sid,
    AccountSid: o.accountSid ?? "AC00000000000000000000000000000000",
    From: from,
    ApiVersion: "2010-04-01",
  };
}

export function inboundText(body: string, o: InboundOptions = {}): TwilioParams {
  return { ...baseParams(o, o.messageSid ?? twilioSid("SM"), "text"), Body: body };
}

/** A reaction (an emoji on one of our replies): `MessageType` reaction, the emoji in `Body`. */
export function inboundReaction(emoji: string, o: InboundOptions = {}): TwilioParams {
  return { ...baseParams(o, o.messageSid ?? twilioSid("SM"), "reaction"), Body: emoji };
}

/** An image, with the caption in `Body` when given. Media messages carry an `MM` sid. */
export function inboundImage(caption: string | undefined, o: InboundOptions = {}): TwilioParams {
  const sid = o.messageSid ?? twilioSid("MM");
  const accountSid = o.accountSid ?? "AC00000000000000000000000000000000";
  return {
    ...baseParams(o, sid, "image"),
    Body: caption ?? "",
    NumMedia: "1",
    MediaContentType0: "image/jpeg",
    MediaUrl0: `https://api.twilio.com/2010-04-01/Accounts/${accountSid}/Messages/${sid}/Media/${twilioSid("ME")}`,
  };
}

export function inboundLocation(
  place: { latitude: string; longitude: string; label?: string; address?: string },
  o: InboundOptions = {},
): TwilioParams {
  return {
    ...baseParams(o, o.messageSid ?? twilioSid("SM"), "location"),
    Latitude: place.latitude,
    Longitude: place.longitude,
    ...(place.label ? { Label: place.label } : {}),
    ...(place.address ? { Address: place.address } : {}),
  };
}

/** A quick-reply button tap: `Body` and `ButtonText` carry the label, `ButtonPayload` the template's id. */
export function inboundButtonReply(text: string, payload: string, o: InboundOptions = {}): TwilioParams {
  return {
    ...baseParams(o, o.messageSid ?? twilioSid("SM"), "button"),
    Body: text,
    ButtonText: text,
    ButtonPayload: payload,
    ButtonType: "REPLY",
  };
}

/** A status callback's parameters. */
export function statusCallbackParams(s: {
  accountSid: string;
  messageSid: string;
  status: string;
  to: string;
  from: string;
  errorCode?: string;
}): TwilioParams {
  return {
    ChannelPrefix: "whatsapp",
    ApiVersion: "2010-04-01",
    MessageStatus: s.status,
    SmsSid: s.messageSid,
    SmsStatus: s.status,
    ChannelInstallSid: "XE00000000000000000000000000000000",
    To: s.to,
    From: s.from,
    ChannelToAddress: s.to.replace(/^whatsapp:/, "").replace(/\d{4}$/, "XXXX"),
    MessageSid: s.messageSid,
    AccountSid: s.accountSid,
    ...(s.errorCode ? { ErrorCode: s.errorCode, ErrorMessage: "Twilio reported a delivery failure" } : {}),
  };
}
