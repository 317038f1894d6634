import {
  LogLevel,
  type Logger as SlackLogger,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
} from "@slack/web-api";
import type { Logger } from "../../log.js";
import { parseRetryAfter } from "../shared.js";
import { ChannelSendError, type Route, type SentPart } from "../types.js";
import type { SlackConfig } from "./config.js";
import type { SlackIdentity, SlackRoute } from "./inbound.js";

/** A hung Slack call must not hold a worker (or, for auth.test, the webhook ack) indefinitely. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Shown under the bot's name in an assistant thread; Slack removes it when the reply is posted. */
export const THINKING_STATUS = "is thinking…";

/** `ok:false` codes worth retrying; every other one (channel_not_found, invalid_auth...) will not change. */
const TRANSIENT_ERRORS = new Set([
  "ratelimited",
  "rate_limited",
  "internal_error",
  "fatal_error",
  "service_unavailable",
  "request_timeout",
]);

/**
 * A WebClient that fails fast: the relay owns retries and backoff, so the client neither retries nor
 * pauses on a 429 (its default policy would block a worker for up to half an hour).
 */
export function createSlackClient(config: SlackConfig, log: Logger): WebClient {
  return new WebClient(config.bot_token, {
    slackApiUrl: config.api_url,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: REQUEST_TIMEOUT_MS,
    logger: webClientLogger(log),
  });
}

export async function postMessage(
  client: WebClient,
  config: SlackConfig,
  route: SlackRoute,
  text: string,
  plain: boolean,
): Promise<SentPart> {
  try {
    const result = await client.chat.postMessage({
      channel: route.channel,
      text,
      mrkdwn: !plain,
      // The config has one switch: media previews follow link previews.
      unfurl_links: config.unfurl_links,
      unfurl_media: config.unfurl_links,
      ...(route.thread_ts ? { thread_ts: route.thread_ts } : {}),
    });
    return { channelMessageId: result.ts ?? "" };
  } catch (error) {
    throw classifySlackError("chat.postMessage", error);
  }
}

export async function setThinkingStatus(client: WebClient, channel: string, threadTs: string) {
  try {
    await client.assistant.threads.setStatus({
      channel_id: channel,
      thread_ts: threadTs,
      status: THINKING_STATUS,
    });
  } catch (error) {
    throw classifySlackError("assistant.threads.setStatus", error);
  }
}

/** The bot's user id and bot id, so the parser can skip its own messages and strip its mention. */
export async function fetchIdentity(client: WebClient): Promise<SlackIdentity> {
  const result = await client.auth.test();
  if (!result.user_id) throw new Error("auth.test returned no user_id");
  return { userId: result.user_id, botId: result.bot_id };
}

/** The name Slack shows for a user: display name, else full name; undefined when it has neither. */
export async function fetchUserName(client: WebClient, userId: string): Promise<string | undefined> {
  const { user } = await client.users.info({ user: userId });
  return user?.profile?.display_name || user?.profile?.real_name || user?.real_name || undefined;
}

/** Reads back the route the parser stored; a route without a channel can never be delivered. */
export function readRoute(route: Route): SlackRoute {
  const { channel, thread_ts, assistant } = route;
  if (typeof channel !== "string" || !channel) {
    throw new ChannelSendError("permanent", "Slack route has no channel", "bad_route");
  }
  return {
    channel,
    ...(typeof thread_ts === "string" && thread_ts ? { thread_ts } : {}),
    ...(assistant === true ? { assistant } : {}),
  };
}

/** What a Slack error code looks like (`channel_not_found`); anything else in `error` is not repeated. */
const SLACK_ERROR_CODE = /^[a-z0-9_]{1,64}$/;

/**
 * Maps a WebClient failure to what the relay should do with it. Messages carry the HTTP status or Slack's
 * error code, never text from the response (the WebClient's own messages and `data` can carry the body of
 * whatever answered at api_url).
 */
export function classifySlackError(method: string, error: unknown): ChannelSendError {
  if (error instanceof WebAPIRateLimitedError) {
    return new ChannelSendError("retry", `${method}: rate limited`, "ratelimited", error.retryAfter * 1000);
  }
  if (error instanceof WebAPIPlatformError) {
    const reported = error.data.error;
    const code =
      typeof reported === "string" && SLACK_ERROR_CODE.test(reported) ? reported : "unrecognised_error";
    const retryAfterSeconds = Number(error.data.response_metadata?.retryAfter);
    const retryAfterMs = Number.isFinite(retryAfterSeconds) ? retryAfterSeconds * 1000 : undefined;
    const kind = TRANSIENT_ERRORS.has(code) ? "retry" : "permanent";
    return new ChannelSendError(kind, `${method}: ${code}`, code, retryAfterMs);
  }
  if (error instanceof WebAPIHTTPError) {
    const code = `http_${error.statusCode}`;
    if (error.statusCode >= 500 || error.statusCode === 408) {
      const retryAfterMs = parseRetryAfter(error.headers["retry-after"]);
      return new ChannelSendError("retry", `${method}: HTTP ${error.statusCode}`, code, retryAfterMs);
    }
    return new ChannelSendError("permanent", `${method}: HTTP ${error.statusCode}`, code);
  }
  if (error instanceof WebAPIRequestError) {
    // The request did not complete (connection refused, timeout): the transport's error code, if any.
    const cause = (error.original as { code?: unknown }).code;
    const detail =
      typeof cause === "string" && SLACK_ERROR_CODE.test(cause.toLowerCase()) ? ` (${cause})` : "";
    return new ChannelSendError("retry", `${method}: request failed${detail}`, "network");
  }
  // Includes a 429 whose Retry-After the WebClient could not read, and an answer that is not JSON (whose
  // parse error quotes it): back off and try again.
  const name = error instanceof Error ? error.name : typeof error;
  return new ChannelSendError("retry", `${method}: unexpected ${name}`, "unknown");
}

/**
 * Routes the WebClient's own warnings and errors into our logger. Its debug and info lines (request bodies,
 * i.e. user text) are dropped. Warnings it relays from an answer (`response_metadata`) are the remote's
 * words: only those that are Slack warning codes (`missing_charset`) are kept, and the client's own
 * transport failures.
 */
function webClientLogger(log: Logger): SlackLogger {
  const child = log.child({ component: "slack-web-api" });
  const line = (parts: unknown[]) => {
    // Relayed warnings arrive as forEach's (warning, index, array).
    const first = String(parts[0]);
    if (SLACK_ERROR_CODE.test(first)) return first;
    if (first === "http request failed") return parts.slice(0, 2).map(String).join(" ");
    return "a warning from the Slack API answer (withheld: it may quote the remote's answer)";
  };
  return {
    debug: () => {},
    info: () => {},
    warn: (...parts) => child.warn(line(parts)),
    error: (...parts) => child.error(line(parts)),
    setLevel: () => {},
    getLevel: () => LogLevel.WARN,
    setName: () => {},
  };
}
