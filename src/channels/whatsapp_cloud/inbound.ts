import { badRequest } from "../../errors.js";
import { isRecord, sharedLocationText, storable, storableText } from "../shared.js";
import type { DeliveryStatus, InboundMessage, MessageKind } from "../types.js";
import type { WhatsappCloudConfig } from "./config.js";

/**
 * Where a reply goes (stored with the message, handed back to `send`): our business number's Graph id and
 * the user, by phone number (`to`) when the webhook carried it, and by business-scoped user id (`recipient`)
 * when it carried that. Meta prefers `to` when both are known; a user with a username may have only the id.
 * `message_id` is the user's message, which the typing indicator marks as read.
 */
export type CloudRoute = { phone_number_id: string; to?: string; recipient?: string; message_id: string };

/** What one verified webhook body holds: user messages, delivery reports, and why the rest was skipped. */
export interface ParsedWebhook {
  messages: InboundMessage[];
  statuses: DeliveryStatus[];
  ignored: string[];
}

/** The only `object` a WhatsApp Business Account webhook has. */
const WABA_OBJECT = "whatsapp_business_account";

/** The webhook field that carries user messages and the statuses of ours. */
const MESSAGES_FIELD = "messages";

type Json = Record<string, unknown>;
type Content = { kind: MessageKind; text: string } | { ignored: string };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A value from the payload inside a reason or error message: short, and one line. */
function shown(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  const oneLine = text.replaceAll(/[\r\n]/g, " ");
  return oneLine.length > 64 ? `${oneLine.slice(0, 64)}…` : oneLine;
}

/** The body as JSON; 400 for bytes that are not UTF-8 or not JSON. */
function decodeJson(rawBody: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(rawBody);
  } catch {
    throw badRequest("body is not UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest("body is not valid JSON");
  }
}

/** Field readers: each throws 400 naming the path when the payload has the wrong shape. */
class Reader {
  constructor(
    readonly value: Json,
    readonly path: string,
  ) {}

  static of(value: unknown, path: string): Reader {
    if (!isRecord(value)) throw badRequest(`${path} is not an object`);
    return new Reader(value, path);
  }

  /** A string, or undefined when absent; an empty string counts as absent. */
  optionalString(key: string): string | undefined {
    const value = this.value[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") throw badRequest(`${this.path}.${key} is not a string`);
    return value === "" ? undefined : value;
  }

  string(key: string): string {
    const value = this.optionalString(key);
    if (value === undefined) throw badRequest(`${this.path}.${key} is missing`);
    return value;
  }

  number(key: string): number {
    const value = this.value[key];
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw badRequest(`${this.path}.${key} is not a number`);
    }
    return value;
  }

  object(key: string): Reader {
    return Reader.of(this.value[key], `${this.path}.${key}`);
  }

  optionalObject(key: string): Reader | undefined {
    return this.value[key] === undefined ? undefined : this.object(key);
  }

  /** The array's elements, each with its path; an absent array is empty. */
  array(key: string, required = false): [unknown, string][] {
    const value = this.value[key];
    if (value === undefined && !required) return [];
    if (!Array.isArray(value)) throw badRequest(`${this.path}.${key} is not an array`);
    return value.map((element, index) => [element, `${this.path}.${key}[${index}]`]);
  }
}

/**
 * Turns a verified webhook body (channel README, "Payloads") into user messages and delivery reports, in one
 * pass over `entry[].changes[]`: no recursion, whatever the payload's depth. 400 with the offending path when
 * the body is not JSON or not shaped like a `whatsapp_business_account` webhook.
 *
 * Changes of another field, or for another business number than the tenant's `phone_number_id`, are
 * skipped with a reason: one Meta app can be subscribed for several numbers (and several fields) and posts
 * them all to the same callback URL, and answering them from this tenant's number would be wrong.
 */
export function parseWebhook(
  rawBody: Buffer,
  config: Pick<WhatsappCloudConfig, "phone_number_id">,
): ParsedWebhook {
  const body = Reader.of(decodeJson(rawBody), "body");
  const parsed: ParsedWebhook = { messages: [], statuses: [], ignored: [] };
  if (body.value.object !== WABA_OBJECT) {
    parsed.ignored.push(`object ${shown(body.value.object)}, not ${WABA_OBJECT}`);
    return parsed;
  }
  for (const [entry, entryPath] of body.array("entry", true)) {
    for (const [change, changePath] of Reader.of(entry, entryPath).array("changes", true)) {
      readChange(Reader.of(change, changePath), config.phone_number_id, parsed);
    }
  }
  return parsed;
}

function readChange(change: Reader, phoneNumberId: string, parsed: ParsedWebhook): void {
  const field = change.string("field");
  if (field !== MESSAGES_FIELD) {
    parsed.ignored.push(`${shown(field)} change`);
    return;
  }
  const value = change.object("value");
  const ours = value.object("metadata").string("phone_number_id");
  if (ours !== phoneNumberId) {
    parsed.ignored.push(`change for phone number id ${shown(ours)}, not this tenant's ${phoneNumberId}`);
    return;
  }
  const names = contactNames(value);
  for (const [message, path] of value.array("messages")) {
    const result = readMessage(Reader.of(message, path), ours, names);
    if (typeof result === "string") parsed.ignored.push(result);
    else parsed.messages.push(storable(result));
  }
  for (const [status, path] of value.array("statuses")) {
    parsed.statuses.push(readStatus(Reader.of(status, path)));
  }
  const errors = value.array("errors");
  if (errors.length > 0) {
    // Account- or app-level problems Meta reports out of band; nothing for the relay to act on.
    const codes = errors.map(([error]) => (isRecord(error) ? shown(error.code) : "?"));
    parsed.ignored.push(`WhatsApp error ${codes.join(", ")}`);
  }
}

