import { and, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { conversations, inboundMessages, PRUNABLE } from "../db/schema.js";
import { errorFields, type Logger } from "../log.js";

export interface RetentionPolicy {
  /** Finished messages lose their text (and reply) after this many days. */
  messageDays: number;
  /** Conversations idle this long are forgotten: the thread's next message starts a new one. */
  conversationDays: number;
  /** Rows per statement, so pruning never holds long locks on a busy inbox. */
  batchSize: number;
}

const DAY_MS = 86_400_000;

/** One pass over both tables, in small batches; returns what it pruned. */
export async function pruneOnce(
  db: Db,
  policy: RetentionPolicy,
  now: Date,
): Promise<{ messages: number; conversations: number }> {
  const messageCutoff = new Date(now.getTime() - policy.messageDays * DAY_MS);
  const conversationCutoff = new Date(now.getTime() - policy.conversationDays * DAY_MS);
  let messages = 0;
  let forgotten = 0;
  for (;;) {
    const pruned = await db
      .update(inboundMessages)
      .set({ text: null, replyHtml: null })
      .where(inArray(inboundMessages.id, prunableBatch(db, messageCutoff, policy.batchSize)))
      .returning({ id: inboundMessages.id });
    messages += pruned.length;
    if (pruned.length < policy.batchSize) break;
  }
  for (;;) {
    const deleted = await db
      .delete(conversations)
      .where(
        sql`(${conversations.tenantId}, ${conversations.channel}, ${conversations.threadKey}) in (
          select tenant_id, channel, thread_key from ${conversations}
          where ${conversations.updatedAt} < ${conversationCutoff.toISOString()}::timestamptz
          limit ${policy.batchSize})`,
      )
      .returning({ convId: conversations.convId });
    forgotten += deleted.length;
    if (deleted.length < policy.batchSize) break;
  }
  return { messages, conversations: forgotten };
}

/**
 * Up to `limit` finished messages older than `cutoff` that still hold text: read through the partial index
 * `inbound_prunable_idx`, whose predicate this repeats word for word (literals, not parameters, so the planner
 * can match it), and which pruned messages leave. Through the status index each batch read every message
 * pruned before it.
 */
export function prunableBatch(db: Db, cutoff: Date, limit: number) {
  return db
    .select({ id: inboundMessages.id })
    .from(inboundMessages)
    .where(and(PRUNABLE, lt(inboundMessages.updatedAt, cutoff)))
    .limit(limit);
}

/** Runs `pruneOnce` now and every `intervalMs`; returns the stop function. */
export function startRetention(
  db: Db,
  policy: RetentionPolicy,
  intervalMs: number,
  log: Logger,
  clock: () => Date = () => new Date(),
): () => void {
  const run = () =>
    pruneOnce(db, policy, clock()).then(
      (pruned) => {
        if (pruned.messages + pruned.conversations > 0) log.info(pruned, "retention: pruned old data");
      },
      (err: unknown) => log.error(errorFields(err), "retention pass failed"),
    );
  void run();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
