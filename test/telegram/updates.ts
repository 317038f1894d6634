/**
 * Builders of realistic Telegram Updates (Bot API 10.1 field shapes) for tests: chats, users, text with the
 * entities Telegram would attach, captions, media, forum topics, edits, callback queries, service updates.
 */
import type { Chat, Message, MessageEntity, Update, User, UserFromGetMe } from "grammy/types";

export const BOT: UserFromGetMe = {
  id: 7_012_345_678,
  is_bot: true,
  first_name: "Acme Support",
  username: "acme_support_bot",
  can_join_groups: true,
  can_read_all_group_messages: false,
  supports_inline_queries: false,
  can_connect_to_business: false,
  has_main_web_app: false,
  has_topics_enabled: false,
  allows_users_to_create_topics: false,
  can_manage_bots: false,
  supports_join_request_queries: false,
};

export const ALICE: User = {
  id: 123_456_789,
  is_bot: false,
  first_name: "Alice",
  last_name: "Liddell",
  username: "alice",
  language_code: "en",
};

export const BOB: User = { id: 987_654_321, is_bot: false, first_name: "Bob", language_code: "de" };

export const OTHER_BOT: User = {
  id: 6_111_222_333,
  is_bot: true,
  first_name: "Weather",
  username: "weather_bot",
};

/** The sender Telegram shows for anonymous group admins. */
export const GROUP_ANONYMOUS_BOT: User = {
  id: 1_087_968_824,
  is_bot: true,
  first_name: "Group",
  username: "GroupAnonymousBot",
};

/** The sender Telegram shows for a user posting in a group as their channel. */
export const CHANNEL_BOT: User = {
  id: 136_817_688,
  is_bot: true,
  first_name: "Channel",
  username: "Channel_Bot",
};

/** Telegram's service account: the sender of a linked channel's posts forwarded into its discussion group. */
export const TELEGRAM_SERVICE: User = { id: 777_000, is_bot: false, first_name: "Telegram" };

export const privateChat = (user: User): Chat.PrivateChat => ({
  id: user.id,
  type: "private",
  first_name: user.first_name,
  ...(user.last_name ? { last_name: user.last_name } : {}),
  ...(user.username ? { username: user.username } : {}),
});

export const GROUP: Chat.GroupChat = { id: -4_012_345_678, type: "group", title: "Acme customers" };
export const SUPERGROUP: Chat.SupergroupChat = {
  id: -1_001_234_567_890,
  type: "supergroup",
  title: "Acme community",
};
export const FORUM: Chat.SupergroupChat = {
  id: -1_009_876_543_210,
  type: "supergroup",
  title: "Acme help desk",
  is_forum: true,
};
export const CHANNEL: Chat.ChannelChat = { id: -1_005_555_555_555, type: "channel", title: "Acme news" };

let lastUpdateId = 870_000_000;
let lastMessageId = 1_000;
const now = () => Math.floor(Date.now() / 1000);
export const nextMessageId = () => ++lastMessageId;

/** The entities Telegram attaches to typed text: a leading /command and @mentions. Offsets in UTF-16. */
export function entitiesOf(text: string): MessageEntity[] {
  const entities: MessageEntity[] = [];
  const command = /^\/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{5,32})?/.exec(text);
  if (command) entities.push({ type: "bot_command", offset: 0, length: command[0].length });
  for (const mention of text.matchAll(/(?<![\w/@])@[A-Za-z0-9_]{5,32}/g)) {
    entities.push({ type: "mention", offset: mention.index, length: mention[0].length });
  }
  return entities;
}

export interface MessageOptions {
  chat: Chat;
  from?: User;
  replyTo?: Message;
  /** Put the message in a forum topic: the topic-creation service message (see `topicRoot`). */
  topic?: Message;
  messageId?: number;
}

function baseMessage(options: MessageOptions): Message {
  const { chat, from = ALICE, replyTo, topic } = options;
  return {
    message_id: options.messageId ?? nextMessageId(),
    from,
    chat,
    date: now(),
    ...(topic
      ? {
          message_thread_id: topic.message_id,
          is_topic_message: true,
          // Telegram adds this to every topic message: it is not a reply the user made.
          reply_to_message: (replyTo ?? topic) as Message & { reply_to_message: undefined },
        }
      : replyTo
        ? { reply_to_message: replyTo as Message & { reply_to_message: undefined } }
        : {}),
  } as Message;
}

export function textMessage(text: string, options: MessageOptions): Message {
  const entities = entitiesOf(text);
  return { ...baseMessage(options), text, ...(entities.length > 0 ? { entities } : {}) };
}

/** Text with explicit entities, e.g. a text_mention of a user without a username. */
export function textWithEntities(text: string, entities: MessageEntity[], options: MessageOptions): Message {
  return { ...baseMessage(options), text, entities };
}

export function photoMessage(options: MessageOptions & { caption?: string }): Message {
  const sizes = [
    { width: 90, height: 67, file_size: 1_284 },
    { width: 320, height: 240, file_size: 18_120 },
    { width: 1280, height: 960, file_size: 131_007 },
  ].map((size, i) => ({
    file_id: `AgACAgQAAxkBAAIC${i}zZmFrZS1waG90bw`,
    file_unique_id: `AQADfake${i}`,
    ...size,
  }));
  const captionEntities = options.caption ? entitiesOf(options.caption) : [];
  return {
    ...baseMessage(options),
    photo: sizes,
    ...(options.caption ? { caption: options.caption } : {}),
    ...(captionEntities.length > 0 ? { caption_entities: captionEntities } : {}),
  };
}

