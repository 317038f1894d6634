import type { Message, Update } from "grammy/types";
import { describe, expect, it } from "vitest";
import { needsBotIdentity, parseUpdate, updateProblem } from "../../src/channels/telegram/inbound.js";
import type { InboundMessage, ParseResult } from "../../src/channels/types.js";
import {
  ALICE,
  album,
  automaticForward,
  BOB,
  BOT,
  botMessage,
  CHANNEL,
  callbackQueryUpdate,
  channelPostUpdate,
  deeplyNestedReplyBody,
  editedMessageUpdate,
  FORUM,
  GROUP,
  GROUP_ANONYMOUS_BOT,
  messageUpdate,
  myChatMemberUpdate,
  newMembersMessage,
  OTHER_BOT,
  onBehalfOf,
  photoMessage,
  privateChat,
  reactionUpdate,
  SUPERGROUP,
  stickerMessage,
  TELEGRAM_SERVICE,
  textMessage,
  textWithEntities,
  topicRoot,
  voiceMessage,
} from "./updates.js";

const identity = { id: BOT.id, username: BOT.username };
const parse = (update: Update) => parseUpdate(update, needsBotIdentity(update) ? identity : undefined);
const parseMessage = (message: Message) => parse(messageUpdate(message));

function accepted(result: ParseResult): InboundMessage {
  if (result.type !== "message") throw new Error(`expected a message, got ignored: ${result.reason}`);
  return result.message;
}

const dm = { chat: privateChat(ALICE) };
const inGroup = { chat: GROUP, from: BOB };
const inSupergroup = { chat: SUPERGROUP };

describe("private chats: every user message counts", () => {
  it("a text message becomes a text message keyed by the chat", () => {
    const message = textMessage("What are your opening hours?", dm);
    expect(accepted(parseMessage(message))).toEqual({
      kind: "text",
      text: "What are your opening hours?",
      threadKey: String(ALICE.id),
      dedupeKey: `${ALICE.id}:${message.message_id}`,
      sender: { id: String(ALICE.id), name: "Alice Liddell" },
      route: { chat_id: ALICE.id },
    });
  });

  it.each([
    ["/start", "start", ""],
    ["/start promo-2024_spring", "start", "promo-2024_spring"],
    ["/start@acme_support_bot", "start", ""],
    ["/start@acme_support_bot  hello there ", "start", "hello there"],
    ["/reset", "reset", ""],
    ["/reset@acme_support_bot", "reset", ""],
    ["/help", "text", "/help"],
    ["I typed /start in the middle", "text", "I typed /start in the middle"],
  ] as const)("%j → %s %j", (text, kind, expected) => {
    const message = accepted(parseMessage(textMessage(text, dm)));
    expect([message.kind, message.text]).toEqual([kind, expected]);
  });

  it.each([
    ["a photo without caption", photoMessage(dm), "unsupported", ""],
    ["a sticker", stickerMessage(dm), "unsupported", ""],
    ["a voice message", voiceMessage(dm), "unsupported", ""],
    [
      "a photo with a caption",
      photoMessage({ ...dm, caption: "Is this the right part?" }),
      "text",
      "Is this the right part?",
    ],
  ] as const)("%s → %s", (_name, message, kind, text) => {
    const result = accepted(parseMessage(message));
    expect([result.kind, result.text]).toEqual([kind, text]);
  });

  it("a user without a last name or with only a username still gets a name", () => {
    expect(accepted(parseMessage(textMessage("hi", { chat: privateChat(BOB), from: BOB }))).sender).toEqual({
      id: String(BOB.id),
      name: "Bob",
    });
  });

  it("a redelivered update yields the same dedupe key, a new message a new one", () => {
    const message = textMessage("hello", dm);
    const first = accepted(parse(messageUpdate(message, 900_000_001)));
    const again = accepted(parse(messageUpdate(message, 900_000_001)));
    const next = accepted(parseMessage(textMessage("hello", dm)));
    expect(again.dedupeKey).toBe(first.dedupeKey);
    expect(next.dedupeKey).not.toBe(first.dedupeKey);
  });
});

