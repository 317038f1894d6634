import { z } from "zod";
import { CHANNEL_FORMATS } from "../../src/channels/registry.js";
import { safeEqual } from "../../src/channels/shared.js";
import type { TelegramConfig } from "../../src/channels/telegram/config.js";
import type { ChannelAdapter, ChannelSendError, InboundMessage } from "../../src/channels/types.js";
import { badRequest, unauthorized } from "../../src/errors.js";

/** A message the loopback channel delivered. */
export interface Delivered {
  threadKey: string;
  text: string;
  plain: boolean;
  inboundId: string;
  at: number;
}

const webhookBody = z.object({
  id: z.string().min(1),
  thread: z.string().min(1),
  user: z.string().min(1),
  text: z.string(),
  kind: z.enum(["text", "start", "reset", "unsupported"]).default("text"),
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
  readonly sendFailures: ChannelSendError[] = [];
  /** Called before each send: lets a test hold a send (crash-in-delivery scenarios). */
  beforeSend: (() => Promise<void>) | undefined;

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
    const message: InboundMessage = {
      threadKey: parsed.thread,
      dedupeKey: parsed.id,
      kind: parsed.kind,
      text: parsed.text,
      sender: { id: parsed.user },
      route: { thread: parsed.thread },
    };
    return { type: "messages" as const, messages: [message] };
  }

  ack() {
    return new Response(null, { status: 200 });
  }

  async send(target: { threadKey: string; inboundId: string }, text: string, options: { plain: boolean }) {
    await this.beforeSend?.();
    const failure = this.sendFailures.shift();
    if (failure) throw failure;
    this.sent++;
    this.delivered.push({
      threadKey: target.threadKey,
      text,
      plain: options.plain,
      inboundId: target.inboundId,
      at: Date.now(),
    });
    return { channelMessageId: `out-${this.delivered.length}` };
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
    telegram: { bot_token: `${id}:bot-token`, webhook_secret: LOOPBACK_SECRET },
  };
}

export function loopbackHeaders(): Record<string, string> {
  return { "x-test-secret": LOOPBACK_SECRET };
}
