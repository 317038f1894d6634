import { createHmac, timingSafeEqual } from "node:crypto";
import { unauthorized } from "../../errors.js";
import type { WebhookRequest } from "../types.js";

/** A signed request further from our clock than this may be a replay (Slack's documented window). */
export const MAX_CLOCK_SKEW_SECONDS = 5 * 60;

const V0_SIGNATURE = /^v0=([0-9a-f]{64})$/;

/**
 * The checks Slack's signature headers allow before the body is read: both present, the timestamp a Unix time
 * within MAX_CLOCK_SKEW_SECONDS (either way: Bolt's verifySlackRequest lets future ones through), the
 * signature `v0=` and 64 hex digits. 401 otherwise. Returns the timestamp and the presented digest.
 */
export function precheckSlackHeaders(
  headers: Headers,
  nowMs = Date.now(),
): { timestamp: string; digest: Buffer } {
  const timestamp = headers.get("x-slack-request-timestamp");
  const signature = headers.get("x-slack-signature");
  if (!timestamp || !signature) {
    throw unauthorized("missing X-Slack-Signature or X-Slack-Request-Timestamp header");
  }
  if (!/^\d{1,15}$/.test(timestamp)) throw unauthorized("X-Slack-Request-Timestamp is not a Unix time");
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > MAX_CLOCK_SKEW_SECONDS) {
    throw unauthorized("X-Slack-Request-Timestamp is more than 5 minutes off: stale or replayed request");
  }
  const presented = V0_SIGNATURE.exec(signature)?.[1];
  if (!presented) throw unauthorized("X-Slack-Signature does not match: not v0= and 64 hex digits");
  return { timestamp, digest: Buffer.from(presented, "hex") };
}

/**
 * Checks Slack's `v0` request signature: HMAC-SHA256 of `v0:{timestamp}:{raw body}` with the signing
 * secret, after the header checks of `precheckSlackHeaders`; missing headers are a 401 rather than a TypeError.
 */
export function verifySlackSignature(req: WebhookRequest, signingSecret: string, nowMs = Date.now()): void {
  const { timestamp, digest } = precheckSlackHeaders(req.headers, nowMs);
  const expected = createHmac("sha256", signingSecret)
    .update(`v0:${timestamp}:`)
    .update(req.rawBody)
    .digest();
  // Digests of one fixed length, compared in constant time: no hashing of both sides needed (safeEqual).
  if (!timingSafeEqual(digest, expected)) throw unauthorized("X-Slack-Signature does not match");
}
