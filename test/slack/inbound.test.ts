import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeSlackPayload,
  parseSlackEvent,
  type SlackIdentity,
  slackToPlainText,
  stripMention,
} from "../../src/channels/slack/inbound.js";
import type { InboundMessage, ParseResult } from "../../src/channels/types.js";
import { HttpError } from "../../src/errors.js";
import { slackPayloads } from "../fakes/slack.js";

const BOT: SlackIdentity = { userId: "U0BOT", botId: "B0BOT" };
const TEAM = "T0TEAM";
const DM = "D0DM";
const CHANNEL = "C0GENERAL";
const USER = "U0ALICE";

function parse(payload: object, bot = BOT): ParseResult {
  const decoded = decodeSlackPayload(JSON.stringify(payload));
  if (decoded.type !== "event_callback") throw new Error(`not an event: ${decoded.type}`);
  return parseSlackEvent(decoded.envelope, bot);
}

function message(payload: object): InboundMessage {
  const result = parse(payload);
  if (result.type !== "message") throw new Error(`ignored: ${result.reason}`);
  return result.message;
}

describe("decodeSlackPayload", () => {
  it("reads the url_verification challenge", () => {
    expect(decodeSlackPayload(JSON.stringify(slackPayloads.urlVerification("ch4llenge")))).toEqual({
      type: "url_verification",
      challenge: "ch4llenge",
    });
  });

  it("passes other payload types through to be acknowledged", () => {
    const body = { token: "t", type: "app_rate_limited", team_id: TEAM, minute_rate_limited: 1518467820 };
    expect(decodeSlackPayload(JSON.stringify(body))).toEqual({
      type: "other",
      payloadType: "app_rate_limited",
    });
  });

  it.each([
    ["not JSON", "token=abc&team_id=T1"],
    ["a JSON array", "[]"],
    ["no type", JSON.stringify({ team_id: TEAM })],
    ["url_verification without challenge", JSON.stringify({ type: "url_verification" })],
    ["event_callback without event", JSON.stringify({ type: "event_callback", team_id: TEAM })],
    ["event without type", JSON.stringify({ type: "event_callback", event: { text: "hi" } })],
  ])("rejects %s with 400", (_, body) => {
    const error = captureError(() => decodeSlackPayload(body));
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(400);
  });
});