describe("groups: only messages addressed to the bot", () => {
  it.each([
    ["a mention", textMessage("@acme_support_bot what are your hours?", inGroup), "what are your hours?"],
    [
      "a mention in other case, mid-text",
      textMessage("Hey @Acme_Support_Bot, hours?", inGroup),
      "Hey @Acme_Support_Bot, hours?",
    ],
    [
      "a text mention of the bot",
      textWithEntities(
        "Support, any news?",
        [{ type: "text_mention", offset: 0, length: 7, user: BOT }],
        inGroup,
      ),
      "Support, any news?",
    ],
    // The user calls the bot: empty text, which the relay answers with the tenant's greeting (as on Slack).
    ["a message that is only the mention", textMessage("@acme_support_bot", inGroup), ""],
    ["a message that is only the mention and punctuation", textMessage("@acme_support_bot!", inGroup), ""],
    [
      "a reply to the bot",
      textMessage("and on Sundays?", { ...inGroup, replyTo: botMessage("9 to 5", GROUP) }),
      "and on Sundays?",
    ],
    [
      "a captioned photo mentioning the bot",
      photoMessage({ ...inGroup, caption: "@acme_support_bot is this broken?" }),
      "is this broken?",
    ],
    [
      "an unknown command for the bot",
      textMessage("/help@acme_support_bot", inGroup),
      "/help@acme_support_bot",
    ],
  ])("%s is answered", (_name, message, text) => {
    const result = accepted(parseMessage(message));
    expect(result).toMatchObject({ kind: "text", text, threadKey: String(GROUP.id) });
    expect(result.route).toEqual({ chat_id: GROUP.id, reply_to_message_id: message.message_id });
  });

  it.each([
    ["/reset", "reset", ""],
    ["/reset@acme_support_bot", "reset", ""],
    ["/start@acme_support_bot ref-7", "start", "ref-7"],
    ["/start", "start", ""],
  ] as const)("the command %j counts", (text, kind, payload) => {
    expect(accepted(parseMessage(textMessage(text, inGroup)))).toMatchObject({ kind, text: payload });
  });

  it.each([
    ["plain chatter", textMessage("lunch anyone?", inGroup)],
    ["a mention of someone else", textMessage("@alice did you call them?", inGroup)],
    [
      "a reply to another user",
      textMessage("agreed", { ...inGroup, replyTo: textMessage("ship it", { chat: GROUP }) }),
    ],
    ["a command for another bot", textMessage("/reset@weather_bot", inGroup)],
    [
      "a command for another bot that mentions us",
      textMessage("/start@weather_bot @acme_support_bot", inGroup),
    ],
    ["an unknown bare command", textMessage("/help", inGroup)],
    ["a photo without caption", photoMessage(inGroup)],
    [
      "a message from another bot mentioning us",
      textMessage("@acme_support_bot ping", { chat: GROUP, from: OTHER_BOT }),
    ],
    [
      "GroupAnonymousBot without a sender_chat (not a shape Telegram sends: a bot like any other)",
      textMessage("@acme_support_bot hi", { chat: SUPERGROUP, from: GROUP_ANONYMOUS_BOT }),
    ],
    ["new members joining", newMembersMessage(GROUP, [BOB])],
  ])("%s is ignored", (_name, message) => {
    expect(parseMessage(message).type).toBe("ignored");
  });

  it("media replying to the bot gets the unsupported answer", () => {
    const message = stickerMessage({ ...inSupergroup, replyTo: botMessage("Anything else?", SUPERGROUP) });
    expect(accepted(parseMessage(message))).toMatchObject({ kind: "unsupported", text: "" });
  });

  it("a reply thread in a non-forum supergroup stays in the chat's thread", () => {
    const question = botMessage("Which order?", SUPERGROUP);
    const message = {
      ...textMessage("#4411", { ...inSupergroup, replyTo: question }),
      message_thread_id: question.message_id,
    };
    const result = accepted(parseMessage(message));
    expect(result.threadKey).toBe(String(SUPERGROUP.id));
    expect(result.route).toEqual({ chat_id: SUPERGROUP.id, reply_to_message_id: message.message_id });
  });

  it("needs the bot identity, private chats don't", () => {
    const update = messageUpdate(textMessage("@acme_support_bot hi", inGroup));
    expect(needsBotIdentity(update)).toBe(true);
    expect(needsBotIdentity(messageUpdate(textMessage("hi", dm)))).toBe(false);
    expect(needsBotIdentity(editedMessageUpdate(textMessage("hi", inGroup)))).toBe(false);
    expect(() => parseUpdate(update)).toThrow(TypeError);
  });
});

