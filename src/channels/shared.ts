import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { InboundMessage, ParseResult, Route, WebhookResult } from "./types.js";

/** An http(s) URL setting: API roots and bases, which tests point at loopback fakes. */
export const httpUrl = z.url({ protocol: /^https?$/ });

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** A parsed update as the webhook route stores it: its text made storable, or nothing with the reason. */
export function webhookResult(result: ParseResult): WebhookResult {
  return result.type === "message"
    ? { type: "messages", messages: [storable(result.message)] }
    : { type: "messages", messages: [], ignored: result.reason };
}

/**
 * One client per tenant, rebuilt when the settings it was built from (credentials, API base) change, so a
 * changed tenant takes effect at once. The settings are kept only as a hash.
 */
export class TenantClients<Client> {
  private readonly byTenant = new Map<string, { fingerprint: string; client: Client }>();

  get(tenantId: string, settings: readonly string[], create: () => Client): Client {
    const fingerprint = createHash("sha256").update(settings.join("\0")).digest("hex");
    const cached = this.byTenant.get(tenantId);
    if (cached?.fingerprint === fingerprint) return cached.client;
    const client = create();
    this.byTenant.set(tenantId, { fingerprint, client });
    return client;
  }
}

/** `load` run once and shared by concurrent callers; a failure is not kept, so the next call tries again. */
export function sharedOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= load().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

/** Constant-time string comparison; hashing first makes the time independent of the lengths too. */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** `Retry-After` in milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The message with every string made storable: PostgreSQL text and jsonb hold neither NUL characters nor
 * unpaired UTF-16 surrogates, and a webhook's JSON may carry both (`\u0000`, `\ud800`). NULs are dropped,
 * unpaired surrogates become U+FFFD, as a UTF-8 encoder would write them. The walk follows the message's
 * type, whose depth is fixed (a route is flat), never the depth of what a webhook sent.
 */
export function storable(message: InboundMessage): InboundMessage {
  const route: Route = {};
  for (const [key, value] of Object.entries(message.route)) {
    route[storableText(key)] = typeof value === "string" ? storableText(value) : value;
  }
  const sender: InboundMessage["sender"] = { ...message.sender, id: storableText(message.sender.id) };
  if (message.sender.name !== undefined) sender.name = storableText(message.sender.name);
  return {
    ...message,
    threadKey: storableText(message.threadKey),
    dedupeKey: storableText(message.dedupeKey),
    text: storableText(message.text),
    sender,
    route,
  };
}

/** One string made storable (see `storable`); the common clean string is returned as is. */
export function storableText(value: string): string {
  if (value.isWellFormed() && !value.includes("\u0000")) return value;
  return value.toWellFormed().replaceAll("\u0000", "");
}

/**
 * A shared location pin as the text the agent reads, e.g.
 * `Shared location: Anne Frank House, Westermarkt 20, Amsterdam (52.3752, 4.884)`. WhatsApp sends a pin
 * with coordinates and, for a chosen place, its name and address.
 */
export function sharedLocationText(place: {
  latitude: string | number;
  longitude: string | number;
  name?: string | undefined;
  address?: string | undefined;
}): string {
  const label = [place.name, place.address].filter(Boolean).join(", ");
  return `Shared location: ${label ? `${label} ` : ""}(${place.latitude}, ${place.longitude})`;
}

/** Words for the system error codes a request to a platform's API most often fails with. */
const NETWORK_FAILURES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  UND_ERR_SOCKET: "connection closed",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "connection timed out",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
};

/** A system or undici error code (never a message: messages may quote the request URL, token and all). */
const ERROR_CODE = /^[A-Z][A-Z0-9_]{1,40}$/;

/**
 * Why a request got no answer, from the error codes of the error and its causes (fetch keeps the socket's
 * error in `cause`, grammY's HttpError in `error`): e.g. "connection refused (ECONNREFUSED)", "TLS
 * certificate not accepted (CERT_HAS_EXPIRED)". Undefined when no code says.
 */
export function networkFailure(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && isRecord(current); depth++) {
    const code = current.code;
    if (typeof code === "string" && ERROR_CODE.test(code)) {
      const words =
        NETWORK_FAILURES[code] ??
        (/CERT|TLS|SSL|SELF_SIGNED/.test(code) ? "TLS certificate not accepted" : "");
      return words ? `${words} (${code})` : code;
    }
    current = current.cause ?? current.error;
  }
  return undefined;
}
