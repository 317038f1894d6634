/**
 * Asking for a message's reply: the bridge's own texts for its kind (reset, unsupported, greeting), else
 * Quickchat's answer, with Quickchat's error policy (a new conversation, a retry later, or the `unavailable`
 * text).
 */
import type { ChannelAdapter, DeliveryTarget } from "../channels/types.js";
import type { TenantConfig } from "../config/schema.js";
import { deleteConversation, type ThreadRef } from "../db/conversations.js";
import type { ClaimedMessage } from "../db/inbox.js";
import type { Logger } from "../log.js";
import { QuickchatError } from "../quickchat/client.js";
import { buildClientMetadata } from "../quickchat/metadata.js";
import type { WorkerDeps } from "./pool.js";
import { type Retry, retryOrGiveUp } from "./retry.js";

/** What asking for a reply produced: a reply to deliver (maybe a failure text) or a later retry. */
export type Answer = { type: "reply"; html: string; convId?: string; error?: string } | Retry;

/** Decides the reply: a bridge text, Quickchat's answer, the `unavailable` text, or a retry later. */
export async function answer(
  deps: WorkerDeps,
  row: ClaimedMessage,
  tenant: TenantConfig,
  adapter: ChannelAdapter<unknown>,
  target: DeliveryTarget<unknown>,
  log: Logger,
): Promise<Answer> {
  const db = deps.database.db;
  const thread: ThreadRef = { tenantId: row.tenantId, channel: row.channel, threadKey: row.threadKey };
  switch (row.kind) {
    case "reset":
      await deleteConversation(db, thread);
      return { type: "reply", html: tenant.texts.reset };
    case "unsupported":
      return { type: "reply", html: tenant.texts.unsupported };
    default: {
      // `start` begins a new conversation; a bare /start or a bare mention (empty text) sends the greeting.
      const fresh = row.kind === "start";
      if (fresh) await deleteConversation(db, thread);
      const convId = fresh ? undefined : (row.convId ?? undefined);
      return askQuickchat(deps, row, tenant, adapter, target, row.text || tenant.texts.greeting, convId, log);
    }
  }
}

async function askQuickchat(
  deps: WorkerDeps,
  row: ClaimedMessage,
  tenant: TenantConfig,
  adapter: ChannelAdapter<unknown>,
  target: DeliveryTarget<unknown>,
  text: string,
  convId: string | undefined,
  log: Logger,
): Promise<Answer> {
  const userName =
    row.sender.name ?? (await adapter.senderName?.(target, row.sender.id).catch(() => undefined));
  const clientMetadata = buildClientMetadata({
    channel: row.channel,
    channelUserId: row.sender.id,
    threadKey: row.threadKey,
    userName,
    kbTopic: tenant.quickchat.kb_topic,
  });
  const { metrics } = deps;
  const chat = async (conv: string | undefined) => {
    const timer = metrics.quickchatLatency.startTimer({ tenant: tenant.id });
    try {
      return await deps.quickchat.chat(tenant.quickchat, { text, convId: conv, clientMetadata });
    } catch (err) {
      if (err instanceof QuickchatError) metrics.quickchatErrors.inc({ tenant: tenant.id, class: err.kind });
      throw err;
    } finally {
      timer();
    }
  };
  try {
    try {
      const reply = await chat(convId);
      return { type: "reply", html: reply.reply, convId: reply.convId };
    } catch (err) {
      if (!(err instanceof QuickchatError && err.kind === "invalid_conversation" && convId)) throw err;
      log.info("Quickchat no longer knows the conversation; starting a new one");
      const reply = await chat(undefined);
      return { type: "reply", html: reply.reply, convId: reply.convId };
    }
  } catch (err) {
    if (!(err instanceof QuickchatError)) throw err;
    if (err.kind === "retryable") {
      const retry = retryOrGiveUp(row, deps.options, err.message, err.retryAfterMs);
      if (retry) return retry;
      log.error({ err: err.message }, "Quickchat retries exhausted; sending the unavailable text");
    } else {
      log.error({ err: err.message, status: err.status }, "Quickchat rejected the request: check the tenant");
    }
    return { type: "reply", html: tenant.texts.unavailable, error: err.message };
  }
}
