import { z } from "zod";
import { CHANNEL_FORMATS } from "../../src/channels/registry.js";
import { safeEqual, storable } from "../../src/channels/shared.js";
import type { TelegramConfig } from "../../src/channels/telegram/config.js";
import {
  type ChannelAdapter,
  ChannelSendError,
  type InboundMessage,
  type Route,
} from "../../src/channels/types.js";
import { badRequest, unauthorized } from "../../src/errors.js";

/** A message the loopback channel delivered. */
export interface Delivered {
  threadKey: string;
  text: string;
  plain: boolean;
  inboundId: string;
  at: number;
}

/** A send that reached the loopback channel, accepted or failed on purpose. */
export interface SendAttempt {
  threadKey: string;
  at: number;
  accepted: boolean;
}

const webhookBody = z.object({
  id: z.string().min(1),
  thread: z.string().min(1),
  user: z.string().min(1),
  /** The sender's display name, when the platform sends one. */
  name: z.string().min(1).optional(),
  text: z.string(),
  kind: z.enum(["text", "start", "reset", "unsupported"]).default("text"),
  /** Set for an update that carries no user message (an edit, a reaction): the reason it is ignored. */
  ignored: z.string().optional(),
});

export type LoopbackWebhook = z.input<typeof webhookBody>;

/**
 * The smallest real channel: a JSON webhook checked against the tenant's Telegram `webhook_secret` header,
 * deliveries recorded in memory, and switches to make sends fail. It stands in for a channel so the relay
 * can be proven end to end independently of the three real adapters. It serves the `telegram` slot.
 */
export class LoopbackChannel implements ChannelAdapter<TelegramConfig> {
  readonly channel = "telegram" as const;
  readonly format = CHANNEL_FORMATS.telegram;
  /** Sends made by this instance (several instances may share one `delivered` list). */
  sent = 0;
  /** The texts this instance delivered. */
  private readonly sentTexts: string[] = [];
  readonly sendFailures: ChannelSendError[] = [];
  /** Every send that reached the channel, in order. */
  readonly attempts: SendAttempt[] = [];
  /** Sends refused as invalid (an empty text): no test asks for these. */
  readonly rejections: string[] = [];
  /** While true, sends fail as if nothing listened at the channel's address, and never reach it. */
  unreachable = false;
  private readonly threadFailures = new Map<string, ChannelSendError[]>();
  /** Called before each send: lets a test hold a send (crash-in-delivery scenarios). */
  beforeSend: (() => Promise<void>) | undefined;
  /** Sends held by `hold`, waiting for its release. */
  holding = 0;

  constructor(readonly delivered: Delivered[] = []) {}

  config(tenant: { telegram?: TelegramConfig }) {
    return tenant.telegram;
  }

  verify(req: { headers: Headers }, config: TelegramConfig) {
    if (!safeEqual(req.headers.get("x-test-secret") ?? "", config.webhook_secret))
      throw unauthorized("bad secret");
  }

  async receive(req: { rawBody: Buffer }) {
    let parsed: z.output<typeof webhookBody>;
    try {
      parsed = webhookBody.parse(JSON.parse(req.rawBody.toString("utf8")));
    } catch {
      throw badRequest("body is not a loopback webhook");
    }
    if (parsed.ignored) return { type: "messages" as const, messages: [], ignored: parsed.ignored };
    const message: InboundMessage = {
      threadKey: parsed.thread,
      dedupeKey: parsed.id,
      kind: parsed.kind,
      text: parsed.text,
      sender: { id: parsed.user, ...(parsed.name && { name: parsed.name }) },
      route: { thread: parsed.thread },
    };
    // As every adapter does: PostgreSQL holds neither NUL nor lone surrogates.
    return { type: "messages" as const, messages: [storable(message)] };
  }

  ack() {
    return new Response(null, { status: 200 });
  }

  async send(
    target: { threadKey: string; inboundId: string; route: Route },
    text: string,
    options: { plain: boolean },
  ) {
    await this.beforeSend?.();
    if (typeof target.route.thread !== "string") {
      throw new ChannelSendError("permanent", "loopback route has no thread", "bad_route");
    }
    if (this.unreachable) throw new ChannelSendError("retry", "connect ECONNREFUSED", "network");
    const failure = this.sendFailures.shift() ?? this.threadFailures.get(target.threadKey)?.shift();
    this.attempts.push({ threadKey: target.threadKey, at: Date.now(), accepted: !failure });
    if (failure) throw failure;
    if (text.trim() === "") {
      this.rejections.push(`empty text for ${target.threadKey}`);
      throw new ChannelSendError("permanent", "empty text", "empty_text");
    }
    this.sent++;
    this.sentTexts.push(text);
    this.delivered.push({
      threadKey: target.threadKey,
      text,
      plain: options.plain,
      inboundId: target.inboundId,
      at: Date.now(),
    });
    return { channelMessageId: `out-${this.delivered.length}` };
  }

  /** Holds every send until the returned function is called (a slow channel); `holding` counts those waiting. */
  hold(): () => void {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.beforeSend = async () => {
      this.holding++;
      await released;
      this.holding--;
    };
    return () => {
      this.beforeSend = undefined;
      release();
    };
  }

  /** The next sends to this thread fail this way, one each, in order (after any `sendFailures`). */
  failThread(threadKey: string, ...failures: ChannelSendError[]): void {
    this.threadFailures.set(threadKey, [...(this.threadFailures.get(threadKey) ?? []), ...failures]);
  }

  /** The texts this instance delivered, in order (the unexpected-failure guard reads them). */
  textsToUsers(): string[] {
    return this.sentTexts;
  }

  /** `rejections`, described. */
  refused(): string[] {
    return this.rejections.map((r) => `loopback: ${r}`);
  }

  /** Deliveries of one thread, in order. */
  thread(threadKey: string): string[] {
    return this.delivered.filter((d) => d.threadKey === threadKey).map((d) => d.text);
  }
}

export const LOOPBACK_SECRET = "loopback-secret";

export function loopbackTenant(id: string, quickchatUrl: string, token = `${id}-token`) {
  return {
    id,
    quickchat: { scenario_id: `${id}-scenario`, token, base_url: quickchatUrl },
    telegram: { bot_token: `1:${id}-bot-token`, webhook_secret: LOOPBACK_SECRET },
  };
}

export function loopbackHeaders(): Record<string, string> {
  return { "x-test-secret": LOOPBACK_SECRET };
}
