import { describe, expect, it } from "vitest";
import type { InboundMessage } from "../../src/channels/types.js";
import { type ParsedWebhook, parseWebhook } from "../../src/channels/whatsapp_cloud/inbound.js";
import { HttpError } from "../../src/errors.js";
import {
  BUSINESS,
  type CloudUser,
  cloudContact,
  cloudEntry,
  cloudMessage,
  cloudStatus,
  cloudWebhook,
  inboundImage,
  inboundMessage,
  inboundText,
  messagesValue,
  metaJson,
  statusUpdate,
  USER,
} from "../fakes/whatsapp-cloud.js";

const CONFIG = { phone_number_id: BUSINESS.phoneNumberId };
const THREAD = `${BUSINESS.phoneNumberId}|${USER.userId}`;

/** Parses a payload as it arrives: serialised the way Meta writes JSON. */
const parse = (payload: unknown): ParsedWebhook => parseWebhook(Buffer.from(metaJson(payload)), CONFIG);

function only(payload: unknown): InboundMessage {
  const { messages, ignored } = parse(payload);
  if (messages.length !== 1) throw new Error(`expected one message, got ${messages.length} (${ignored})`);
  return messages[0]!;
}

const content = (payload: unknown) => {
  const { kind, text } = only(payload);
  return { kind, text };
};

function badRequest(body: string | Buffer): string {
  try {
    parseWebhook(typeof body === "string" ? Buffer.from(body) : body, CONFIG);
  } catch (error) {
    if (error instanceof HttpError && error.status === 400) return error.message;
    throw error;
  }
  throw new Error("expected a 400");
}

const message = (type: string, body: Record<string, unknown> | undefined, extra?: Record<string, unknown>) =>
  inboundMessage(cloudMessage(type, body, extra ? { extra } : {}));

describe("parseWebhook: a text message", () => {
  it("becomes a message of the user's thread with our number, keyed by its wamid", () => {
    const payload = inboundText("Does it come in another color?", {
      id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQz",
    });
    expect(only(payload)).toEqual({
      threadKey: THREAD,
      dedupeKey: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQz",
      kind: "text",
      text: "Does it come in another color?",
      sender: { id: USER.userId, name: "Sheena Nelson" },
      route: {
        phone_number_id: BUSINESS.phoneNumberId,
        to: USER.waId,
        recipient: USER.userId,
        message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQz",
      },
    });
  });

  it("decodes Meta's escapes back to the text the user typed", () => {
    expect(content(inboundText("Café? 😀 https://example.com/a"))).toEqual({
      kind: "text",
      text: "Café? 😀 https://example.com/a",
    });
  });

  it.each([
    ["  hi there \n", { kind: "text", text: "hi there" }],
    ["/reset", { kind: "reset", text: "/reset" }],
    [" /RESET ", { kind: "reset", text: "/RESET" }],
    ["/reset please", { kind: "text", text: "/reset please" }],
    ["   ", { kind: "unsupported", text: "" }],
  ])("reads %j as %j", (body, expected) => {
    expect(content(inboundText(body))).toEqual(expected);
  });

  it("reads replies and forwards as what they say", () => {
    const reply = cloudMessage(
      "text",
      { body: "yes" },
      { extra: { context: { from: BUSINESS.displayPhoneNumber, id: "wamid.ours" } } },
    );
    const forwarded = cloudMessage("text", { body: "look" }, { extra: { context: { forwarded: true } } });
    expect(content(inboundMessage(reply))).toEqual({ kind: "text", text: "yes" });
    expect(content(inboundMessage(forwarded))).toEqual({ kind: "text", text: "look" });
  });
});

