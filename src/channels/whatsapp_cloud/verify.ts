import { createHmac, timingSafeEqual } from "node:crypto";
import { badRequest, forbidden, unauthorized } from "../../errors.js";
import { safeEqual } from "../shared.js";
import type { WhatsappCloudConfig } from "./config.js";

export const SIGNATURE_HEADER = "X-Hub-Signature-256";

/** `sha256=` and the hex HMAC-SHA256 (32 bytes); Meta writes lower case, upper case decodes the same. */
const SIGNATURE_SHAPE = /^sha256=([0-9a-fA-F]{64})$/;

/**
 * What Meta sends as `hub.challenge` is a number (e.g. 1158201444); anything printable and short is accepted,
 * as the value is echoed back as the response body and nothing else should be.
 */
const CHALLENGE_SHAPE = /^[\x21-\x7e]{1,256}$/;

/**
 * The GET handshake Meta makes when the callback URL or verify token is saved in the App Dashboard:
 * `hub.mode=subscribe`, `hub.verify_token` as typed there, `hub.challenge` to echo. Returns the challenge
 * (answer 200 with it as a plain text body); 403 for another mode or a wrong token, checked before the
 * challenge so an unauthenticated caller learns nothing; 400 when the challenge is missing or unusable.
 */
export function checkSubscription(url: URL, config: Pick<WhatsappCloudConfig, "verify_token">): string {
  const params = url.searchParams;
  if (params.get("hub.mode") !== "subscribe") throw forbidden("hub.mode is not subscribe");
  const token = params.get("hub.verify_token");
  if (token === null || !safeEqual(token, config.verify_token)) throw forbidden("wrong hub.verify_token");
  const challenge = params.get("hub.challenge");
  if (challenge === null || challenge === "") throw badRequest("missing hub.challenge");
  if (!CHALLENGE_SHAPE.test(challenge)) throw badRequest("hub.challenge is not 1-256 printable characters");
  return challenge;
}

/**
 * 401 unless the request carries a well-formed `X-Hub-Signature-256`: a header check, made before the body
 * is read. Returns the signature's bytes.
 */
export function precheckSignatureHeader(headers: Headers): Buffer {
  const header = headers.get(SIGNATURE_HEADER);
  if (header === null) throw unauthorized(`missing ${SIGNATURE_HEADER} header`);
  const hex = SIGNATURE_SHAPE.exec(header)?.[1];
  if (hex === undefined) throw unauthorized(`${SIGNATURE_HEADER} is not sha256= and 64 hex digits`);
  return Buffer.from(hex, "hex");
}

/**
 * Checks `X-Hub-Signature-256`: HMAC-SHA256 with the app secret over the body's bytes exactly as received.
 * Meta serialises the JSON with its own escapes (`\/`, `\u00e9`...), so the bytes are never re-encoded from
 * the parsed value. Constant-time: both sides are 32 bytes (the header's shape guarantees it). 401 when
 * missing, malformed or wrong.
 */
export function verifySignature(rawBody: Buffer, headers: Headers, appSecret: string): void {
  const presented = precheckSignatureHeader(headers);
  const expected = createHmac("sha256", appSecret).update(rawBody).digest();
  if (!timingSafeEqual(presented, expected)) throw unauthorized(`invalid ${SIGNATURE_HEADER}`);
}