describe("parseSlackEvent: what counts", () => {
  it("answers a top-level DM in the DM, one conversation per DM", () => {
    expect(
      message(slackPayloads.dm({ team: TEAM, channel: DM, user: USER, text: "hello", ts: "1.000100" })),
    ).toEqual({
      threadKey: `${TEAM}:${DM}`,
      dedupeKey: `${TEAM}:${DM}:1.000100`,
      kind: "text",
      text: "hello",
      sender: { id: USER },
      route: { channel: DM },
    });
  });

  it("keys a threaded DM (assistant thread) by its thread and marks the route", () => {
    const payload = slackPayloads.assistantMessage({
      team: TEAM,
      channel: DM,
      user: USER,
      text: "what is new?",
      ts: "2.000200",
      threadTs: "2.000100",
    });
    expect(message(payload)).toMatchObject({
      threadKey: `${TEAM}:${DM}:2.000100`,
      dedupeKey: `${TEAM}:${DM}:2.000200`,
      route: { channel: DM, thread_ts: "2.000100", assistant: true },
    });
    expect(message(payload).onlyInKnownThread).toBeUndefined();
  });

  it("starts a thread at a top-level channel mention and strips the mention", () => {
    const payload = slackPayloads.appMention({
      team: TEAM,
      channel: CHANNEL,
      user: USER,
      text: "<@U0BOT> is it everything a river should be?",
      ts: "3.000100",
    });
    expect(message(payload)).toEqual({
      threadKey: `${TEAM}:${CHANNEL}:3.000100`,
      dedupeKey: `${TEAM}:${CHANNEL}:3.000100`,
      kind: "text",
      text: "is it everything a river should be?",
      sender: { id: USER },
      route: { channel: CHANNEL, thread_ts: "3.000100" },
    });
  });

  it("keys a mention inside a thread by the thread root", () => {
    const payload = slackPayloads.appMention({
      team: TEAM,
      channel: CHANNEL,
      user: USER,
      text: "what about this, <@U0BOT>",
      ts: "3.000300",
      threadTs: "3.000100",
    });
    expect(message(payload)).toMatchObject({
      threadKey: `${TEAM}:${CHANNEL}:3.000100`,
      dedupeKey: `${TEAM}:${CHANNEL}:3.000300`,
      text: "what about this,",
      route: { channel: CHANNEL, thread_ts: "3.000100" },
    });
  });

  it("stores a thread reply without a mention only if the thread is already known", () => {
    const payload = slackPayloads.channelMessage({
      team: TEAM,
      channel: CHANNEL,
      user: USER,
      text: "one more thing",
      ts: "3.000400",
      threadTs: "3.000100",
    });
    expect(message(payload)).toEqual({
      threadKey: `${TEAM}:${CHANNEL}:3.000100`,
      dedupeKey: `${TEAM}:${CHANNEL}:3.000400`,
      kind: "text",
      text: "one more thing",
      sender: { id: USER },
      route: { channel: CHANNEL, thread_ts: "3.000100" },
      onlyInKnownThread: true,
    });
  });

  it("gives the message copy of a mention the same keys as the app_mention copy", () => {
    const fields = { team: TEAM, channel: CHANNEL, user: USER, text: "<@U0BOT> hi", ts: "4.000100" };
    const asMention = message(slackPayloads.appMention(fields));
    const asMessage = message(slackPayloads.channelMessage(fields));
    expect(asMessage).toEqual(asMention);
  });

  it("takes the team from the envelope, falling back to the event's", () => {
    const payload = slackPayloads.dm({ team: "T0AUTHOR", channel: DM, user: USER, text: "hi", ts: "5.1" });
    expect(message({ ...payload, team_id: "T0INSTALL" }).dedupeKey).toBe(`T0INSTALL:${DM}:5.1`);
    const { team_id: _, ...withoutTeam } = payload;
    expect(message(withoutTeam).dedupeKey).toBe(`T0AUTHOR:${DM}:5.1`);
  });

  it("treats a parent whose thread_ts equals its own ts as top level", () => {
    const payload = slackPayloads.dm({
      team: TEAM,
      channel: DM,
      user: USER,
      text: "hi",
      ts: "6.1",
      threadTs: "6.1",
    });
    expect(message(payload)).toMatchObject({ threadKey: `${TEAM}:${DM}`, route: { channel: DM } });
  });

  it("turns /reset into a reset", () => {
    const payload = slackPayloads.appMention({
      team: TEAM,
      channel: CHANNEL,
      user: USER,
      text: "<@U0BOT> /reset",
      ts: "7.1",
    });
    expect(message(payload)).toMatchObject({ kind: "reset", text: "/reset" });
  });

  it("answers a bare mention like a greeting: empty text, in the mention's thread (as Telegram does)", () => {
    const result = message(
      slackPayloads.appMention({
        team: TEAM,
        channel: CHANNEL,
        user: USER,
        text: "  <@U0BOT|bridge>  ",
        ts: "9.11",
      }),
    );
    expect(result).toMatchObject({ kind: "text", text: "", threadKey: `${TEAM}:${CHANNEL}:9.11` });
    expect(
      message(slackPayloads.dm({ team: TEAM, channel: DM, user: USER, text: "<@U0BOT>", ts: "9.12" })),
    ).toMatchObject({
      kind: "text",
      text: "",
    });
  });

  it("answers a /me action: a person writing", () => {
    const payload = slackPayloads.dm({ team: TEAM, channel: DM, user: USER, text: "waves", ts: "9.13" });
    (payload.event as Record<string, unknown>).subtype = "me_message";
    expect(message(payload)).toMatchObject({ kind: "text", text: "waves" });
  });

  it("answers an upload without a comment with the unsupported text, and reads a commented one", () => {
    const bare = slackPayloads.fileShare({ team: TEAM, channel: DM, user: USER, text: "", ts: "8.1" });
    expect(message(bare)).toMatchObject({ kind: "unsupported", text: "" });
    const commented = slackPayloads.fileShare({
      team: TEAM,
      channel: DM,
      user: USER,
      text: "what is this?",
      ts: "8.2",
    });
    expect(message(commented)).toMatchObject({ kind: "text", text: "what is this?" });
  });
});