/** Profile names by the user's phone number and by business-scoped user id (either may be absent). */
function contactNames(value: Reader): Map<string, string> {
  const names = new Map<string, string>();
  for (const [contact, path] of value.array("contacts")) {
    const reader = Reader.of(contact, path);
    const profile = reader.optionalObject("profile");
    const name = profile?.optionalString("name") ?? profile?.optionalString("username");
    if (name === undefined) continue;
    for (const key of [reader.optionalString("wa_id"), reader.optionalString("user_id")]) {
      if (key !== undefined) names.set(key, name);
    }
  }
  return names;
}

/** A user message, or why it is skipped. */
function readMessage(
  message: Reader,
  phoneNumberId: string,
  names: Map<string, string>,
): InboundMessage | string {
  const id = message.string("id");
  const type = message.string("type");
  const phone = message.optionalString("from");
  const userId = message.optionalString("from_user_id");
  const user = userId ?? phone;
  if (user === undefined) throw badRequest(`${message.path} has neither from nor from_user_id`);

  // The bridge answers people one to one; a business number in a group would answer every member's line.
  if (message.optionalString("group_id") !== undefined) return `group message (${type})`;

  const content = contentOf(message, type);
  if ("ignored" in content) return content.ignored;

  const route: CloudRoute = { phone_number_id: phoneNumberId, message_id: id };
  if (phone !== undefined) route.to = phone;
  if (userId !== undefined) route.recipient = userId;
  const name = (userId && names.get(userId)) || (phone && names.get(phone)) || undefined;
  return {
    threadKey: cloudThreadKey(phoneNumberId, user),
    // Meta's message id: a redelivered webhook carries the same one.
    dedupeKey: id,
    ...content,
    sender: name ? { id: user, name } : { id: user },
    route,
  };
}

/**
 * The thread: our business number and the user. The user is their business-scoped user id when the webhook
 * has one (Meta includes it in every message webhook since April 2026), else their phone number: the id
 * stays the same when a user with a username stops showing their number, which would otherwise split the
 * conversation in two.
 */
export function cloudThreadKey(phoneNumberId: string, user: string): string {
  return `${phoneNumberId}|${user}`;
}

/** What the user sent, per message type (channel README, "What the adapter does with each payload"). */
function contentOf(message: Reader, type: string): Content {
  switch (type) {
    case "text":
      return typedText(message.object("text").string("body"));
    case "image":
    case "video":
    case "document":
      // A caption is the user's question about the media; without one there is nothing to read.
      return typedText(message.object(type).optionalString("caption"));
    case "location": {
      const pin = message.object("location");
      const text = sharedLocationText({
        latitude: pin.number("latitude"),
        longitude: pin.number("longitude"),
        name: pin.optionalString("name"),
        address: pin.optionalString("address"),
      });
      return { kind: "text", text };
    }
    case "button":
      // A quick-reply button of a template message: its label is the answer.
      return { kind: "text", text: message.object("button").string("text") };
    case "interactive":
      return interactiveContent(message.object("interactive"));
    case "order":
      return typedText(message.object("order").optionalString("text"));
    case "request_welcome":
      // The user opened the chat for the first time (welcome messages enabled): greet, like Telegram's /start.
      return { kind: "start", text: "" };
    case "reaction":
      return { ignored: "reaction, not a user message" };
    case "system":
      return {
        ignored: `system notice (${shown(message.optionalObject("system")?.optionalString("type"))})`,
      };
    case "edit":
    case "revoke":
      return { ignored: `${type} of an earlier message` };
    default:
      // audio, voice, sticker, contacts, `unsupported` (polls, view-once...) and types added later: the user
      // sent something, and is told it cannot be read.
      return { kind: "unsupported", text: "" };
  }
}

/** Button and list replies are read as their label; flow answers and other kinds cannot be. */
function interactiveContent(interactive: Reader): Content {
  const type = interactive.string("type");
  switch (type) {
    case "button_reply":
    case "list_reply":
      return { kind: "text", text: interactive.object(type).string("title") };
    case "call_permission_reply":
      // The answer to a business-initiated call permission request: whoever asked handles it, not the agent.
      return { ignored: "call permission answer" };
    default:
      return { kind: "unsupported", text: "" };
  }
}

/** Typed text (a body or caption), trimmed; `/reset` starts over; nothing left is unsupported. */
function typedText(raw: string | undefined): Content {
  const text = raw?.trim() ?? "";
  if (text === "") return { kind: "unsupported", text: "" };
  return { kind: text.toLowerCase() === "/reset" ? "reset" : "text", text };
}

/** A delivery report for one of our messages: its wamid, status, and the first error's code on failure. */
function readStatus(status: Reader): DeliveryStatus {
  const report: DeliveryStatus = {
    channelMessageId: storableText(status.string("id")),
    status: storableText(status.string("status")),
  };
  const [first] = status.array("errors");
  if (first !== undefined && isRecord(first[0])) {
    const code = first[0].code;
    if (typeof code === "number" || (typeof code === "string" && code !== "")) {
      report.errorCode = storableText(String(code));
    }
  }
  return report;
}
