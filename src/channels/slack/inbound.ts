import { badRequest } from "../../errors.js";
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
 * Subtypes that are still a person writing: an upload with its comment, a thread reply also shown in the
 * channel. Every other subtype (edits, deletions, joins, bot_message...) is ignored.
 */
const USER_SUBTYPES = new Set(["file_share", "thread_broadcast"]);

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
 * Turns one event into a message for the relay, or says why it does not count (DESIGN 3.2): DMs, mentions
 * of the bot, and replies in threads the bot already answers (stored only if the thread is known).
 * Unexpected shapes are ignored rather than rejected: Slack disables subscriptions that fail too often.
 */
export function parseSlackEvent(envelope: SlackEventEnvelope, bot: SlackIdentity): ParseResult {
  const { event } = envelope;
  if (event.type !== "message" && event.type !== "app_mention") return ignored(`event ${event.type}`);
  if (event.subtype && !USER_SUBTYPES.has(event.subtype)) return ignored(`subtype ${event.subtype}`);
  if (event.hidden) return ignored("hidden message");
  if (event.user === bot.userId || (event.botId && event.botId === bot.botId)) return ignored("own message");
  if (event.botId) return ignored("bot message");
  // Slack Connect: the event's `team` is the author's workspace; the envelope's is the installation's.
  const team = envelope.teamId ?? event.team;
  const { user, channel, ts } = event;
  if (!user || !channel || !ts || !team) return ignored("no user, channel, ts or team");

  const place = locate(event, { team, channel, ts }, bot);
  if (!place) return ignored("channel message without a mention outside a thread");

  const text = slackToPlainText(stripMention(event.text, bot.userId));
  if (!text && !event.hasFiles) return ignored("empty message");
  const message: InboundMessage = {
    ...place,
    dedupeKey: `${team}:${channel}:${ts}`,
    kind: kindOf(text),
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
  if (event.type === "app_mention" || mentions(event.text, bot.userId)) {
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

function mentionPattern(userId: string, flags: string): RegExp {
  return new RegExp(`\\s*<@${escapeRegExp(userId)}(?:\\|[^>]*)?>\\s*`, flags);
}

function mentions(text: string, userId: string): boolean {
  // Most messages mention no one: skip building the pattern for them.
  return text.includes(`<@${userId}`) && mentionPattern(userId, "").test(text);
}

/** Removes `<@BOT>` (and `<@BOT|name>`) with the whitespace around it, keeping the words apart. */
export function stripMention(text: string, userId: string): string {
  if (!text.includes(`<@${userId}`)) return text.trim();
  return text.replace(mentionPattern(userId, "g"), " ").trim();
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
  };
}

function ignored(reason: string): ParseResult {
  return { type: "ignored", reason };
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