describe("parseSlackEvent: what is ignored", () => {
  const ignoredCases: [string, object, RegExp][] = [
    [
      "a top-level channel message without a mention",
      slackPayloads.channelMessage({ team: TEAM, channel: CHANNEL, user: USER, text: "lunch?", ts: "9.1" }),
      /without a mention/,
    ],
    [
      "the bot's own message",
      slackPayloads.dm({ team: TEAM, channel: DM, user: BOT.userId, text: "Hello!", ts: "9.2" }),
      /own message/,
    ],
    [
      "another app's message (bot_id, no subtype)",
      slackPayloads.botMessage({
        team: TEAM,
        channel: DM,
        botId: "B0OTHER",
        botUserId: "U0OTHER",
        text: "beep",
        ts: "9.3",
      }),
      /bot message/,
    ],
    [
      "our own bot_id under another user",
      slackPayloads.botMessage({
        team: TEAM,
        channel: DM,
        botId: BOT.botId!,
        botUserId: "U0WORKFLOW",
        text: "x",
        ts: "9.4",
      }),
      /own message/,
    ],
    [
      "a classic bot_message",
      slackPayloads.legacyBotMessage({
        team: TEAM,
        channel: CHANNEL,
        botId: "B0LEGACY",
        text: "<@U0BOT> hi",
        ts: "9.5",
      }),
      /subtype bot_message/,
    ],
    [
      "an edit",
      slackPayloads.messageChanged({
        team: TEAM,
        channel: DM,
        user: USER,
        text: "hello again",
        oldText: "hello",
        ts: "9.6",
        editTs: "9.7",
      }),
      /subtype message_changed/,
    ],
    [
      "a deletion",
      slackPayloads.messageDeleted({ team: TEAM, channel: CHANNEL, deletedTs: "9.6", ts: "9.8" }),
      /subtype message_deleted/,
    ],
    [
      "a join",
      slackPayloads.channelJoin({ team: TEAM, channel: CHANNEL, user: USER, ts: "9.9" }),
      /subtype channel_join/,
    ],
    [
      "assistant_thread_started",
      slackPayloads.assistantThreadStarted({ team: TEAM, channel: DM, user: USER, threadTs: "9.10" }),
      /event assistant_thread_started/,
    ],
    [
      "an empty DM",
      slackPayloads.dm({ team: TEAM, channel: DM, user: USER, text: "  ", ts: "9.11" }),
      /empty message/,
    ],
    [
      "Slackbot's notice in the bot's DM (USLACKBOT, no bot_id)",
      slackPayloads.slackbotNotice({
        team: TEAM,
        channel: DM,
        text: "You have been removed from #sales by <@U0ADMIN>",
        ts: "9.14",
      }),
      /Slackbot/,
    ],
    [
      "an app's message with bot_profile but no bot_id",
      (() => {
        const payload = slackPayloads.botMessage({
          team: TEAM,
          channel: DM,
          botId: "B0OTHER",
          botUserId: "U0OTHER",
          text: "beep",
          ts: "9.15",
        });
        delete (payload.event as { bot_id?: string }).bot_id;
        return payload;
      })(),
      /bot message/,
    ],
    [
      "a Workflow Builder post (bot_message)",
      slackPayloads.legacyBotMessage({
        team: TEAM,
        channel: DM,
        botId: "B0WORKFLOW",
        text: "Form sent",
        ts: "9.16",
      }),
      /subtype bot_message/,
    ],
    [
      "a message without a channel",
      {
        type: "event_callback",
        team_id: TEAM,
        event: { type: "message", user: USER, text: "hi", ts: "9.12" },
      },
      /no user, channel, ts or team/,
    ],
    [
      "a hidden message without a subtype",
      {
        type: "event_callback",
        team_id: TEAM,
        event: { type: "message", hidden: true, channel: DM, ts: "9.13" },
      },
      /hidden/,
    ],
    [
      "a reaction",
      {
        type: "event_callback",
        team_id: TEAM,
        event: {
          type: "reaction_added",
          user: USER,
          reaction: "tada",
          item: { type: "message", channel: DM, ts: "1" },
        },
      },
      /event reaction_added/,
    ],
  ];

  it.each(ignoredCases)("ignores %s", (_, payload, reason) => {
    const result = parse(payload);
    expect(result.type).toBe("ignored");
    expect(result.type === "ignored" && result.reason).toMatch(reason);
  });
});

