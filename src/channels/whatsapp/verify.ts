import twilio from "twilio";
import { forbidden } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { WebhookRequest } from "../types.js";
import { readTwilioForm } from "./form.js";

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
  const proto = firstValue(req.headers.get("x-forwarded-proto")) ?? req.url.protocol.replace(/:$/, "");
  const host =
    firstValue(req.headers.get("x-forwarded-host")) ?? firstValue(req.headers.get("host")) ?? req.url.host;
  return `${proto}://${host}`;
}

/** Proxies chain values (`https, http`); the first one is what the client used. */
function firstValue(header: string | null): string | undefined {
  const first = header?.split(",")[0]?.trim();
  return first || undefined;
}

/**
 * Checks `X-Twilio-Signature` over the called URL and all posted parameters: 403 when it is missing or wrong,
 * 400 when the body is not a readable form.
 */
export function verifyTwilioSignature(
  req: WebhookRequest,
  authToken: string,
  log: Logger,
  tenantId: string,
): void {
  const signature = req.headers.get("x-twilio-signature");
  if (!signature) throw forbidden("missing X-Twilio-Signature header");
  const form = readTwilioForm(req);
  const { url } = twilioCalledUrl(req);
  if (!twilio.validateRequest(authToken, signature, url, form)) {
    // A wrong PUBLIC_URL or proxy header is the usual cause, so say which URL was checked.
    log.warn(
      { tenant: tenantId, url },
      "Twilio signature does not match; check PUBLIC_URL and proxy headers",
    );
    throw forbidden("invalid X-Twilio-Signature");
  }
}
