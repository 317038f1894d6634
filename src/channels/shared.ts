import { createHash, timingSafeEqual } from "node:crypto";
import type { InboundMessage, Route } from "./types.js";

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
