import type { z } from "zod";
import type { ReplyFormat } from "../format/index.js";
import type { Logger } from "../log.js";

/** What an adapter needs to know of a tenant: adapters see their own channel's block, not the tenant's. */
export interface TenantRef {
  id: string;
}

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
  /** Conversation key within (tenant, channel). */
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
  /**
   * Store these messages and apply these delivery reports (possibly none, for ignored updates), then answer
   * with `ack()`.
   */
  | { type: "messages"; messages: InboundMessage[]; statuses?: DeliveryStatus[]; ignored?: string }
  /** Answer at once without storing anything (Slack url_verification). */
  | { type: "response"; response: Response };

/** A delivery report for one sent part (Twilio status callback, Meta status update), matched by the channel's message id. */
export interface DeliveryStatus {
  channelMessageId: string;
  status: string;
  errorCode?: string;
}

/** Everything `send` needs to deliver a part of a reply. */
export interface DeliveryTarget<Cfg> {
  tenant: TenantRef;
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

/** What a channel implements; the registry adds its name, reply format and config lookup (`ChannelAdapter`). */
export interface ChannelParts<Cfg> {
  /**
   * Refuses what the headers alone show to be wrong (missing or malformed signature, stale timestamp, wrong
   * secret), before the body is read: an unauthenticated request costs no more than its headers there.
   * Throws HttpError 4xx. `verify` still makes the whole check.
   */
  precheck?(headers: Headers, config: Cfg, tenant: TenantRef): void;
  /** Checks the request's signature or secret; throws HttpError 401/403 when it fails. */
  verify(req: WebhookRequest, config: Cfg, tenant: TenantRef): Promise<void> | void;
  /** Turns a verified webhook into inbound messages; throws HttpError 400 on a malformed body. */
  receive(req: WebhookRequest, config: Cfg, tenant: TenantRef): Promise<WebhookResult>;
  /** The answer once the messages are stored. */
  ack(): Response;
  /**
   * Answers `GET /webhooks/:tenant/<channel>`: a subscription handshake (Meta's hub.challenge). Throws
   * HttpError 403 when the request does not prove it comes from the tenant's app. No GET route without it.
   */
  handshake?(url: URL, config: Cfg, tenant: TenantRef): Response;
  /** Sends one part; `plain` is true when re-sending a part whose markup was rejected. */
  send(target: DeliveryTarget<Cfg>, text: string, options: { plain: boolean }): Promise<SentPart>;
  /** A "working on it" signal shown while Quickchat answers, repeated every `intervalMs`. */
  typing?: { intervalMs: number; send(target: DeliveryTarget<Cfg>): Promise<void> };
  /** The sender's display name when the webhook did not carry it (Slack users.info); failures return undefined. */
  senderName?(target: DeliveryTarget<Cfg>, senderId: string): Promise<string | undefined>;
  /** Delivery reports posted to `/webhooks/:tenant/<channel>/status` (Twilio status callbacks). */
  receiveStatus?(req: WebhookRequest, config: Cfg, tenant: TenantRef): Promise<DeliveryStatus[]>;
}

/** A channel as the service sees it: the parts its folder implements, with its name and reply format. */
export interface ChannelAdapter<Cfg = unknown> extends ChannelParts<Cfg> {
  readonly channel: string;
  readonly format: ReplyFormat;
  /** The largest webhook body the channel sends, when more than the service's 1 MiB. */
  readonly maxBodyBytes?: number;
  /** The tenant's settings for this channel, or undefined when the tenant does not use it (404). */
  config(tenant: object): Cfg | undefined;
}

/** The adapters of the channels a process serves, by channel name. */
export type AdapterMap = Partial<Record<string, ChannelAdapter<unknown>>>;

export interface AdapterDeps {
  log: Logger;
}

/**
 * Everything the service knows of a channel, declared in its folder's `index.ts` and listed once in
 * `registry.ts`: the tenant config block, the environment shorthand, the secrets, the reply format and the
 * adapter. Everything else (tenant schema, admin API, encryption at rest, log redaction, CLI) derives from it.
 */
export interface ChannelDescriptor<Name extends string = string, Schema extends z.ZodObject = z.ZodObject> {
  /** The route segment (`/webhooks/:tenant/<name>`), the tenant config key and the stored channel value. */
  readonly name: Name;
  /** For people: logs, check-config, the CLI. */
  readonly title: string;
  /** The tenant's `<name>` block. */
  readonly schema: Schema;
  /** Fields of the block that are secrets: encrypted at rest, masked by the admin API, redacted in logs. */
  readonly secrets: readonly (keyof z.output<Schema> & string)[];
  /**
   * The field that decides where the block's requests (and so its secrets) go, with its default: stored
   * secrets stay bound to it.
   */
  readonly destination: { readonly field: keyof z.output<Schema> & string; readonly default: string };
  /** The single-tenant shorthand: environment variable → field of the block. */
  readonly env: Readonly<Record<string, keyof z.input<Schema> & string>>;
  /** Request headers that carry a secret or a signature, lowercase (redacted in logs). */
  readonly secretHeaders: readonly string[];
  readonly format: ReplyFormat;
  /** The largest webhook body the platform sends, when more than the service's 1 MiB. */
  readonly maxBodyBytes?: number;
  /**
   * What `check-config` reports as probably wrong without refusing it: shapes the platform shows in its
   * documentation but does not guarantee (the schema refuses only what is certainly wrong), and webhook URLs
   * the platform would not call. `webhookUrl` is the channel's webhook URL when PUBLIC_URL is known.
   */
  warnings?(config: z.output<Schema>, webhookUrl: URL | undefined): ChannelWarning[];
  createAdapter(deps: AdapterDeps): ChannelParts<z.output<Schema>>;
}

/** A finding of a descriptor's `warnings`: the field it is about (none for the block as a whole) and why. */
export interface ChannelWarning {
  field?: string;
  message: string;
}

/** Declares a channel; the identity function keeps the literal name and the schema's types. */
export function defineChannel<const Name extends string, Schema extends z.ZodObject>(
  descriptor: ChannelDescriptor<Name, Schema>,
): ChannelDescriptor<Name, Schema> {
  return descriptor;
}
