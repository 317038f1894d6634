import { badRequest } from "../../errors.js";
import { sharedLocationText } from "../shared.js";
import type { DeliveryStatus, InboundMessage, MessageKind, ParseResult } from "../types.js";
import { field, type TwilioForm } from "./form.js";

/** What `send` needs, stored with the message (reply to `From`, sent from `To`). */
export type WhatsappRoute = {
  /** The user's address, e.g. `whatsapp:+31612345678`. */
  to: string;
  /** The number the user wrote to, so a tenant with several senders answers from the right one. */
  from: string;
  /** Where Twilio posts delivery reports for the reply: the status route on the base URL Twilio called. */
  statusCallback?: string;
};

const WHATSAPP_PREFIX = "whatsapp:";

/**
 * `MessageType` values that are no user message: reactions (`reaction`) and WhatsApp's own notices about a
 * user (`system`: number changed, and the like). Every other type is a message: text, button and interactive
 * replies are read, location as text, media and unknown types get the `unsupported` answer unless they carry
 * text (a caption, an ad click's prefilled text).
 */
const NOT_A_MESSAGE = new Set(["reaction", "system"]);

/** What Twilio posts as `Body` and `ButtonText` when a user answers a call permission request. */
const CALL_PERMISSION_ANSWER = "VOICE_CALL_REQUEST";

/** The thread key: our number and the user's, readable in logs and the admin API. */
export function whatsappThreadKey(to: string, from: string): string {
  return `${to}|${from}`;
}

/** Turns an incoming-message webhook into an inbound message. */
export function parseIncomingMessage(form: TwilioForm, options: { statusCallback?: string }): ParseResult {
  const messageSid = required(form, "MessageSid");
  const from = required(form, "From");
  const to = required(form, "To");

  // A status callback pointed at the message URL by mistake must not become a user message.
  const status = field(form, "MessageStatus") ?? field(form, "SmsStatus");
  if (status !== undefined && status !== "received") {
    return { type: "ignored", reason: `status callback (${status}) on the message webhook` };
  }

  // A reaction (an emoji on one of our replies) or a WhatsApp system notice is not something the user asks:
  // answering it, even with the `unsupported` text, would be noise.
  const messageType = field(form, "MessageType")?.toLowerCase();
  if (messageType !== undefined && NOT_A_MESSAGE.has(messageType)) {
    return { type: "ignored", reason: `WhatsApp ${messageType}, not a user message` };
  }

  // The user's answer to a business-initiated call permission request (WhatsApp Business Calling): Body and
  // ButtonText are the action's name, ButtonPayload ACCEPTED or REJECTED. Whoever asked handles it, not the agent.
  if ((field(form, "ButtonText") ?? field(form, "Body")) === CALL_PERMISSION_ANSWER) {
    return {
      type: "ignored",
      reason: `WhatsApp call permission answer (${field(form, "ButtonPayload") ?? "?"})`,
    };
  }

  const { kind, text } = contentOf(form);
  const name = field(form, "ProfileName");
  const route: WhatsappRoute = { to: from, from: to };
  if (options.statusCallback) route.statusCallback = options.statusCallback;

  const message: InboundMessage = {
    threadKey: whatsappThreadKey(to, from),
    dedupeKey: messageSid,
    kind,
    text,
    sender: { id: field(form, "WaId") ?? stripPrefix(from), ...(name ? { name } : {}) },
    route,
  };
  return { type: "message", message };
}

/** Button replies, text (with or without media), locations; media or anything else without text is unsupported. */
function contentOf(form: TwilioForm): { kind: MessageKind; text: string } {
  const buttonText = field(form, "ButtonText");
  if (buttonText) return { kind: "text", text: buttonText };

  const body = field(form, "Body")?.trim();
  if (body) return { kind: body.toLowerCase() === "/reset" ? "reset" : "text", text: body };

  const location = locationText(form);
  if (location) return { kind: "text", text: location };

  return { kind: "unsupported", text: "" };
}

function locationText(form: TwilioForm): string | undefined {
  const latitude = field(form, "Latitude");
  const longitude = field(form, "Longitude");
  if (latitude === undefined || longitude === undefined) return undefined;
  return sharedLocationText({
    latitude,
    longitude,
    name: field(form, "Label"),
    address: field(form, "Address"),
  });
}

/** A status callback: one delivery report for one sent message. */
export function parseStatusCallback(form: TwilioForm): DeliveryStatus[] {
  const errorCode = field(form, "ErrorCode");
  return [
    {
      channelMessageId: required(form, "MessageSid"),
      status: required(form, "MessageStatus"),
      ...(errorCode ? { errorCode } : {}),
    },
  ];
}

function required(form: TwilioForm, name: string): string {
  const value = field(form, name);
  if (value === undefined) throw badRequest(`missing ${name}`);
  return value;
}

function stripPrefix(address: string): string {
  return address.startsWith(WHATSAPP_PREFIX) ? address.slice(WHATSAPP_PREFIX.length) : address;
}
