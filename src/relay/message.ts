/**
 * One claimed message, run to its end or its next retry: its tenant and channel looked up, the "typing…"
 * signal, the reply asked for and stored (a message claimed again after that goes straight to delivery),
 * then delivery; its lease is renewed throughout.
 */
import { storableText } from "../channels/shared.js";
import type { DeliveryTarget } from "../channels/types.js";
import type { GroupCommit } from "../db/group-commit.js";
import { type ClaimedMessage, type Lease, renewLease, reschedule, type StoredReply } from "../db/inbox.js";
import { TenantUnreadableError } from "../tenants/registry.js";
import { answer } from "./answer.js";
import { type DeliveryDeps, deliver } from "./deliver.js";
import type { WorkerDeps } from "./pool.js";
import { backoffDelay } from "./retry.js";
import { startTyping } from "./typing.js";

/** What running a message needs from the worker pool. */
export interface MessageContext extends WorkerDeps, DeliveryDeps {
  /** Replies of concurrent messages, written together; false when the lease was lost. */
  replies: GroupCommit<StoredReply, boolean>;
  /** Messages in delivery: a send to the channel may be on its way, so a stop waits for these. */
  delivering: Set<number>;
  /** Tells a waiting stop that the pool changed. */
  changed: () => void;
}

/** Runs one message to its end or its next retry; true when its end left a message of its thread claimable. */
export async function processMessage(
  ctx: MessageContext,
  row: ClaimedMessage,
  lease: Lease,
): Promise<boolean> {
  const { database, options } = ctx;
  const startedAt = performance.now();
  const log = ctx.log.child({ tenant: row.tenantId, channel: row.channel, msg_id: row.id });
  const renewal = setInterval(() => {
    renewLease(database.db, lease, options.leaseMs).catch(() => {});
  }, options.leaseMs / 3);
  renewal.unref();
  try {
    const tenant = await ctx.tenants.get(row.tenantId).catch((err: unknown) => {
      if (err instanceof TenantUnreadableError) return null;
      throw err;
    });
    if (tenant === null) {
      // Mid key rotation this process may lack the key the tenant was sealed with: wait, never fail.
      const delayMs = backoffDelay(row.attempts, options.backoff);
      log.warn(
        { delay_ms: Math.round(delayMs) },
        "tenant cannot be read with this process's keys; retrying later",
      );
      await reschedule(database.db, lease, delayMs, undefined);
      return false;
    }
    const adapter = ctx.adapters[row.channel];
    const config = tenant && adapter?.config(tenant);
    if (!tenant || !adapter || config === undefined) {
      log.warn("tenant or channel no longer configured; message failed");
      return await ctx.finals.submit({
        lease,
        status: "failed",
        error: "tenant or channel no longer configured",
      });
    }
    const target: DeliveryTarget<unknown> = {
      tenant,
      config,
      route: row.route,
      threadKey: row.threadKey,
      inboundId: String(row.id),
    };
    const stopTyping = row.status === "pending" ? startTyping(adapter, target, log) : () => {};
    try {
      let reply = { html: row.replyHtml ?? "", error: row.error ?? undefined };
      if (row.status === "pending") {
        const answered = await answer(ctx, row, tenant, adapter, target, log);
        if (answered.type === "retry") {
          log.warn(
            { err: answered.error, delay_ms: Math.round(answered.delayMs) },
            "Quickchat unavailable; retrying later",
          );
          await reschedule(database.db, lease, answered.delayMs, answered.error, answered.giveUpAt);
          return false;
        }
        const thread = { tenantId: row.tenantId, channel: row.channel, threadKey: row.threadKey };
        const conversation = answered.convId ? { ...thread, convId: answered.convId } : undefined;
        // Quickchat's HTML could carry a NUL, which the reply column cannot hold.
        const html = storableText(answered.html);
        const stored = await ctx.replies.submit({
          lease,
          html,
          ...(answered.error && { error: answered.error }),
          ...(conversation && { conversation }),
        });
        if (!stored) {
          log.warn("lease lost before the reply was stored; another worker has the message");
          return false;
        }
        reply = { html, error: answered.error };
      }
      // Storing the reply gave delivery a fresh retry window.
      const delivering = row.status === "pending" ? { ...row, attempts: 0, giveUpAt: null } : row;
      ctx.delivering.add(row.id);
      try {
        return await deliver(ctx, delivering, lease, adapter, target, reply, log, startedAt);
      } finally {
        ctx.delivering.delete(row.id);
        ctx.changed();
      }
    } finally {
      stopTyping();
    }
  } finally {
    clearInterval(renewal);
  }
}
