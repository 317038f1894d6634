import { describe, expect, it } from "vitest";
import type { InboundMessage } from "../../src/channels/types.js";
import { countParameters, parseForm } from "../../src/channels/whatsapp/form.js";
import { parseIncomingMessage, parseStatusCallback } from "../../src/channels/whatsapp/inbound.js";
import { HttpError } from "../../src/errors.js";
import {
  inboundButtonReply,
  inboundImage,
  inboundLocation,
  inboundText,
  statusCallbackParams,
  type TwilioParams,
  toFormBody,
} from "../fakes/twilio.js";

const USER = "whatsapp:+31612345678";
const OURS = "whatsapp:+14155238886";
const STATUS_URL = "https://bridge.example.com/webhooks/acme/whatsapp/status";

/** Parses params the way they arrive: encoded as a form body, then decoded. */
function parse(params: TwilioParams) {
  return parseIncomingMessage(parseForm(toFormBody(params)), { statusCallback: STATUS_URL });
}

function message(params: TwilioParams): InboundMessage {
  const result = parse(params);
  if (result.type !== "message") throw new Error(`ignored: ${result.reason}`);
  return result.message;
}

describe("parseIncomingMessage: content", () => {
  it.each<[string, TwilioParams, Pick<InboundMessage, "kind" | "text">]>([
    ["text", inboundText("Hello there"), { kind: "text", text: "Hello there" }],
    ["text with surrounding whitespace", inboundText("  hi \n"), { kind: "text", text: "hi" }],
    [
      "image with a caption",
      inboundImage("What is this plant?"),
      { kind: "text", text: "What is this plant?" },
    ],
    ["image without a caption", inboundImage(undefined), { kind: "unsupported", text: "" }],
    [
      "location with label and address",
      inboundLocation({
        latitude: "52.3752",
        longitude: "4.884",
        label: "Anne Frank House",
        address: "Westermarkt 20, Amsterdam",
      }),
      { kind: "text", text: "Shared location: Anne Frank House, Westermarkt 20, Amsterdam (52.3752, 4.884)" },
    ],
    [
      "bare location pin",
      inboundLocation({ latitude: "-33.8568", longitude: "151.2153" }),
      { kind: "text", text: "Shared location: (-33.8568, 151.2153)" },
    ],
    ["button reply", inboundButtonReply("Talk to sales", "sales"), { kind: "text", text: "Talk to sales" }],
    [
      "button reply whose Body differs",
      { ...inboundButtonReply("Yes, please", "yes"), Body: "" },
      { kind: "text", text: "Yes, please" },
    ],
    ["/reset", inboundText("/reset"), { kind: "reset", text: "/reset" }],
    ["/RESET", inboundText(" /RESET "), { kind: "reset", text: "/RESET" }],
    ["/reset inside a sentence", inboundText("please /reset"), { kind: "text", text: "please /reset" }],
    ["empty body, no media", inboundText(""), { kind: "unsupported", text: "" }],
    [
      "non-ASCII and emoji",
      inboundText("Grüße aus Köln 👋 — ¿qué tal? 日本語"),
      { kind: "text", text: "Grüße aus Köln 👋 — ¿qué tal? 日本語" },
    ],
    ["plus signs and ampersands", inboundText("1+1 = 2 & 3%"), { kind: "text", text: "1+1 = 2 & 3%" }],
  ])("%s", (_name, params, expected) => {
    expect(message(params)).toMatchObject(expected);
  });
});

describe("parseIncomingMessage: thread, dedupe, sender, route", () => {
  it("keys the thread by To|From, dedupes on MessageSid and routes the reply back from our number", () => {
    const params = inboundText("hi", {
      from: USER,
      to: OURS,
      messageSid: "SM0123456789abcdef0123456789abcdef",
    });
    expect(message(params)).toEqual({
      threadKey: `${OURS}|${USER}`,
      dedupeKey: "SM0123456789abcdef0123456789abcdef",
      kind: "text",
      text: "hi",
      sender: { id: "31612345678", name: "Anne de Vries" },
      route: { to: USER, from: OURS, statusCallback: STATUS_URL },
    });
  });

  it("keeps non-ASCII profile names", () => {
    expect(message(inboundText("hi", { profileName: "Zoë Łukasiewicz 🌻" })).sender.name).toBe(
      "Zoë Łukasiewicz 🌻",
    );
  });

  it("falls back to From without the prefix when WaId is missing, and omits an empty name", () => {
    const params = { ...inboundText("hi", { from: USER }), WaId: "", ProfileName: "" };
    expect(message(params).sender).toEqual({ id: "+31612345678" });
  });

  it("separates threads of one user writing to two of our numbers", () => {
    const a = message(inboundText("hi", { to: "whatsapp:+14155238886" }));
    const b = message(inboundText("hi", { to: "whatsapp:+14155230000" }));
    expect(a.threadKey).not.toBe(b.threadKey);
    expect(b.route.from).toBe("whatsapp:+14155230000");
  });

  it("omits the status callback when none is given", () => {
    const result = parseIncomingMessage(parseForm(toFormBody(inboundText("hi"))), {});
    expect(result.type === "message" && result.message.route).toEqual({ to: USER, from: OURS });
  });
});

