import { createHmac, timingSafeEqual } from "node:crypto";
import { badRequest, forbidden } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { WebhookRequest } from "../types.js";
import type { WhatsappConfig } from "./config.js";
import { readTwilioForm, requireFormContentType, type TwilioForm } from "./form.js";

const SIGNATURE_HEADER = "X-Twilio-Signature";

/** Base64 of a 20-byte HMAC-SHA1: 27 characters and one `=`. */
const SIGNATURE_SHAPE = /^[A-Za-z0-9+/]{27}=$/;

/** A Twilio message SID: `SM` (or `MM` with media) and 32 hex digits (lower case in practice). */
const MESSAGE_SID = /^(SM|MM)[0-9a-fA-F]{32}$/;

/**
 * The URL Twilio called, which its signature covers: the deployment's public URL + path + query when
 * configured; otherwise rebuilt from the proxy's `X-Forwarded-Proto`/`X-Forwarded-Host`, else `Host` and the
 * scheme the request arrived with. `base` is that URL's origin part, for building sibling URLs.
 */
export function twilioCalledUrl(req: WebhookRequest): { base: string; url: string } {
  const pathAndQuery = req.url.pathname + req.url.search;
  const base = req.publicUrl ? req.publicUrl.replace(/\/+$/, "") : forwardedOrigin(req);
  return { base, url: base + pathAndQuery };
}

function forwardedOrigin(req: WebhookRequest): string {
  const proto = firstValue(req.headers.get("x-forwarded-proto")) ?? req.url.protocol.slice(0, -1);
  const host =
    firstValue(req.headers.get("x-forwarded-host")) ?? firstValue(req.headers.get("host")) ?? req.url.host;
  return `${proto}://${host}`;
}

/** Proxies chain values (`https, http`); the first one is what the client used. */
function firstValue(header: string | null): string | undefined {
  if (header === null) return undefined;
  return header.split(",")[0]!.trim() || undefined;
}

/**
 * What can be refused from the headers alone, before the body is read: a missing or malformed signature
 * (403) and a body that is not a form (400). Returns the signature's bytes.
 */
export function precheckTwilioRequest(headers: Headers): Buffer {
  const signature = headers.get(SIGNATURE_HEADER);
  if (!signature) throw forbidden(`missing ${SIGNATURE_HEADER} header`);
  if (!SIGNATURE_SHAPE.test(signature)) {
    throw forbidden(`${SIGNATURE_HEADER} is not a base64 HMAC-SHA1 (28 characters)`);
  }
  requireFormContentType(headers);
  return Buffer.from(signature, "base64");
}

/**
 * Checks `X-Twilio-Signature` over the called URL and all posted parameters (403 when it is missing or
 * wrong; 400 when the body is not a bounded, readable form), then that the signed request is one of this
 * tenant's account (`AccountSid`, 403) about a well-formed message (`MessageSid`, 400). The signature covers
 * names and values run together, so characters moved across a name/value boundary keep it valid; the exact
 * shapes of the two SIDs are what refuse such a rearranged copy of a captured request.
 */
export function verifyTwilioSignature(
  req: WebhookRequest,
  config: Pick<WhatsappConfig, "auth_token" | "account_sid">,
  log: Logger,
  tenantId: string,
): void {
  const presented = precheckTwilioRequest(req.headers);
  const form = readTwilioForm(req);
  const { url } = twilioCalledUrl(req);
  const signed = signedParameters(form);
  const matches = signedUrls(url).some((candidate) =>
    timingSafeEqual(
      createHmac("sha1", config.auth_token).update(candidate).update(signed).digest(),
      presented,
    ),
  );
  if (!matches) {
    // A wrong PUBLIC_URL or proxy header is the usual cause, so say which URL was checked.
    log.warn(
      { tenant: tenantId, url },
      "Twilio signature does not match; check PUBLIC_URL and proxy headers",
    );
    throw forbidden(`invalid ${SIGNATURE_HEADER}`);
  }
  // Each must appear once: a repeated one is an array, which neither equals the account's SID nor, joined
  // with commas, has a message SID's shape (nor has an absent one, "undefined").
  if (form.AccountSid !== config.account_sid) {
    throw forbidden("AccountSid is not this tenant's Twilio account");
  }
  if (!MESSAGE_SID.test(String(form.MessageSid))) {
    throw badRequest("MessageSid is not a Twilio message SID (SM or MM and 32 hex digits)");
  }
}

/**
 * The parameters as Twilio signs them: names sorted, each name followed by its value; a repeated name's
 * distinct values sorted, each after the name (as the Twilio SDK's validator reads them). Built once per
 * request, whatever the number of URLs tried.
 */
function signedParameters(form: TwilioForm): string {
  const parts: string[] = [];
  for (const name of Object.keys(form).sort()) {
    const value = form[name];
    if (typeof value === "string") parts.push(name, value);
    else for (const one of [...new Set(value)].sort()) parts.push(name, one);
  }
  return parts.join("");
}

/**
 * The URLs Twilio may have signed: the called URL as configured, and, when `PUBLIC_URL` or a proxy header
 * spells its scheme or host in capitals, as the URL parser writes it (lower case), as the SDK's validator
 * also tries; each without and with a port. Two HMACs in the usual case, four at most.
 */
function signedUrls(url: string): string[] {
  let normalized = url;
  try {
    normalized = new URL(url).href;
  } catch {}
  return [...new Set([...portVariants(url), ...portVariants(normalized)])];
}

/**
 * The called URL without and with a port: Twilio keeps a port it was given, and some of its callers sign the
 * scheme's default port, so the SDK's validator tries both; so does this, the URL without one first. Two
 * HMACs at most: the path and query are already normalised by the URL parser.
 */
function portVariants(url: string): string[] {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)/is.exec(url);
  if (!match) return [url];
  // Each group takes part in every match.
  const [scheme, authority, rest] = match.slice(1) as [string, string, string];
  const portAt = authority.indexOf(":", authority.lastIndexOf("]") + 1);
  const host = portAt === -1 ? authority : authority.slice(0, portAt);
  const hostAndPort = portAt === -1 ? `${host}:${scheme.toLowerCase() === "https" ? 443 : 80}` : authority;
  return [`${scheme}://${host}${rest}`, `${scheme}://${hostAndPort}${rest}`];
}
