import twilio from "twilio";
import type RequestClient from "twilio/lib/base/RequestClient.js";
import { parseRetryAfter } from "../shared.js";
import { ChannelSendError, type Route, type SentPart } from "../types.js";
import type { WhatsappConfig } from "./config.js";

export type TwilioClient = twilio.Twilio;

/** Twilio usually answers in well under a second; a hung connection should fall back to the relay's retry. */
const REQUEST_TIMEOUT_MS = 15_000;

/**
 * The SDK's HTTP client, pointed at the tenant's `api_base` (regional endpoint, proxy, test fake) instead of
 * api.twilio.com. Every path is kept, so the SDK stays the one that builds requests and parses answers. The
 * whole origin is replaced (not only api.twilio.com), so TWILIO_REGION/TWILIO_EDGE, which the SDK reads from the
 * environment, cannot send a tenant's requests elsewhere: `api_base` is the one setting.
 */
class ApiBaseRequestClient extends twilio.RequestClient {
  readonly #apiBase: string;

  constructor(apiBase: string) {
    // No auto-retry: a 429 has to reach the relay, which owns backoff across replicas.
    super({ autoRetry: false, timeout: REQUEST_TIMEOUT_MS });
    this.#apiBase = apiBase.replace(/\/+$/, "");
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>) {
    const sdkUrl = new URL(opts.uri);
    const response = await super.request({ ...opts, uri: this.#apiBase + sdkUrl.pathname + sdkUrl.search });
    // The SDK's RestException drops the headers, so Retry-After is read here, where they are still known.
    if (response.statusCode === 429) {
      const reported = (response.body as { code?: unknown } | undefined)?.code;
      const code = Number.isSafeInteger(reported) ? String(reported) : "20429";
      const retryAfterMs = parseRetryAfter(response.headers?.["retry-after"]);
      throw new ChannelSendError("retry", `Twilio rate limit (${code})`, code, retryAfterMs);
    }
    return response;
  }
}

export function createTwilioClient(config: WhatsappConfig): TwilioClient {
  return twilio(config.account_sid, config.auth_token, {
    httpClient: new ApiBaseRequestClient(config.api_base),
  });
}

/** The route `inbound.ts` stored, checked again because it comes back from the database. */
function routeOf(route: Route): { to: string; from: string; statusCallback?: string } {
  const { to, from, statusCallback } = route;
  if (typeof to !== "string" || typeof from !== "string") {
    throw new ChannelSendError("permanent", "WhatsApp route lacks to/from", "bad_route");
  }
  return typeof statusCallback === "string" ? { to, from, statusCallback } : { to, from };
}

/**
 * Sends one part of a reply. WhatsApp markup (`*bold*`...) is never rejected, so `plain` changes nothing here.
 * The returned id is the MessageSid that status callbacks report on.
 */
export async function sendWhatsappText(client: TwilioClient, route: Route, text: string): Promise<SentPart> {
  const { to, from, statusCallback } = routeOf(route);
  try {
    const message = await client.messages.create({
      to,
      from,
      body: text,
      ...(statusCallback ? { statusCallback } : {}),
    });
    return { channelMessageId: message.sid };
  } catch (error) {
    // The relay logs permanent failures with `code` (63016, 21211...) and fails the message.
    throw classifySendError(error);
  }
}

/**
 * 429 and 5xx and network failures are worth retrying; any other 4xx (63016, 21211, 21610...) is not.
 * Messages carry the HTTP status and Twilio's error code, never the RestException's message: that is the
 * `message` of whatever body answered at api_base.
 */
export function classifySendError(error: unknown): ChannelSendError {
  if (error instanceof ChannelSendError) return error;
  const { status, code } = (error ?? {}) as { status?: unknown; code?: unknown };
  if (typeof status === "number") {
    const twilioCode = Number.isSafeInteger(code) ? String(code) : String(status);
    const retryable = status === 429 || twilioCode === "20429" || status >= 500;
    return new ChannelSendError(
      retryable ? "retry" : "permanent",
      `Twilio answered ${status} (${twilioCode})`,
      twilioCode,
    );
  }
  // Connection refused or reset, DNS, timeouts: the request may not have reached Twilio.
  if ((error as { isAxiosError?: unknown } | null)?.isAxiosError === true) {
    const networkCode = typeof code === "string" && /^[A-Z0-9_]{1,40}$/.test(code) ? code : undefined;
    return new ChannelSendError(
      "retry",
      `Twilio unreachable${networkCode ? ` (${networkCode})` : ""}`,
      "network",
    );
  }
  const name = error instanceof Error ? error.name : typeof error;
  return new ChannelSendError("permanent", `WhatsApp send failed: unexpected ${name}`, "unknown");
}
