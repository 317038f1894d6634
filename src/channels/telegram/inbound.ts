import type { Message, MessageEntity, Update, User } from "grammy/types";
import { isRecord } from "../shared.js";
import type { InboundMessage, ParseResult, Route } from "../types.js";

/** What a group message is checked against; from getMe. */
export interface BotIdentity {
  id: number;
  username: string;
}

type IncomingMessage = NonNullable<Update["message"]>;

/** Content a user sends that the bridge cannot read: answered with the tenant's `unsupported` text. */
const MEDIA_FIELDS = [
  "animation",
  "audio",
  "checklist",
  "contact",
  "dice",
  "document",
  "game",
  "live_photo",
  "location",
  "paid_media",
  "photo",
  "poll",
  "sticker",
  "story",
  "venue",
  "video",
  "video_note",
  "voice",
] as const satisfies readonly (keyof Message)[];

const isInteger = (value: unknown): value is number => Number.isSafeInteger(value);

const isEntityList = (value: unknown) =>
  value === undefined ||
  (Array.isArray(value) &&
    value.every(
      (e) => isRecord(e) && typeof e.type === "string" && isInteger(e.offset) && isInteger(e.length),
    ));

/**
 * Checks the fields the parser reads, so a malformed body is a 400 rather than a crash. A loop, not a
 * recursion, down the `reply_to_message` chain: Telegram nests one level, but a body nested 12,000 deep
 * overflowed the stack here and was answered 500.
 */
function messageProblem(first: unknown, firstName: string): string | undefined {
  let message = first;
  let name = firstName;
  for (;;) {
    const problem = ownFieldsProblem(message, name);
    if (problem) return problem;
    const reply = (message as Record<string, unknown>).reply_to_message;
    if (reply === undefined) return undefined;
    message = reply;
    // The path grows with the depth: past the first levels it would make the error message quadratic.
    name = name.length < 200 ? `${name}.reply_to_message` : name;
  }
}

function ownFieldsProblem(message: unknown, name: string): string | undefined {
  if (!isRecord(message)) return `${name} is not an object`;
  if (!isInteger(message.message_id)) return `${name}.message_id is not an integer`;
  if (!isRecord(message.chat) || !isInteger(message.chat.id) || typeof message.chat.type !== "string") {
    return `${name}.chat must have an integer id and a type`;
  }
  if (message.from !== undefined && (!isRecord(message.from) || !isInteger(message.from.id))) {
    return `${name}.from must have an integer id`;
  }
  if (
    message.sender_chat !== undefined &&
    (!isRecord(message.sender_chat) || !isInteger(message.sender_chat.id))
  ) {
    return `${name}.sender_chat must have an integer id`;
  }
  for (const field of ["text", "caption", "media_group_id"] as const) {
    if (message[field] !== undefined && typeof message[field] !== "string")
      return `${name}.${field} is not a string`;
  }
  if (!isEntityList(message.entities) || !isEntityList(message.caption_entities)) {
    return `${name} has malformed entities`;
  }
  return undefined;
}

/** Why a JSON value is not a Telegram Update the bridge can read, or undefined when it is one. */
export function updateProblem(value: unknown): string | undefined {
  if (!isRecord(value)) return "body is not a JSON object";
  if (!isInteger(value.update_id)) return "update_id is missing or not an integer";
  return value.message === undefined ? undefined : messageProblem(value.message, "message");
}

/** Only group messages need the bot's identity (mentions, replies, addressed commands); private chats don't. */
export function needsBotIdentity(update: Update): boolean {
  const type = update.message?.chat.type;
  return type === "group" || type === "supergroup";
}

const ignored = (reason: string): ParseResult => ({ type: "ignored", reason });

/**
 * Turns an Update into at most one user message. `bot` is required when
 * `needsBotIdentity(update)` is true.
 */
export function parseUpdate(update: Update, bot?: BotIdentity): ParseResult {
  const message = update.message;
  if (!message) {
    const kind = Object.keys(update).find((key) => key !== "update_id") ?? "empty";
    return ignored(`${kind} update`);
  }
  const sender = senderOf(message);
  if (typeof sender === "string") return ignored(sender);

  const chatType = message.chat.type;
  if (chatType !== "private" && chatType !== "group" && chatType !== "supergroup") {
    return ignored(`${chatType} chat`);
  }

  const content = message.text ?? message.caption;
  const entities = (message.text !== undefined ? message.entities : message.caption_entities) ?? [];
  const command = content === undefined ? undefined : leadingCommand(content, entities);
  const inGroup = chatType !== "private";

  if (inGroup) {
    if (!bot) throw new TypeError("parseUpdate needs the bot identity for group messages");
    if (command?.target && !sameUsername(command.target, bot.username)) {
      return ignored("command for another bot");
    }
    const addressed =
      (command !== undefined && (command.target !== undefined || OWN_COMMANDS.has(command.name))) ||
      (content !== undefined && botMentions(content, entities, bot).length > 0) ||
      isReplyToBot(message, bot);
    if (!addressed) return ignored("group message not addressed to the bot");
  }

  const base = messageBase(message, sender, inGroup);
  if (command?.name === "start")
    return { type: "message", message: { ...base, kind: "start", text: command.payload } };
  if (command?.name === "reset") return { type: "message", message: { ...base, kind: "reset", text: "" } };

  if (content === undefined) {
    const hasMedia = MEDIA_FIELDS.some((field) => message[field] !== undefined);
    if (!hasMedia) return ignored("service message");
    // An album arrives as one message per item: its caption-less items share one key, so they get one
    // `unsupported` answer between them. An item with a caption is answered by its caption, as a single
    // captioned photo is (a key of its own: an album key would drop the caption when a bare item came first).
    const album = message.media_group_id;
    const dedupeKey = album ? `${message.chat.id}:album:${album}` : base.dedupeKey;
    return { type: "message", message: { ...base, dedupeKey, kind: "unsupported", text: "" } };
  }

  const text = inGroup && bot ? withoutLeadingMention(content, botMentions(content, entities, bot)) : content;
  return { type: "message", message: { ...base, kind: "text", text } };
}