describe("forum topics", () => {
  const topic = topicRoot(FORUM, "Billing");
  const inTopic = { chat: FORUM, topic };

  it("a mention in a topic is keyed and routed by the topic", () => {
    const message = textMessage("@acme_support_bot where is my invoice?", inTopic);
    expect(accepted(parseMessage(message))).toMatchObject({
      kind: "text",
      text: "where is my invoice?",
      threadKey: `${FORUM.id}:${topic.message_id}`,
      route: {
        chat_id: FORUM.id,
        message_thread_id: topic.message_id,
        reply_to_message_id: message.message_id,
      },
    });
  });

  it("the automatic reply to the topic-creation message is not a reply to the bot", () => {
    expect(parseMessage(textMessage("where is my invoice?", inTopic)).type).toBe("ignored");
    const botsTopic = topicRoot(FORUM, "Announcements", BOT);
    expect(parseMessage(textMessage("thanks!", { chat: FORUM, topic: botsTopic })).type).toBe("ignored");
  });

  it("a real reply to the bot inside a topic counts", () => {
    const answer = {
      ...botMessage("Which invoice?", FORUM),
      message_thread_id: topic.message_id,
      is_topic_message: true,
    };
    const message = textMessage("the March one", { ...inTopic, replyTo: answer });
    expect(accepted(parseMessage(message)).threadKey).toBe(`${FORUM.id}:${topic.message_id}`);
  });

  it("the General topic has no thread id and is keyed by the chat", () => {
    const result = accepted(parseMessage(textMessage("@acme_support_bot hi", { chat: FORUM })));
    expect(result.threadKey).toBe(String(FORUM.id));
    expect(result.route).not.toHaveProperty("message_thread_id");
  });
});

/** Issue 24: system senders are not people, and people writing on behalf of a chat are. */
describe("who is a person", () => {
  const LINKED_CHANNEL = CHANNEL;

  it("an automatic forward of the linked channel's post into the group is a channel post: ignored", () => {
    const forward = automaticForward(
      "New release! Ask @acme_support_bot about it",
      SUPERGROUP,
      LINKED_CHANNEL,
    );
    expect(parseMessage(forward)).toEqual({ type: "ignored", reason: "automatic forward of a channel post" });
  });

  it("the service user 777000 is not a person, even without is_automatic_forward", () => {
    const notice = textMessage("Login code: 12345", { chat: privateChat(ALICE), from: TELEGRAM_SERVICE });
    expect(parseMessage(notice)).toEqual({ type: "ignored", reason: "Telegram service message" });
  });

  it("an anonymous admin is a person: answered, the group as the sender, named by the signature", () => {
    const signed = accepted(
      parseMessage(onBehalfOf("@acme_support_bot what are the rules?", SUPERGROUP, SUPERGROUP, "Moderator")),
    );
    expect(signed).toMatchObject({
      kind: "text",
      text: "what are the rules?",
      sender: { id: String(SUPERGROUP.id), name: "Moderator" },
      threadKey: String(SUPERGROUP.id),
    });
    const unsigned = accepted(parseMessage(onBehalfOf("@acme_support_bot hi", SUPERGROUP, SUPERGROUP)));
    expect(unsigned.sender).toEqual({ id: String(SUPERGROUP.id), name: SUPERGROUP.title });
  });

  it("a user posting in a group as their channel is a person, and still has to address the bot", () => {
    const addressed = onBehalfOf("@acme_support_bot do you ship abroad?", SUPERGROUP, LINKED_CHANNEL);
    expect(accepted(parseMessage(addressed))).toMatchObject({
      text: "do you ship abroad?",
      sender: { id: String(LINKED_CHANNEL.id), name: LINKED_CHANNEL.title },
    });
    const chatter = onBehalfOf("good morning everyone", SUPERGROUP, LINKED_CHANNEL);
    expect(parseMessage(chatter)).toEqual({
      type: "ignored",
      reason: "group message not addressed to the bot",
    });
  });

  it("other bots are never answered, in a private chat either", () => {
    const bot = textMessage("ping", { chat: privateChat(ALICE), from: OTHER_BOT });
    expect(parseMessage(bot)).toEqual({ type: "ignored", reason: "message from a bot" });
  });
});

describe("albums", () => {
  const keys = (messages: Message[]) => messages.map((m) => accepted(parseMessage(m)));

  it("the caption-less items of an album share one dedupe key: one unsupported answer per album", () => {
    const parsed = keys(album(dm, [undefined, undefined, undefined]));
    expect(parsed.map((m) => m.kind)).toEqual(["unsupported", "unsupported", "unsupported"]);
    expect(new Set(parsed.map((m) => m.dedupeKey)).size).toBe(1);
    const other = keys(album(dm, [undefined]))[0]!;
    expect(other.dedupeKey).not.toBe(parsed[0]!.dedupeKey);
  });

  it("an item with a caption is answered by its caption, under a key of its own", () => {
    const [captioned, bare] = keys(album(dm, ["Which one fits my desk?", undefined]));
    expect(captioned).toMatchObject({ kind: "text", text: "Which one fits my desk?" });
    expect(bare).toMatchObject({ kind: "unsupported" });
    expect(captioned!.dedupeKey).not.toBe(bare!.dedupeKey);
  });

  it("a single photo keeps its own message key", () => {
    const photo = photoMessage(dm);
    expect(accepted(parseMessage(photo)).dedupeKey).toBe(`${ALICE.id}:${photo.message_id}`);
  });
});

