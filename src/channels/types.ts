import type { TenantConfig } from "../config/schema.js";
import type { ChannelName } from "../format/index.js";

export type { ChannelName };

/** JSON-serialisable channel coordinates of a thread (chat id, topic, Slack thread ts, WhatsApp numbers...). */
export type Route = { [key: string]: string | number | boolean | null };

/**
 * What the worker does with a message:
 * - `text`: ask Quickchat with `text`, or with the tenant's greeting when `text` is empty (a bare mention of
 *   the bot);
 * - `start`: start a new conversation, then ask Quickchat with `text` (the /start payload) or the greeting;
 * - `reset`: start a new conversation and answer with the tenant's `reset` text, without Quickchat;
 * - `unsupported`: answer with the tenant's `unsupported` text, without Quickchat (media without text).
 */
export type MessageKind = "text" | "start" | "reset" | "unsupported";

/** One user message, normalised. Produced by each adapter's pure `inbound.ts`. */
export interface InboundMessage {
  /** Conversation key within (tenant, channel): DESIGN 3.2. */
  threadKey: string;
  /** Unique per user message within (tenant, channel): redeliveries carry the same key. */
  dedupeKey: string;
  kind: MessageKind;
  text: string;
  sender: { id: string; name?: string };
  /** Where the reply goes; stored with the message and handed back to `send`. */
  route: Route;
  /** Store only when the thread already has a conversation (Slack thread follow-ups without a mention). */
  onlyInKnownThread?: boolean;
}

export type ParseResult = { type: "message"; message: InboundMessage } | { type: "ignored"; reason: string };

/** A webhook request as the adapters see it: the raw bytes (signatures are computed over them). */
export interface WebhookRequest {
  rawBody: Buffer;
  headers: Headers;
  /** The URL the request arrived on (path and query as received). */
  url: URL;
  /** The externally visible base URL, when configured (PUBLIC_URL / public_url). */
  publicUrl?: string;
}

export type WebhookResult =
  /** Store these (possibly none, for ignored updates), then answer with `ack()`. */
  | { type: "messages"; messages: InboundMessage[]; ignored?: string }
  /** Answer at once without storing anything (Slack url_verification). */
  | { type: "response"; response: Response };

/** A Twilio-style delivery report for one sent part, matched by the channel's message id. */
export interface DeliveryStatus {
  channelMessageId: string;
  status: string;
  errorCode?: string;
}

/** Everything `send` needs to deliver a part of a reply. */
export interface DeliveryTarget<Cfg> {
  tenant: TenantConfig;
  config: Cfg;
  route: Route;
  threadKey: string;
  /** The inbound message being answered (its id in the inbox). */
  inboundId: string;
}

export interface SentPart {
  channelMessageId: string;
  /** A changed route (Telegram group migrated to a supergroup): later parts and replies use it. */
  route?: Route;
}

/**
 * Why a send failed, so the relay can act without knowing the channel:
 * - `retry`: transient (429, 5xx, network); wait `retryAfterMs` when the channel said how long;
 * - `markup`: the channel rejected the markup; the relay re-sends the part as plain text;
 * - `permanent`: will never succeed (blocked, chat not found, outside the window): fail the message.
 */
export class ChannelSendError extends Error {
  override name = "ChannelSendError";
  constructor(
    readonly kind: "retry" | "markup" | "permanent",
    message: string,
    readonly code?: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface ChannelAdapter<Cfg = unknown> {
  readonly channel: ChannelName;
  /** The tenant's settings for this channel, or undefined when the tenant does not use it (404). */
  config(tenant: TenantConfig): Cfg | undefined;
  /**
   * Refuses what the headers alone show to be wrong (missing or malformed signature, stale timestamp, wrong
   * secret), before the body is read: an unauthenticated request costs no more than its headers there.
   * Throws HttpError 4xx. `verify` still makes the whole check.
   */
  precheck?(headers: Headers, config: Cfg, tenant: TenantConfig): void;
  /** Checks the request's signature or secret; throws HttpError 401/403 when it fails. */
  verify(req: WebhookRequest, config: Cfg, tenant: TenantConfig): Promise<void> | void;
  /** Turns a verified webhook into inbound messages; throws HttpError 400 on a malformed body. */
  receive(req: WebhookRequest, config: Cfg, tenant: TenantConfig): Promise<WebhookResult>;
  /** The answer once the messages are stored. */
  ack(): Response;
  /** Sends one part; `plain` is true when re-sending a part whose markup was rejected. */
  send(target: DeliveryTarget<Cfg>, text: string, options: { plain: boolean }): Promise<SentPart>;
  /** A "working on it" signal shown while Quickchat answers, repeated every `intervalMs`. */
  typing?: { intervalMs: number; send(target: DeliveryTarget<Cfg>): Promise<void> };
  /** The sender's display name when the webhook did not carry it (Slack users.info); failures return undefined. */
  senderName?(target: DeliveryTarget<Cfg>, senderId: string): Promise<string | undefined>;
  /** Delivery reports posted to `/webhooks/:tenant/<channel>/status` (Twilio status callbacks). */
  receiveStatus?(req: WebhookRequest, config: Cfg, tenant: TenantConfig): Promise<DeliveryStatus[]>;
}

/** The adapters of the channels a process serves, by channel name. */
export type AdapterMap = Partial<Record<ChannelName, ChannelAdapter<unknown>>>;

export interface AdapterDeps {
  log: import("../log.js").Logger;
}
