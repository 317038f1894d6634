import { badRequest } from "../../errors.js";
import { isRecord } from "../shared.js";
import type { InboundMessage, ParseResult } from "../types.js";

/** The bot's own ids (from auth.test): its messages are ignored and its mention is stripped. */
export interface SlackIdentity {
  userId: string;
  botId?: string;
}

/** Where a reply goes: the conversation, and the thread when the message was threaded. */
export type SlackRoute = {
  channel: string;
  thread_ts?: string;
  /** A threaded DM (Slack's AI-assistant threads): the bot can show a "thinking" status there. */
  assistant?: boolean;
};

/** The fields of an Events API event the bridge reads, type-checked once at the edge. */
export interface SlackEvent {
  type: string;
  subtype?: string;
  hidden: boolean;
  user?: string;
  botId?: string;
  text: string;
  ts?: string;
  threadTs?: string;
  channel?: string;
  channelType?: string;
  team?: string;
  hasFiles: boolean;
  /** Apps' messages carry `bot_profile` (usually with `bot_id`). */
  hasBotProfile: boolean;
}

export interface SlackEventEnvelope {
  teamId?: string;
  eventId?: string;
  event: SlackEvent;
}

/** What a verified Events API request carries. */
export type SlackPayload =
  | { type: "url_verification"; challenge: string }
  | { type: "event_callback"; envelope: SlackEventEnvelope }
  /** app_rate_limited and anything newer: acknowledged and otherwise ignored. */
  | { type: "other"; payloadType: string };

/**
 * Who counts as a person (issue 24: real payloads). A message is answered only when a person wrote it:
 * - no subtype, or a subtype that is still a person writing: an upload with its comment (`file_share`), a
 *   thread reply also shown in the channel (`thread_broadcast`), a `/me` action (`me_message`);
 * - every other subtype is not: edits, deletions, joins, topics, `bot_message` (classic integrations and
 *   Workflow Builder), `assistant_app_thread`, `huddle_thread`, tombstones...;
 * - an app's message is not, even without a subtype: it carries `bot_id` or `bot_profile` (the bot's own
 *   messages included, which would otherwise loop);
 * - Slackbot (`USLACKBOT`, no `bot_id`) is not: its notices ("You have been removed from #x", reminders,
 *   email forwards) arrive in the bot's DM like a person's message, and nobody waits for an answer to them.
 */
const USER_SUBTYPES = new Set(["file_share", "thread_broadcast", "me_message"]);

/** Slack's own system user. */
const SLACKBOT = "USLACKBOT";

const RESET_COMMAND = "/reset";

/** Decodes a raw Events API body; throws 400 when it is not a Slack payload at all. */
export function decodeSlackPayload(rawBody: string): SlackPayload {
  let body: unknown;
  try {
    body = JSON.parse(rawBody);
  } catch {
    throw badRequest("body is not valid JSON");
  }
  if (!isRecord(body) || typeof body.type !== "string") throw badRequest("payload has no type");
  if (body.type === "url_verification") {
    if (typeof body.challenge !== "string") throw badRequest("url_verification without a challenge");
    return { type: "url_verification", challenge: body.challenge };
  }
  if (body.type === "event_callback") {
    if (!isRecord(body.event) || typeof body.event.type !== "string") {
      throw badRequest("event_callback without an event");
    }
    return {
      type: "event_callback",
      envelope: { teamId: str(body.team_id), eventId: str(body.event_id), event: readEvent(body.event) },
    };
  }
  return { type: "other", payloadType: body.type };
}

/**
 * Turns one event into a message for the relay, or says why it does not count: DMs, mentions
 * of the bot, and replies in threads the bot already answers (stored only if the thread is known).
 * Unexpected shapes are ignored rather than rejected: Slack disables subscriptions that fail too often.
 */
export function parseSlackEvent(envelope: SlackEventEnvelope, bot: SlackIdentity): ParseResult {
  const { event } = envelope;
  if (event.type !== "message" && event.type !== "app_mention") return ignored(`event ${event.type}`);
  if (event.subtype && !USER_SUBTYPES.has(event.subtype)) return ignored(`subtype ${event.subtype}`);
  if (event.hidden) return ignored("hidden message");
  if (event.user === bot.userId || (event.botId && event.botId === bot.botId)) return ignored("own message");
  if (event.botId || event.hasBotProfile) return ignored("bot message");
  if (event.user === SLACKBOT) return ignored("Slackbot notice");
  // Slack Connect: the event's `team` is the author's workspace; the envelope's is the installation's.
  const team = envelope.teamId ?? event.team;
  const { user, channel, ts } = event;
  if (!user || !channel || !ts || !team) return ignored("no user, channel, ts or team");

  const place = locate(event, { team, channel, ts }, bot);
  if (!place) return ignored("channel message without a mention outside a thread");

  const spans = mentionSpans(event.text, bot.userId);
  const text = slackToPlainText(stripSpans(event.text, spans));
  // Nothing but the bot's mention: the user is calling the bot, answered like a greeting (as on Telegram).
  const calledOnly = !text && !event.hasFiles && spans.length > 0;
  if (!text && !event.hasFiles && !calledOnly) return ignored("empty message");
  const message: InboundMessage = {
    ...place,
    dedupeKey: `${team}:${channel}:${ts}`,
    kind: calledOnly ? "text" : kindOf(text),
    text,
    sender: { id: user },
  };
  return { type: "message", message };
}