/** Issue 24: cost stays linear in what a user controls (these sizes were catastrophic before). */
describe("hostile shapes", () => {
  it("a reply_to_message chain 12,000 deep is a valid update and parsed as the outer message", () => {
    const update = JSON.parse(deeplyNestedReplyBody(ALICE, "deep question", 12_000));
    expect(updateProblem(update)).toBeUndefined();
    expect(accepted(parse(update))).toMatchObject({ kind: "text", text: "deep question" });
  });

  it("a malformed level deep in the chain is still a 400 problem, with a bounded path", () => {
    const body = deeplyNestedReplyBody(ALICE, "x", 5_000).replace('"text":"first"', '"text":42');
    const problem = updateProblem(JSON.parse(body));
    expect(problem).toMatch(/reply_to_message.*\.text is not a string$/);
    expect(problem!.length).toBeLessThan(300);
  });

  it("40,000 mention entities spanning a 400,000-character text are parsed (20,000 took 32 s: entities × length)", () => {
    const text = `@acme_support_bot ${"a".repeat(400_000)}`;
    const spanning = Array.from({ length: 40_000 }, () => ({
      type: "mention" as const,
      offset: 0,
      length: text.length,
    }));
    const entities = [{ type: "mention" as const, offset: 0, length: 17 }, ...spanning];
    const result = accepted(parseMessage(textWithEntities(text, entities, inGroup)));
    expect(result).toMatchObject({ kind: "text", text: text.slice(18) });
  });
});

describe("updates that are acknowledged and ignored", () => {
  const sent = textMessage("hello", dm);
  it.each([
    ["an edited message", editedMessageUpdate(sent), "edited_message update"],
    ["a channel post", channelPostUpdate("New release!"), "channel_post update"],
    [
      "a callback query",
      callbackQueryUpdate(ALICE, botMessage("Pick one", privateChat(ALICE)), "opt-1"),
      "callback_query update",
    ],
    ["a membership change", myChatMemberUpdate(GROUP, BOB), "my_chat_member update"],
    ["a reaction", reactionUpdate(privateChat(ALICE), ALICE, sent.message_id), "message_reaction update"],
    ["an update with no content", { update_id: 5 }, "empty update"],
    ["a message in a channel chat", messageUpdate(textMessage("hi", { chat: CHANNEL })), "channel chat"],
  ])("%s", (_name, update, reason) => {
    expect(parse(update)).toEqual({ type: "ignored", reason });
  });
});

describe("updateProblem", () => {
  const valid = messageUpdate(textMessage("hi", dm));
  it.each([
    ["a valid message update", valid, undefined],
    ["an unknown update type", { update_id: 1, business_message_v2: { whatever: true } }, undefined],
    ["an array", [valid], "body is not a JSON object"],
    ["null", null, "body is not a JSON object"],
    ["no update_id", { message: valid.message }, "update_id is missing or not an integer"],
    ["a string update_id", { ...valid, update_id: "1" }, "update_id is missing or not an integer"],
    [
      "a message without chat",
      { update_id: 1, message: { message_id: 1, date: 1, text: "x" } },
      "message.chat must have an integer id and a type",
    ],
    [
      "a numeric text",
      { update_id: 1, message: { ...valid.message, text: 42 } },
      "message.text is not a string",
    ],
    [
      "entities that are not a list",
      { update_id: 1, message: { ...valid.message, entities: {} } },
      "message has malformed entities",
    ],
    [
      "a sender without id",
      { update_id: 1, message: { ...valid.message, from: { first_name: "x" } } },
      "message.from must have an integer id",
    ],
    [
      "a malformed reply_to_message",
      { update_id: 1, message: { ...valid.message, reply_to_message: { message_id: 2 } } },
      "message.reply_to_message.chat must have an integer id and a type",
    ],
  ])("%s", (_name, value, problem) => {
    expect(updateProblem(value)).toBe(problem);
  });
});
