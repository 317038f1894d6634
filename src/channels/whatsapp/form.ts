import { badRequest } from "../../errors.js";
import type { WebhookRequest } from "../types.js";

/**
 * Every parameter Twilio posted, decoded. Signature validation needs all of them (Twilio adds parameters
 * without notice), so nothing is filtered. A repeated name keeps all its values, as the validator expects.
 * Null prototype: a parameter named `__proto__` must stay a plain entry.
 */
export type TwilioForm = Record<string, string | string[]>;

const FORM_CONTENT_TYPE = "application/x-www-form-urlencoded";

/** Forms already decoded, per request: verification and parsing both read the same body. */
const decoded = new WeakMap<WebhookRequest, TwilioForm>();

/** Reads a Twilio webhook body; 400 on another content type or undecodable bytes. */
export function readTwilioForm(req: WebhookRequest): TwilioForm {
  const known = decoded.get(req);
  if (known) return known;
  const contentType = req.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (contentType !== FORM_CONTENT_TYPE) {
    throw badRequest(`expected ${FORM_CONTENT_TYPE}, got ${contentType || "no content type"}`);
  }
  const form = parseForm(req.rawBody.toString("utf8"));
  decoded.set(req, form);
  return form;
}

/** Strict form decoding: URLSearchParams would silently turn bad escapes into U+FFFD. */
export function parseForm(body: string): TwilioForm {
  const form: TwilioForm = Object.create(null);
  for (const pair of body.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = decodeComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? "" : decodeComponent(pair.slice(eq + 1));
    const previous = form[name];
    if (previous === undefined) form[name] = value;
    else form[name] = Array.isArray(previous) ? [...previous, value] : [previous, value];
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