/** Commands the bridge acts on; in a group, these count even without `@botname`. */
const OWN_COMMANDS = new Set(["start", "reset"]);

interface Command {
  name: string;
  /** The `@botname` suffix, when the command names a bot. */
  target?: string;
  /** The text after the command. */
  payload: string;
}

/** The command a message starts with: Telegram marks it with a bot_command entity at offset 0. */
function leadingCommand(content: string, entities: MessageEntity[]): Command | undefined {
  const entity = entities.find((e) => e.type === "bot_command" && e.offset === 0);
  if (!entity) return undefined;
  const [name = "", target] = content.slice(1, entity.length).split("@", 2);
  return { name: name.toLowerCase(), target, payload: content.slice(entity.length).trim() };
}

const sameUsername = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Mentions of the bot, by @username or by a text mention of its user id. Offsets are UTF-16, as in JS strings.
 * Only an entity as long as "@username" is compared: thousands of entities each spanning a long text would
 * otherwise cost entities × length.
 */
function botMentions(content: string, entities: MessageEntity[], bot: BotIdentity): MessageEntity[] {
  return entities.filter(
    (e) =>
      (e.type === "mention" &&
        e.length === bot.username.length + 1 &&
        sameUsername(content.slice(e.offset + 1, e.offset + e.length), bot.username)) ||
      (e.type === "text_mention" && e.user?.id === bot.id),
  );
}

/**
 * "@bot, what are your hours?" reaches the agent as "what are your hours?". Mentions inside the sentence are
 * part of it and stay. A message that is nothing but the mention is the user calling the bot: empty text,
 * which the relay answers like a greeting (the same as a bare mention on Slack).
 */
function withoutLeadingMention(content: string, mentions: MessageEntity[]): string {
  const leading = mentions.find((e) => e.type === "mention" && e.offset === 0);
  if (!leading) return content;
  return content.slice(leading.length).replace(/^[\s,:;.!-]+/, "");
}

/**
 * A reply to one of the bot's messages. In a forum topic every message carries an automatic
 * `reply_to_message` of the topic-creation service message, which is not a reply to anyone.
 */
function isReplyToBot(message: IncomingMessage, bot: BotIdentity): boolean {
  const reply = message.reply_to_message;
  if (!reply || reply.from?.id !== bot.id) return false;
  const isTopicRoot =
    reply.forum_topic_created !== undefined ||
    (message.is_topic_message === true && reply.message_id === message.message_thread_id);
  return !isTopicRoot;
}

/** Telegram's own account: it posts the automatic forwards of a linked channel into its discussion group. */
const TELEGRAM_SERVICE_USER = 777_000;

/**
 * Who wrote the message, or why no person did (issue 24: real payloads):
 * - `is_automatic_forward`: a post of the linked channel copied into its discussion group (`from` is the
 *   service user 777000, `sender_chat` the channel). A channel post, ignored like channel posts elsewhere;
 * - any other message from 777000: Telegram's own service notices;
 * - `sender_chat` set otherwise: a person writing on behalf of a chat, the group's anonymous admin (`from` is
 *   GroupAnonymousBot 1087968824, `sender_chat` the group) or a user posting as their channel (`from` is
 *   Channel_Bot 136817688). `from` is a placeholder bot there, so the sender is the chat, named by the admin's
 *   signature when there is one;
 * - `from.is_bot`: another bot (or ours), never answered, so two bots cannot talk to each other forever;
 * - no `from` at all: not a person (channel posts have none).
 */
function senderOf(message: IncomingMessage): InboundMessage["sender"] | string {
  if (message.is_automatic_forward) return "automatic forward of a channel post";
  const { from, sender_chat: chat } = message;
  if (!from) return "message without a sender";
  if (from.id === TELEGRAM_SERVICE_USER) return "Telegram service message";
  if (chat) {
    const name = message.author_signature || ("title" in chat ? chat.title : undefined);
    return name ? { id: String(chat.id), name } : { id: String(chat.id) };
  }
  if (from.is_bot) return "message from a bot";
  return personOf(from);
}

function personOf(from: User): InboundMessage["sender"] {
  const name = [from.first_name, from.last_name].filter(Boolean).join(" ") || from.username;
  return name ? { id: String(from.id), name } : { id: String(from.id) };
}

/** Thread, dedupe key, sender and route: the same for every kind of message. */
function messageBase(
  message: IncomingMessage,
  sender: InboundMessage["sender"],
  inGroup: boolean,
): Omit<InboundMessage, "kind" | "text"> {
  const chatId = message.chat.id;
  const topic =
    message.is_topic_message && message.message_thread_id !== undefined
      ? message.message_thread_id
      : undefined;
  const route: Route = { chat_id: chatId };
  if (topic !== undefined) route.message_thread_id = topic;
  if (inGroup) route.reply_to_message_id = message.message_id;

  return {
    threadKey: topic === undefined ? String(chatId) : `${chatId}:${topic}`,
    // A redelivered update carries the same message, so this also dedupes repeated update_ids.
    dedupeKey: `${chatId}:${message.message_id}`,
    sender,
    route,
  };
}