describe("parseWebhook: who wrote", () => {
  const hidden: CloudUser = { userId: "BR.1502576394655843", name: "Bruna" };
  const legacy: CloudUser = { waId: "31612345678", name: "Anne de Vries" };

  it("a user who hides their number (username) is answered by business-scoped user id", () => {
    const m = only(inboundText("hello", { user: hidden }));
    expect(m.threadKey).toBe(`${BUSINESS.phoneNumberId}|BR.1502576394655843`);
    expect(m.sender).toEqual({ id: "BR.1502576394655843", name: "Bruna" });
    expect(m.route).toEqual({
      phone_number_id: BUSINESS.phoneNumberId,
      recipient: "BR.1502576394655843",
      message_id: m.dedupeKey,
    });
  });

  it("keeps the thread when the same user's number stops or starts showing", () => {
    const withNumber = only(inboundText("one", { user: USER }));
    const withoutNumber = only(inboundText("two", { user: { userId: USER.userId } }));
    expect(withoutNumber.threadKey).toBe(withNumber.threadKey);
  });

  it("a payload without business-scoped ids (before April 2026) is keyed by phone number", () => {
    const m = only(inboundText("hello", { user: legacy }));
    expect(m.threadKey).toBe(`${BUSINESS.phoneNumberId}|31612345678`);
    expect(m.sender).toEqual({ id: "31612345678", name: "Anne de Vries" });
    expect(m.route).toEqual({
      phone_number_id: BUSINESS.phoneNumberId,
      to: "31612345678",
      message_id: m.dedupeKey,
    });
  });

  it("takes each sender's name from the contact with their id, and none when no contact matches", () => {
    const alice: CloudUser = { waId: "4915112345678", userId: "DE.1", name: "Alice" };
    const bob: CloudUser = { waId: "447700900123", name: "Bob" };
    const stranger: CloudUser = { waId: "33612345678" };
    const payload = cloudWebhook(
      cloudEntry(
        messagesValue({
          contacts: [
            cloudContact(bob),
            cloudContact({ waId: alice.waId, name: "Alice" }),
            cloudContact(stranger),
          ],
          messages: [
            cloudMessage("text", { body: "a" }, { user: alice }),
            cloudMessage("text", { body: "b" }, { user: bob }),
            cloudMessage("text", { body: "c" }, { user: stranger }),
          ],
        }),
      ),
    );
    expect(parse(payload).messages.map((m) => m.sender)).toEqual([
      { id: "DE.1", name: "Alice" },
      { id: "447700900123", name: "Bob" },
      { id: "33612345678" },
    ]);
  });

  it("two business numbers of one tenant are two threads with the same user", () => {
    const other = "106540352242999";
    const payload = inboundText("hi");
    const ours = only(payload);
    const theirs = parseWebhook(
      Buffer.from(
        metaJson(
          cloudWebhook(
            cloudEntry(
              messagesValue({ phoneNumberId: other, messages: [cloudMessage("text", { body: "hi" })] }),
            ),
          ),
        ),
      ),
      { phone_number_id: other },
    ).messages[0]!;
    expect(theirs.threadKey).not.toBe(ours.threadKey);
    expect(theirs.route.phone_number_id).toBe(other);
  });
});