/** Issue 24: the mention scan is linear (a regex with a leading \\s* was quadratic on long runs of spaces). */
describe("hostile shapes", () => {
  it("250,000 NBSPs before a mention are parsed (160,000 took 24 s before)", () => {
    const text = `${"\u00a0".repeat(250_000)}x<@U0BOT>`;
    const result = message(
      slackPayloads.channelMessage({ team: TEAM, channel: CHANNEL, user: USER, text, ts: "8.1" }),
    );
    expect(result.text).toBe("x");
  });

  it("100,000 unclosed `<@BOT|` labels are parsed", () => {
    const text = `hi ${"<@U0BOT|".repeat(100_000)}`;
    expect(stripMention(text, "U0BOT")).toBe(text.trim());
  });

  it("strips exactly what the former regular expression stripped (small inputs)", () => {
    const reference = (text: string) => text.replace(/\s*<@U0BOT(?:\|[^>]*)?>\s*/g, " ").trim();
    const token = fc.constantFrom(
      "<@U0BOT>",
      "<@U0BOT|bridge>",
      "<@U0BOT|",
      "<@U0BOTX>",
      "<@U0",
      " ",
      "\u00a0",
      "\n",
      "a",
      ">",
      "|",
      "<",
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 24 }), (tokens) => {
        const text = tokens.join("");
        expect(stripMention(text, "U0BOT")).toBe(reference(text));
      }),
      { numRuns: 2000 },
    );
  });

  it("100,000 mentions separated by spaces are stripped", () => {
    const text = `${"<@U0BOT>  ".repeat(100_000)}hi`;
    expect(stripMention(text, "U0BOT")).toBe("hi");
  });
});

describe("text clean-up", () => {
  it.each([
    ["<@U0BOT> hi", "hi"],
    ["hi <@U0BOT>", "hi"],
    ["hey <@U0BOT> there", "hey there"],
    ["<@U0BOT|bridge> hi", "hi"],
    ["<@U0BOT>\n\nline", "line"],
    ["<@U0OTHER> stays", "<@U0OTHER> stays"],
    ["<@U0BOT><@U0BOT> twice", "twice"],
    ["a<@U0BOT>b", "a b"],
    ["<@U0BOTX> another user", "<@U0BOTX> another user"],
    ["<@U0BOT|no end", "<@U0BOT|no end"],
    ["<@U0BOT|a<@U0BOT> x", "x"],
    ["\u00a0<@U0BOT>\u00a0hi\u00a0", "hi"],
  ])("stripMention(%j) = %j", (text, expected) => {
    expect(stripMention(text, "U0BOT")).toBe(expected);
  });

  it.each([
    ["a &lt;b&gt; &amp;amp; c", "a <b> &amp; c"],
    ["see <https://example.com|example.com>", "see example.com"],
    ["see <https://example.com/a?b=1&amp;c=2>", "see https://example.com/a?b=1&c=2"],
    ["ask <@U0CAROL> in <#C0RANDOM|random>", "ask @U0CAROL in random"],
    ["plain text", "plain text"],
  ])("slackToPlainText(%j) = %j", (text, expected) => {
    expect(slackToPlainText(text)).toBe(expected);
  });
});

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}