describe("parseIncomingMessage: ignored and malformed", () => {
  it("ignores a status callback posted to the message webhook", () => {
    const params = statusCallbackParams({
      accountSid: "AC1",
      messageSid: "SM1",
      status: "delivered",
      to: USER,
      from: OURS,
    });
    expect(parse(params)).toEqual({
      type: "ignored",
      reason: "status callback (delivered) on the message webhook",
    });
  });

  // A reaction is an emoji on one of our replies, a system notice is WhatsApp's (the user changed number):
  // neither asks anything, so neither is answered, not even with the `unsupported` text.
  it.each([
    ["a reaction", { ...inboundText(""), MessageType: "reaction" }],
    ["a reaction whose Body carries the emoji", { ...inboundText("👍"), MessageType: "reaction" }],
    ["a system notice", { ...inboundText("User changed their number"), MessageType: "system" }],
  ])("ignores %s", (_, params) => {
    expect(parse(params)).toEqual({
      type: "ignored",
      reason: `WhatsApp ${params.MessageType}, not a user message`,
    });
  });

  // Twilio's WhatsApp Business Calling docs: the answer to a call permission request arrives on the message
  // webhook as an interactive message whose Body and ButtonText are VOICE_CALL_REQUEST.
  it.each(["ACCEPTED", "REJECTED"])("ignores a call permission answer (%s)", (answer) => {
    const params = {
      ...inboundButtonReply("VOICE_CALL_REQUEST", answer),
      MessageType: "interactive",
    };
    delete (params as Partial<TwilioParams>).ButtonType;
    expect(parse(params)).toEqual({ type: "ignored", reason: `WhatsApp call permission answer (${answer})` });
  });

  it.each([
    ["an interactive (list) reply", { ...inboundText("Opening hours"), MessageType: "interactive" }, "text"],
    [
      "a contact card",
      { ...inboundImage(undefined), MessageType: "contacts", MediaContentType0: "text/vcard" },
      "unsupported",
    ],
    [
      "a sticker",
      { ...inboundImage(undefined), MessageType: "sticker", MediaContentType0: "image/webp" },
      "unsupported",
    ],
    ["a type this bridge does not know", { ...inboundText(""), MessageType: "poll" }, "unsupported"],
    [
      "an ad click (referral) with its prefilled text",
      {
        ...inboundText("Tell me more"),
        ReferralSourceType: "ad",
        ReferralHeadline: "Spring sale",
        ReferralCtwaClid: "x",
      },
      "text",
    ],
  ])("answers %s as a user message", (_, params, kind) => {
    expect(message(params).kind).toBe(kind);
  });

  it.each(["MessageSid", "From", "To"])("rejects a message without %s", (name) => {
    const params = { ...inboundText("hi"), [name]: "" };
    expect(() => parse(params)).toThrow(HttpError);
    expect(() => parse(params)).toThrow(`missing ${name}`);
  });
});

describe("parseForm", () => {
  it("decodes + as space and percent-escapes as UTF-8", () => {
    expect({ ...parseForm("Body=caf%C3%A9+au+lait&From=whatsapp%3A%2B1") }).toEqual({
      Body: "café au lait",
      From: "whatsapp:+1",
    });
  });

  it("keeps repeated names as arrays and a __proto__ name as a plain entry", () => {
    const form = parseForm("a=1&a=2&__proto__=x&flag");
    expect(form.a).toEqual(["1", "2"]);
    expect(Object.getPrototypeOf(form)).toBeNull();
    expect(Object.entries(form)).toContainEqual(["__proto__", "x"]);
    expect(form.flag).toBe("");
  });

  it("keeps every value of a name repeated 40,000 times, in order", () => {
    const body = Array.from({ length: 40_000 }, (_, i) => `a=${i}`).join("&");
    const values = parseForm(`${body}&b=last`);
    expect(values.a).toHaveLength(40_000);
    expect((values.a as string[]).slice(0, 3)).toEqual(["0", "1", "2"]);
    expect((values.a as string[])[39_999]).toBe("39999");
    expect(values.b).toBe("last");
  });

  it("counts parameters on the raw bytes as separators + 1", () => {
    expect(countParameters(Buffer.from(""))).toBe(0);
    expect(countParameters(Buffer.from("a=1"))).toBe(1);
    expect(countParameters(Buffer.from("a=1&b=%26&c"))).toBe(3);
    expect(countParameters(Buffer.from("a&".repeat(40_000)))).toBe(40_001);
  });

  it.each(["Body=%E0%A4%A", "Body=%ZZ", "Body=%C3%28"])("rejects %s with 400", (body) => {
    expect(() => parseForm(body)).toThrow(expect.objectContaining({ status: 400 }));
  });
});

describe("parseStatusCallback", () => {
  const base = { accountSid: "AC1", messageSid: "SMabc", to: USER, from: OURS };

  it("reports the status of the sent message", () => {
    expect(
      parseStatusCallback(parseForm(toFormBody(statusCallbackParams({ ...base, status: "read" })))),
    ).toEqual([{ channelMessageId: "SMabc", status: "read" }]);
  });

  it("carries the error code of a failed delivery", () => {
    const params = statusCallbackParams({ ...base, status: "undelivered", errorCode: "63016" });
    expect(parseStatusCallback(parseForm(toFormBody(params)))).toEqual([
      { channelMessageId: "SMabc", status: "undelivered", errorCode: "63016" },
    ]);
  });

  it("rejects a callback without MessageStatus", () => {
    expect(() => parseStatusCallback(parseForm("MessageSid=SMabc"))).toThrow("missing MessageStatus");
  });
});