describe("parseWebhook: what each message type becomes", () => {
  const media = (type: string, extra: Record<string, unknown> = {}) =>
    message(type, { mime_type: "application/octet-stream", sha256: "4654+8g=", id: "65463453", ...extra });

  it.each<[string, unknown, { kind: string; text: string }]>([
    [
      "image with a caption",
      inboundImage("What is this plant?"),
      { kind: "text", text: "What is this plant?" },
    ],
    ["image without a caption", inboundImage(undefined), { kind: "unsupported", text: "" }],
    ["image whose caption is /reset", inboundImage("/reset"), { kind: "reset", text: "/reset" }],
    [
      "video with a caption",
      media("video", { caption: "what happened here?" }),
      { kind: "text", text: "what happened here?" },
    ],
    [
      "document with a caption",
      media("document", { caption: "please check", filename: "a.pdf" }),
      { kind: "text", text: "please check" },
    ],
    [
      "document without a caption",
      media("document", { filename: "a.pdf" }),
      { kind: "unsupported", text: "" },
    ],
    ["audio", media("audio", { voice: false }), { kind: "unsupported", text: "" }],
    ["voice note", media("audio", { voice: true }), { kind: "unsupported", text: "" }],
    ["sticker", media("sticker", { animated: false }), { kind: "unsupported", text: "" }],
    [
      "shared contacts",
      inboundMessage({
        ...cloudMessage("contacts", undefined),
        contacts: [{ name: { formatted_name: "Chandler Bing" } }],
      }),
      { kind: "unsupported", text: "" },
    ],
    [
      "a chosen place",
      message("location", {
        latitude: 37.4611978,
        longitude: -122.2164385,
        name: "Facebook HQ",
        address: "1 Hacker Way, Menlo Park, CA 94025",
      }),
      {
        kind: "text",
        text: "Shared location: Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025 (37.4611978, -122.2164385)",
      },
    ],
    [
      "a bare location pin",
      message("location", { latitude: 12.25089, longitude: 43.90539 }),
      { kind: "text", text: "Shared location: (12.25089, 43.90539)" },
    ],
    [
      "a reply button",
      message("interactive", {
        type: "button_reply",
        button_reply: { id: "callback_data", title: "Talk to sales" },
      }),
      { kind: "text", text: "Talk to sales" },
    ],
    [
      "a list choice",
      message("interactive", {
        type: "list_reply",
        list_reply: { id: "row-2", title: "Opening hours", description: "When are you open?" },
      }),
      { kind: "text", text: "Opening hours" },
    ],
    [
      "a flow answer",
      message("interactive", {
        type: "nfm_reply",
        nfm_reply: { name: "flow", body: "Sent", response_json: "{}" },
      }),
      { kind: "unsupported", text: "" },
    ],
    [
      "a template quick-reply button",
      message("button", { payload: "yes-payload", text: "Yes, please" }),
      { kind: "text", text: "Yes, please" },
    ],
    [
      "an order with a note",
      message("order", { catalog_id: "1", text: "gift wrap it", product_items: [] }),
      { kind: "text", text: "gift wrap it" },
    ],
    [
      "an order without a note",
      message("order", { catalog_id: "1", text: "", product_items: [] }),
      { kind: "unsupported", text: "" },
    ],
    [
      "the chat opened for the first time",
      inboundMessage(cloudMessage("request_welcome", undefined)),
      { kind: "start", text: "" },
    ],
    [
      "a type WhatsApp cannot pass on (poll, view-once...)",
      inboundMessage({
        ...cloudMessage("unsupported", { type: "poll" }),
        errors: [{ code: 131051, title: "Message type unknown", message: "Message type unknown" }],
      }),
      { kind: "unsupported", text: "" },
    ],
    [
      "a type added after this adapter",
      inboundMessage(cloudMessage("hologram", { id: "1" })),
      { kind: "unsupported", text: "" },
    ],
  ])("%s", (_, payload, expected) => {
    expect(content(payload)).toEqual(expected);
  });

  it.each<[string, unknown, RegExp]>([
    ["a reaction", message("reaction", { message_id: "wamid.ours", emoji: "👍" }), /reaction/],
    ["a removed reaction", message("reaction", { message_id: "wamid.ours" }), /reaction/],
    [
      "a system notice (number changed)",
      cloudWebhook(
        cloudEntry(
          messagesValue({
            messages: [
              cloudMessage("system", {
                body: "User A changed from 1 to 2",
                wa_id: "2",
                type: "user_changed_number",
              }),
            ],
          }),
        ),
      ),
      /system notice \(user_changed_number\)/,
    ],
    [
      "an edit",
      message("edit", { original_message_id: "wamid.x", message: { type: "text", text: { body: "b" } } }),
      /edit/,
    ],
    ["a deletion", message("revoke", { original_message_id: "wamid.x" }), /revoke/],
    [
      "a call permission answer",
      message("interactive", {
        type: "call_permission_reply",
        call_permission_reply: { response: "accept" },
      }),
      /call permission/,
    ],
    [
      "a message in a group",
      inboundMessage(cloudMessage("text", { body: "hi all" }, { extra: { group_id: "120363" } })),
      /group message/,
    ],
  ])("skips %s with a reason", (_, payload, reason) => {
    const { messages, ignored } = parse(payload);
    expect(messages).toEqual([]);
    expect(ignored).toHaveLength(1);
    expect(ignored[0]).toMatch(reason);
  });
});

