/**
 * What the channel contract (contract.ts) needs from a channel: a driver per channel speaks the platform's
 * wire protocol to the bridge (signed webhooks in) and reads the platform's loopback fake (what the bridge
 * sent out). Everything the contract asserts is written in these channel-neutral terms.
 *
 * A new channel adds a driver in drivers/ and one line in contract.test.ts.
 */
import type { ChannelName } from "../../src/channels/registry.js";
import type { AdapterMap } from "../../src/channels/types.js";
import type { TenantInput } from "../../src/config/schema.js";
import type { Watched } from "../support/unexpected.js";

/** One webhook request as the platform would post it. */
export interface Webhook {
  body: string;
  headers: Record<string, string>;
}

/** A user's message as a webhook, with the key the bridge must store it (and dedupe its redeliveries) under. */
export interface UserMessage {
  webhook: Webhook;
  /** e.g. Telegram `<chat_id>:<message_id>`, Slack `<team>:<channel>:<ts>`, a Twilio MessageSid. */
  dedupeKey: string;
}

/** A conversation of its own (a private chat, a DM, a user's number): each case uses fresh ones. */
export interface DriverThread {
  /** The thread key the bridge stores for it (`inbound_messages.thread_key`). */
  key: string;
}

/** How the platform fails a send on purpose, in its own wire format. */
export type SendFailure =
  /** The platform's rate limit answer, saying to wait this long (429 with Retry-After or retry_after). */
  | { kind: "rate_limit"; retryAfterSeconds: number }
  /** A 5xx answer. */
  | { kind: "server_error" };

/** A send that reached the fake, in arrival order. */
export interface SendAttempt {
  /** Date.now() when it arrived. */
  at: number;
  /** False when the fake answered with an error (injected or not). */
  accepted: boolean;
}

export interface ChannelDriver<Thread extends DriverThread = DriverThread> {
  /** Shown in test names. */
  readonly name: string;
  /** The bridge's channel slot: webhooks go to `/webhooks/<tenant>/<route>`, rows carry it as `channel`. */
  readonly route: ChannelName;
  /**
   * The most characters one message may carry, as the platform documents it (the driver says where). Every
   * part of a split reply must fit; counted as the user sees the text (Telegram: after entity parsing).
   */
  readonly partLimit: number;
  /** How the bridge acknowledges a webhook it accepted (stored or ignored). */
  readonly ack: { status: number; body: string; contentType?: RegExp };
  /** The status of a webhook whose signature or secret is wrong (401 or 403). */
  readonly forgedStatus: number;

  /** Starts the platform's fake; the webhooks it builds are for `webhookUrl` (a signature may cover it). */
  start(context: { tenantId: string; webhookUrl: string }): Promise<void>;
  stop(): Promise<void>;
  /** The tenant's channel block, pointing the real adapter at the fake (`{ telegram: { ..., api_root } }`). */
  tenantBlock(): Partial<TenantInput>;
  /** Adapters that replace the real ones (a stand-in channel); undefined runs the real adapters. */
  adapters?(): AdapterMap;

  /** A thread no earlier case used. */
  newThread(): Thread;
  /** A user's text message in the thread: a new message on each call. */
  text(thread: Thread, text: string): UserMessage;
  /** Media without text (a photo, a file) that the bridge cannot read. */
  unsupported(thread: Thread): UserMessage;
  /** An update in the thread the bridge acknowledges without storing (an edit, a reaction). */
  ignored(thread: Thread): Webhook;
  /** The platform's redelivery of a message it thinks was not acknowledged. */
  redelivery(message: UserMessage): Webhook;
  /** The webhook with a wrong signature (or secret): what a forger without the tenant's secret can send. */
  forged(webhook: Webhook): Webhook;

  /** The texts the user received in the thread, in order, as the user sees them. */
  delivered(thread: Thread): string[];
  /** The sends to the thread that reached the fake. */
  attempts(thread: Thread): SendAttempt[];
  /** The next `times` sends to the thread fail this way. */
  failNextSend(thread: Thread, failure: SendFailure, times?: number): void;
  /** Until `acceptConnections`, nothing listens where the platform's API is: sends get ECONNREFUSED. */
  refuseConnections(): Promise<void>;
  acceptConnections(): Promise<void>;
  /**
   * The platform's fake, for the unexpected-failure guard: the texts users got, and every request it refused
   * on its own checks (bad parameters, a text over the limit, unknown credentials), not because a test asked.
   */
  watched(): Watched;
}