export function stickerMessage(options: MessageOptions): Message {
  return {
    ...baseMessage(options),
    sticker: {
      file_id: "CAACAgIAAxkBAAIBsmZmYWtlLXN0aWNrZXI",
      file_unique_id: "AgADfakesticker",
      type: "regular",
      width: 512,
      height: 512,
      is_animated: true,
      is_video: false,
      emoji: "👍",
      set_name: "HotCherry",
    },
  };
}

export function voiceMessage(options: MessageOptions): Message {
  return {
    ...baseMessage(options),
    voice: {
      file_id: "AwACAgQAAxkBAAIBzmZmYWtlLXZvaWNl",
      file_unique_id: "AgADfakevoice",
      duration: 4,
      mime_type: "audio/ogg",
      file_size: 15_433,
    },
  };
}

/** A message the bot sent earlier, as it appears in `reply_to_message`. */
export function botMessage(text: string, chat: Chat): Message {
  return { message_id: nextMessageId(), from: BOT, chat, date: now() - 60, text };
}

/** The service message that creates a forum topic; its id is the topic's `message_thread_id`. */
export function topicRoot(chat: Chat, name = "Billing", creator: User = ALICE): Message {
  const id = nextMessageId();
  return {
    message_id: id,
    message_thread_id: id,
    from: creator,
    chat,
    date: now() - 3600,
    is_topic_message: true,
    forum_topic_created: { name, icon_color: 7_322_096 },
  } as Message;
}

/**
 * A post of `channel` that Telegram copies into its linked discussion group (`is_automatic_forward`): sent by
 * the service user 777000 on behalf of the channel, with the channel post as its forward origin.
 */
export function automaticForward(text: string, group: Chat, channel: Chat.ChannelChat): Message {
  const postId = nextMessageId();
  return {
    ...textMessage(text, { chat: group, from: TELEGRAM_SERVICE }),
    sender_chat: channel,
    is_automatic_forward: true,
    forward_origin: { type: "channel", chat: channel, message_id: postId, date: now() },
  } as Message;
}

/**
 * A message sent on behalf of a chat: the group's anonymous admin (`chat` itself, from GroupAnonymousBot,
 * maybe with the admin's custom title as `author_signature`) or a user posting as their channel (Channel_Bot).
 */
export function onBehalfOf(text: string, chat: Chat, senderChat: Chat, signature?: string): Message {
  const from = senderChat.id === chat.id ? GROUP_ANONYMOUS_BOT : CHANNEL_BOT;
  return {
    ...textMessage(text, { chat, from }),
    sender_chat: senderChat,
    ...(signature ? { author_signature: signature } : {}),
  } as Message;
}

/** The items of an album: one message each, sharing `media_group_id`; `captions[i]` on item i when set. */
export function album(options: MessageOptions, captions: (string | undefined)[]): Message[] {
  const group = String(13_000_000_000_000_000 + nextMessageId());
  return captions.map((caption) => ({ ...photoMessage({ ...options, caption }), media_group_id: group }));
}

export function newMembersMessage(chat: Chat, members: User[]): Message {
  return { ...baseMessage({ chat }), new_chat_members: members } as Message;
}

export const messageUpdate = (message: Message, updateId = ++lastUpdateId): Update => ({
  update_id: updateId,
  message: message as Update["message"],
});

export const editedMessageUpdate = (message: Message): Update => ({
  update_id: ++lastUpdateId,
  edited_message: { ...message, edit_date: now() } as Update["edited_message"],
});

export const channelPostUpdate = (text: string): Update => ({
  update_id: ++lastUpdateId,
  channel_post: {
    message_id: nextMessageId(),
    sender_chat: CHANNEL,
    chat: CHANNEL,
    date: now(),
    text,
  } as Update["channel_post"],
});

export const callbackQueryUpdate = (from: User, message: Message, data: string): Update => ({
  update_id: ++lastUpdateId,
  callback_query: {
    id: "4382bfdwdsb323b2d9",
    from,
    message: message as never,
    chat_instance: "-7340981277013823042",
    data,
  },
});

export const myChatMemberUpdate = (chat: Chat, from: User): Update => ({
  update_id: ++lastUpdateId,
  my_chat_member: {
    chat,
    from,
    date: now(),
    old_chat_member: { status: "left", user: BOT },
    new_chat_member: { status: "member", user: BOT },
  },
});

export const reactionUpdate = (chat: Chat, user: User, messageId: number): Update => ({
  update_id: ++lastUpdateId,
  message_reaction: {
    chat,
    message_id: messageId,
    user,
    date: now(),
    old_reaction: [],
    new_reaction: [{ type: "emoji", emoji: "👍" }],
  },
});

/**
 * The raw body of a private-chat text update whose `reply_to_message` chain is `depth` levels deep, as a
 * string: JSON.stringify itself recurses and overflows on such a value. About 80 bytes a level.
 */
export function deeplyNestedReplyBody(user: User, text: string, depth: number): string {
  const chat = JSON.stringify(privateChat(user));
  const from = JSON.stringify(user);
  // Inner levels carry only what a message must have, so 12,000 of them fit the 1 MiB body limit.
  const bare = `{"id":${user.id},"type":"private"}`;
  const level = (id: number) => `{"message_id":${id},"chat":${bare},"reply_to_message":`;
  const innermost = `{"message_id":1,"chat":${bare},"text":"first"}`;
  const id = nextMessageId() + depth;
  // The outer message (the one the user just sent) carries the text and the sender.
  const outer = `{"message_id":${id + 1},"date":${now()},"chat":${chat},"from":${from},"text":${JSON.stringify(text)},"reply_to_message":`;
  return `{"update_id":${++lastUpdateId},"message":${outer}${Array.from({ length: depth - 1 }, (_, i) => level(id - i)).join("")}${innermost}${"}".repeat(depth)}}`;
}