describe("parseWebhook: batches", () => {
  it("returns every message of every change of every entry, in order", () => {
    const other: CloudUser = { waId: "31612345678", userId: "NL.77", name: "Anne" };
    const payload = cloudWebhook(
      cloudEntry(
        messagesValue({
          contacts: [cloudContact(USER)],
          messages: [cloudMessage("text", { body: "1" }), cloudMessage("text", { body: "2" })],
        }),
        messagesValue({
          contacts: [cloudContact(other)],
          messages: [cloudMessage("text", { body: "3" }, { user: other })],
        }),
      ),
      cloudEntry(messagesValue({ messages: [cloudMessage("text", { body: "4" })] })),
    );
    const { messages } = parse(payload);
    expect(messages.map((m) => m.text)).toEqual(["1", "2", "3", "4"]);
    expect(messages.map((m) => m.sender.id)).toEqual([USER.userId, USER.userId, "NL.77", USER.userId]);
    expect(new Set(messages.map((m) => m.dedupeKey)).size).toBe(4);
  });

  it("skips a change for another business number of the same app, and keeps the tenant's", () => {
    const payload = cloudWebhook(
      cloudEntry(
        messagesValue({
          phoneNumberId: "999999999999999",
          messages: [cloudMessage("text", { body: "not ours" })],
        }),
        messagesValue({ phoneNumberId: "999999999999999", statuses: [cloudStatus("wamid.theirs", "read")] }),
        messagesValue({ messages: [cloudMessage("text", { body: "ours" })] }),
      ),
    );
    const { messages, statuses, ignored } = parse(payload);
    expect(messages.map((m) => m.text)).toEqual(["ours"]);
    expect(statuses).toEqual([]);
    expect(ignored).toEqual([
      `change for phone number id 999999999999999, not this tenant's ${BUSINESS.phoneNumberId}`,
      `change for phone number id 999999999999999, not this tenant's ${BUSINESS.phoneNumberId}`,
    ]);
  });

  it("skips changes of other fields", () => {
    const payload = cloudWebhook(
      cloudEntry(
        { field: "message_template_status_update", value: { event: "APPROVED", message_template_id: 1 } },
        { field: "account_update", value: { event: "VERIFIED_ACCOUNT" } },
        messagesValue({ messages: [cloudMessage("text", { body: "hi" })] }),
      ),
    );
    const { messages, ignored } = parse(payload);
    expect(messages.map((m) => m.text)).toEqual(["hi"]);
    expect(ignored).toEqual(["message_template_status_update change", "account_update change"]);
  });

  it("skips a webhook of another product", () => {
    expect(parse({ object: "instagram", entry: [] })).toEqual({
      messages: [],
      statuses: [],
      ignored: ["object instagram, not whatsapp_business_account"],
    });
  });

  it("reports out-of-band errors as skipped", () => {
    const payload = cloudWebhook(
      cloudEntry(
        messagesValue({ errors: [{ code: 130429, title: "Rate limit hit", message: "Rate limit hit" }] }),
      ),
    );
    expect(parse(payload)).toEqual({ messages: [], statuses: [], ignored: ["WhatsApp error 130429"] });
  });
});

describe("parseWebhook: delivery statuses", () => {
  it("reports each status of our messages by wamid", () => {
    const payload = statusUpdate(
      cloudStatus("wamid.1", "sent"),
      cloudStatus("wamid.1", "delivered"),
      cloudStatus("wamid.2", "read"),
    );
    expect(parse(payload)).toEqual({
      messages: [],
      statuses: [
        { channelMessageId: "wamid.1", status: "sent" },
        { channelMessageId: "wamid.1", status: "delivered" },
        { channelMessageId: "wamid.2", status: "read" },
      ],
      ignored: [],
    });
  });

  it("reports a failure with the first error's code (a reply outside the 24-hour window)", () => {
    const payload = statusUpdate(
      cloudStatus("wamid.3", "failed", { error: { code: 131047, title: "Re-engagement message" } }),
    );
    expect(parse(payload).statuses).toEqual([
      { channelMessageId: "wamid.3", status: "failed", errorCode: "131047" },
    ]);
  });

  it("reads statuses and messages of the same change", () => {
    const payload = cloudWebhook(
      cloudEntry(
        messagesValue({
          contacts: [cloudContact()],
          messages: [cloudMessage("text", { body: "thanks" })],
          statuses: [cloudStatus("wamid.4", "read")],
        }),
      ),
    );
    const { messages, statuses } = parse(payload);
    expect(messages.map((m) => m.text)).toEqual(["thanks"]);
    expect(statuses).toEqual([{ channelMessageId: "wamid.4", status: "read" }]);
  });
});

