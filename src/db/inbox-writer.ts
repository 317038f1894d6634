import type { InboundMessage } from "../channels/types.js";
import type { Db } from "./client.js";
import { GroupCommit } from "./group-commit.js";
import {
  type ClaimedMessage,
  type InboxInsert,
  insertInKnownThread,
  insertRows,
  messageKey,
  rowValues,
  threadOf,
} from "./inbox.js";

export interface InboxWriterOptions {
  /** Statements in flight at once; webhooks arriving meanwhile join the next statement. */
  maxConcurrent: number;
  /** Rows per statement at most. */
  maxRows: number;
}

/**
 * Two inserts in flight: one waiting on PostgreSQL while the next gathers. Four made smaller statements and
 * acknowledged fewer webhooks per second. One cost PostgreSQL less CPU per webhook but acknowledged WhatsApp
 * webhooks about 10% slower at saturation (docs/performance.md; round 7 in its git history).
 */
const WEBHOOK_WRITES: InboxWriterOptions = { maxConcurrent: 2, maxRows: 500 };

/**
 * A worker in the same process that takes new messages straight from the insert: the insert leases them,
 * so they skip the NOTIFY and the claim (two round trips and a commit each).
 */
export interface Handoff {
  readonly leaseMs: number;
  /** A slot and a lease owner token for a message of this tenant, or undefined when the worker is full. */
  reserve(tenantId: string): string | undefined;
  /** The insert leased the message: run it in the slot reserved for it. */
  take(message: ClaimedMessage): void;
  /** The message was not leased (its thread is busy, or it was a redelivery): the slot is free again. */
  cancel(tenantId: string): void;
}

/**
 * Group commit for the webhook path (GroupCommit): webhooks that arrive while earlier inserts are in flight
 * are written together, in one multi-row `INSERT … ON CONFLICT DO NOTHING`, with one NOTIFY. A request still
 * waits for the statement that carries its rows, so its ack means "stored". A thread's webhooks are written
 * one statement after another: two statements in flight may take their ids in either order, and a thread's
 * messages must be numbered as they arrived (the claim and the lease go by id).
 */
export class InboxWriter {
  private readonly group: GroupCommit<InboxInsert[], number>;

  constructor(
    private readonly db: Db,
    options: InboxWriterOptions = WEBHOOK_WRITES,
    private readonly handoff?: Handoff,
  ) {
    this.group = new GroupCommit((webhooks) => this.write(webhooks), {
      maxConcurrent: options.maxConcurrent,
      maxSize: options.maxRows,
      sizeOf: (rows) => rows.length,
      keysOf: (rows) => rows.map(threadOf),
    });
  }

  /** Stores a webhook's messages; resolves to how many were new (redeliveries are not). */
  async store(tenantId: string, channel: string, messages: InboundMessage[]): Promise<number> {
    const rows = messages.filter((m) => !m.onlyInKnownThread).map((m) => rowValues(tenantId, channel, m));
    let stored = rows.length > 0 ? await this.group.submit(rows) : 0;
    // Conditional rows (thread follow-ups) need their own statement: rare, and never batched.
    for (const m of messages.filter((x) => x.onlyInKnownThread))
      stored += await insertInKnownThread(this.db, rowValues(tenantId, channel, m));
    return stored;
  }

  /** One statement for these webhooks' rows; how many of each webhook's rows were new. */
  private async write(webhooks: InboxInsert[][]): Promise<number[]> {
    const rows = this.offerLeases(webhooks.flat());
    let inserted: Awaited<ReturnType<typeof insertRows>>;
    try {
      inserted = await insertRows(this.db, rows);
    } catch (err) {
      for (const row of rows) if (row.lease_owner) this.handoff?.cancel(row.tenant_id);
      throw err;
    }
    for (const row of rows) {
      if (!row.lease_owner) continue;
      const stored = inserted.get(messageKey(row));
      if (stored?.leased) this.handoff?.take(claimedMessage(row, stored.id, stored.convId));
      else this.handoff?.cancel(row.tenant_id);
    }
    // A key sent twice in one statement (a racing redelivery) counts as new for the first request only.
    return webhooks.map((webhook) => webhook.filter((row) => inserted.delete(messageKey(row))).length);
  }

  /**
   * Asks the worker for a slot for the first row of each thread in the statement (no other statement in
   * flight has rows of these threads). Returns copies: a failed statement is retried per webhook, which asks
   * again.
   */
  private offerLeases(rows: InboxInsert[]): InboxInsert[] {
    const handoff = this.handoff;
    if (!handoff) return rows;
    const seen = new Set<string>();
    return rows.map((row) => {
      const thread = threadOf(row);
      const first = !seen.has(thread);
      seen.add(thread);
      const owner = first ? handoff.reserve(row.tenant_id) : undefined;
      return owner ? { ...row, lease_owner: owner, lease_ms: handoff.leaseMs } : row;
    });
  }
}

/** The message as a claim would have returned it: fresh, pending, leased to `row.lease_owner`. */
function claimedMessage(row: InboxInsert, id: number, convId: string | null): ClaimedMessage {
  return {
    id,
    tenantId: row.tenant_id,
    channel: row.channel,
    threadKey: row.thread_key,
    kind: row.kind,
    text: row.text,
    sender: row.sender,
    route: row.route,
    status: "pending",
    attempts: 0,
    giveUpAt: null,
    leaseOwner: row.lease_owner ?? null,
    replyHtml: null,
    error: null,
    convId,
  };
}