type Place = Pick<InboundMessage, "threadKey" | "route" | "onlyInKnownThread">;

/** The thread key and reply route of a message that counts; undefined for channel chatter. */
function locate(
  event: SlackEvent,
  { team, channel, ts }: { team: string; channel: string; ts: string },
  bot: SlackIdentity,
): Place | undefined {
  // A parent message can carry its own ts as thread_ts once it has replies: that is still the top level.
  const threadTs = event.threadTs && event.threadTs !== ts ? event.threadTs : undefined;

  if (event.type === "message" && event.channelType === "im") {
    if (!threadTs) return { threadKey: `${team}:${channel}`, route: { channel } };
    return {
      threadKey: `${team}:${channel}:${threadTs}`,
      route: { channel, thread_ts: threadTs, assistant: true } satisfies SlackRoute,
    };
  }
  // A mention (as app_mention, or as the `message` copy of it) starts or continues the thread at its root.
  if (event.type === "app_mention" || mentionSpans(event.text, bot.userId, 1).length > 0) {
    const root = threadTs ?? ts;
    return {
      threadKey: `${team}:${channel}:${root}`,
      route: { channel, thread_ts: root } satisfies SlackRoute,
    };
  }
  if (threadTs) {
    return {
      threadKey: `${team}:${channel}:${threadTs}`,
      route: { channel, thread_ts: threadTs } satisfies SlackRoute,
      onlyInKnownThread: true,
    };
  }
  return undefined;
}

/** Text-less uploads get the tenant's `unsupported` answer. */
function kindOf(text: string): InboundMessage["kind"] {
  if (!text) return "unsupported";
  return text.toLowerCase() === RESET_COMMAND ? "reset" : "text";
}

type Span = readonly [start: number, end: number];

/**
 * Where `<@BOT>` and `<@BOT|label>` occur, at most `limit` of them. A scan with indexOf rather than a regular
 * expression: `\s*<@BOT>` tried at every offset of a long run of spaces is quadratic (160,000 NBSPs took 24 s).
 * Each character is looked at a bounded number of times: the `>` that ends a `|label` is found once and
 * reused by every later mention before it.
 */
function mentionSpans(text: string, userId: string, limit = Number.POSITIVE_INFINITY): Span[] {
  const needle = `<@${userId}`;
  const spans: Span[] = [];
  let closer = -1;
  for (let at = text.indexOf(needle); at >= 0 && spans.length < limit; ) {
    const after = at + needle.length;
    let end = -1;
    if (text[after] === ">") end = after + 1;
    else if (text[after] === "|") {
      if (closer < after) closer = text.indexOf(">", after);
      if (closer < 0) break; // no ">" left: no later mention can end either
      end = closer + 1;
    }
    if (end > 0) spans.push([at, end]);
    at = text.indexOf(needle, end > 0 ? end : at + 1);
  }
  return spans;
}

const isSpace = (char: string | undefined) => char !== undefined && /\s/.test(char);

/** Each mention with the whitespace around it becomes one space (keeping the words apart); then trimmed. */
function stripSpans(text: string, spans: readonly Span[]): string {
  if (spans.length === 0) return text.trim();
  let out = "";
  let cursor = 0;
  for (const [start, end] of spans) {
    let from = start;
    while (from > cursor && isSpace(text[from - 1])) from--;
    let to = Math.max(end, cursor);
    while (isSpace(text[to])) to++;
    out += `${text.slice(cursor, from)} `;
    cursor = to;
  }
  return (out + text.slice(cursor)).trim();
}

/** Removes `<@BOT>` (and `<@BOT|name>`) with the whitespace around it, keeping the words apart. */
export function stripMention(text: string, userId: string): string {
  return stripSpans(text, mentionSpans(text, userId));
}

/**
 * Slack's wire text to what the user saw: `<target|label>` → label, `<target>` → target (links, user and
 * channel references), then the three escaped control characters.
 */
export function slackToPlainText(text: string): string {
  return text
    .replace(/<([^<>|]*)(?:\|([^<>]*))?>/g, (_, target: string, label?: string) => label || target)
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

function readEvent(raw: Record<string, unknown>): SlackEvent {
  return {
    type: String(raw.type),
    subtype: str(raw.subtype),
    hidden: raw.hidden === true,
    user: str(raw.user),
    botId: str(raw.bot_id),
    text: str(raw.text) ?? "",
    ts: str(raw.ts),
    threadTs: str(raw.thread_ts),
    channel: str(raw.channel),
    channelType: str(raw.channel_type),
    team: str(raw.team),
    hasFiles: Array.isArray(raw.files) && raw.files.length > 0,
    hasBotProfile: isRecord(raw.bot_profile),
  };
}

function ignored(reason: string): ParseResult {
  return { type: "ignored", reason };
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}