describe("parseWebhook: bodies it refuses with 400", () => {
  const valid = inboundText("hi") as { entry: [{ changes: [{ value: Record<string, unknown> }] }] };
  const withValue = (value: Record<string, unknown>) =>
    metaJson(cloudWebhook(cloudEntry({ field: "messages", value })));
  const withMessage = (m: Record<string, unknown>) => withValue(messagesValue({ messages: [m] }));
  const text = cloudMessage("text", { body: "hi" });
  const { from: _from, from_user_id: _userId, ...anonymous } = text;
  const { id: _id, ...withoutId } = text;

  it.each<[string, string | Buffer, RegExp]>([
    ["bytes that are not UTF-8", Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /not UTF-8/],
    ["not JSON", '{"object":', /not valid JSON/],
    ["a JSON array", "[]", /body is not an object/],
    ["no entry", JSON.stringify({ object: "whatsapp_business_account" }), /body\.entry is not an array/],
    ["an entry without changes", metaJson(cloudWebhook({ id: "1" })), /entry\[0\]\.changes is not an array/],
    [
      "a change without a field",
      metaJson(cloudWebhook(cloudEntry({ field: 7, value: {} } as never))),
      /field is not a string/,
    ],
    ["a change whose value is not an object", withValue([] as never), /value is not an object/],
    ["no metadata", withValue({ messages: [text] }), /metadata is not an object/],
    [
      "no phone number id",
      withValue({ metadata: { display_phone_number: "1" } }),
      /phone_number_id is missing/,
    ],
    [
      "messages that are not an array",
      withValue({ ...valid.entry[0].changes[0].value, messages: {} }),
      /messages is not an array/,
    ],
    ["a message without an id", withMessage(withoutId), /messages\[0\]\.id is missing/],
    ["a message from nobody", withMessage(anonymous), /neither from nor from_user_id/],
    [
      "a text message without text",
      withMessage({ ...text, text: undefined }),
      /messages\[0\]\.text is not an object/,
    ],
    [
      "a text whose body is a number",
      withMessage({ ...text, text: { body: 7 } }),
      /text\.body is not a string/,
    ],
    [
      "a location without coordinates",
      withMessage({ ...text, type: "location", location: { latitude: "52" } }),
      /latitude is not a number/,
    ],
    [
      "a status without a status",
      withValue(messagesValue({ statuses: [{ id: "wamid.1" }] })),
      /statuses\[0\]\.status is missing/,
    ],
  ])("%s", (_, body, reason) => {
    expect(badRequest(body)).toMatch(reason);
  });
});

describe("parseWebhook: what PostgreSQL cannot store, and bounded work", () => {
  it("drops NULs and replaces unpaired surrogates in what it returns", () => {
    const payload = inboundText("a\u0000b\ud800c", {
      user: { waId: "1", userId: "US.1", name: "x\u0000\udfffy" },
    });
    const m = only(payload);
    expect(m.text).toBe("ab\ufffdc");
    expect(m.sender.name).toBe("x\ufffdy");
  });

  it("reads a message that carries a deeply nested field without recursing into it", () => {
    const depth = 100_000;
    const deep = `${"[".repeat(depth)}${"]".repeat(depth)}`;
    const body = metaJson(inboundText("still here")).replace(
      '"type":"text"',
      `"nested":${deep},"type":"text"`,
    );
    const { messages } = parseWebhook(Buffer.from(body), CONFIG);
    expect(messages.map((m) => m.text)).toEqual(["still here"]);
  });
});
