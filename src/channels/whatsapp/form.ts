import { badRequest, HttpError } from "../../errors.js";
import type { WebhookRequest } from "../types.js";

/**
 * Every parameter Twilio posted, decoded. Signature validation needs all of them (Twilio adds parameters
 * without notice), so nothing is filtered. A repeated name keeps all its values, as the validator expects.
 * Null prototype: a parameter named `__proto__` must stay a plain entry.
 */
export type TwilioForm = Record<string, string | string[]>;

const FORM_CONTENT_TYPE = "application/x-www-form-urlencoded";

/**
 * More parameters than Twilio ever posts: an incoming WhatsApp message carries about 20, with location,
 * referral (ad click), button and reply fields a few dozen, and each media item adds two (at most 10 items).
 * Checked on the raw bytes before anything is decoded or hashed.
 */
const MAX_FORM_PARAMETERS = 256;

/** Forms already decoded, per request: verification and parsing both read the same body. */
const decoded = new WeakMap<WebhookRequest, TwilioForm>();

/** The body's media type, lower case, without parameters (`; charset=...`). */
function mediaType(headers: Headers): string | undefined {
  return headers.get("content-type")?.split(";")[0]?.trim().toLowerCase() || undefined;
}

/** 400 unless the request declares a form body: a header check, done before the body is read. */
export function requireFormContentType(headers: Headers): void {
  const type = mediaType(headers);
  if (type !== FORM_CONTENT_TYPE)
    throw badRequest(`expected ${FORM_CONTENT_TYPE}, got ${type || "no content type"}`);
}

/**
 * Reads a Twilio webhook body; 400 on another content type, undecodable bytes or more parameters than
 * MAX_FORM_PARAMETERS (counted before decoding).
 */
export function readTwilioForm(req: WebhookRequest): TwilioForm {
  const known = decoded.get(req);
  if (known) return known;
  requireFormContentType(req.headers);
  const count = countParameters(req.rawBody);
  if (count > MAX_FORM_PARAMETERS) {
    throw new HttpError(
      400,
      "TOO_MANY_PARAMETERS",
      `form has ${count} parameters; Twilio never sends more than ${MAX_FORM_PARAMETERS}`,
    );
  }
  const form = parseForm(req.rawBody.toString("utf8"));
  decoded.set(req, form);
  return form;
}

const AMPERSAND = 0x26;

/** An upper bound of the parameters in a form body: its `&` separators plus one, one pass over the bytes. */
export function countParameters(body: Buffer): number {
  if (body.length === 0) return 0;
  let count = 1;
  for (let at = body.indexOf(AMPERSAND); at !== -1; at = body.indexOf(AMPERSAND, at + 1)) count++;
  return count;
}

/**
 * Strict form decoding: URLSearchParams would silently turn bad escapes into U+FFFD. Linear in the body:
 * a repeated name appends to its one array.
 */
export function parseForm(body: string): TwilioForm {
  const form: TwilioForm = Object.create(null);
  for (const pair of body.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = decodeComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? "" : decodeComponent(pair.slice(eq + 1));
    const previous = form[name];
    if (previous === undefined) form[name] = value;
    else if (Array.isArray(previous)) previous.push(value);
    else form[name] = [previous, value];
  }
  return form;
}

function decodeComponent(encoded: string): string {
  if (!encoded.includes("%") && !encoded.includes("+")) return encoded;
  try {
    return decodeURIComponent(encoded.replaceAll("+", " "));
  } catch {
    throw badRequest("malformed form body: invalid percent-encoding or UTF-8");
  }
}

/** A parameter's (first) value; empty strings count as absent. */
export function field(form: TwilioForm, name: string): string | undefined {
  const value = form[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === "" ? undefined : first;
}
