/**
 * The loopback channel (test/support/loopback-channel.ts) in the `telegram` slot: JSON webhooks checked
 * against a shared secret, sends recorded in memory. It holds the relay to the contract with no SDK between.
 */
import { ChannelSendError } from "../../../src/channels/types.js";
import {
  LOOPBACK_SECRET,
  LoopbackChannel,
  type LoopbackWebhook,
  loopbackHeaders,
} from "../../support/loopback-channel.js";
import type { ChannelDriver, DriverThread, SendFailure, UserMessage, Webhook } from "../driver.js";

const webhook = (body: LoopbackWebhook, headers = loopbackHeaders()): Webhook => ({
  body: JSON.stringify(body),
  headers: { "content-type": "application/json", ...headers },
});

const sendError = (failure: SendFailure) =>
  failure.kind === "rate_limit"
    ? new ChannelSendError("retry", "429", "429", failure.retryAfterSeconds * 1000)
    : new ChannelSendError("retry", "HTTP 500", "500");

export function loopbackDriver(): ChannelDriver {
  const channel = new LoopbackChannel();
  let threads = 0;
  let messages = 0;
  const message = (thread: DriverThread, text: string, kind?: LoopbackWebhook["kind"]): UserMessage => {
    const id = `loop-message-${++messages}`;
    return {
      webhook: webhook({ id, thread: thread.key, user: `${thread.key}-user`, text, ...(kind && { kind }) }),
      dedupeKey: id,
    };
  };

  return {
    name: "loopback",
    route: "telegram",
    // The slot formats replies for Telegram: its 4096 characters (https://core.telegram.org/bots/api#sendmessage).
    partLimit: 4096,
    ack: { status: 200, body: "" },
    forgedStatus: 401,

    start: async () => {},
    stop: async () => {},
    tenantBlock: () => ({ telegram: { bot_token: "1:loopback", webhook_secret: LOOPBACK_SECRET } }),
    adapters: () => ({ telegram: channel }),

    newThread: () => ({ key: `loop-thread-${++threads}` }),
    text: (thread, text) => message(thread, text),
    unsupported: (thread) => message(thread, "", "unsupported"),
    ignored: (thread) =>
      webhook({ id: `loop-edit-${++messages}`, thread: thread.key, user: "u", text: "", ignored: "an edit" }),
    redelivery: (original) => original.webhook,
    forged: (original) => ({
      ...original,
      headers: { ...original.headers, "x-test-secret": "not-the-secret" },
    }),

    delivered: (thread) => channel.thread(thread.key),
    attempts: (thread) => channel.attempts.filter((a) => a.threadKey === thread.key),
    failNextSend: (thread, failure, times = 1) =>
      channel.failThread(thread.key, ...Array.from({ length: times }, () => sendError(failure))),
    refuseConnections: async () => {
      channel.unreachable = true;
    },
    acceptConnections: async () => {
      channel.unreachable = false;
    },
    watched: () => channel,
  };
}
