import type { ChannelName, InboundMessage } from "../channels/types.js";
import type { Db } from "./client.js";
import {
  type ClaimedMessage,
  type InboxInsert,
  insertInKnownThread,
  insertRows,
  messageKey,
  rowValues,
} from "./inbox.js";

interface Waiting {
  rows: InboxInsert[];
  resolve(stored: number): void;
  reject(err: unknown): void;
}

export interface InboxWriterOptions {
  /** Statements in flight at once; webhooks arriving meanwhile join the next statement. */
  maxConcurrent: number;
  /** Rows per statement at most. */
  maxRows: number;
}

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
 * Group commit for the webhook path. Webhooks that arrive while earlier inserts are in flight are written
 * together, in one multi-row `INSERT … ON CONFLICT DO NOTHING`: one round trip, one commit (one WAL flush)
 * and one NOTIFY for many messages. A request still waits for the statement that carries its rows, so its
 * ack means "stored". When nothing is in flight a webhook is written at once, so a quiet bridge adds no wait.
 */
export class InboxWriter {
  private queue: Waiting[] = [];
  private running = 0;
  /** Threads with rows in a statement in flight (see takeBatch). */
  private readonly threadsInFlight = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly options: InboxWriterOptions = { maxConcurrent: 4, maxRows: 500 },
    private readonly handoff?: Handoff,
  ) {}

  /** Stores a webhook's messages; resolves to how many were new (redeliveries are not). */
  async store(tenantId: string, channel: ChannelName, messages: InboundMessage[]): Promise<number> {
    const rows = messages.filter((m) => !m.onlyInKnownThread).map((m) => rowValues(tenantId, channel, m));
    let stored = rows.length > 0 ? await this.enqueue(rows) : 0;
    // Conditional rows (thread follow-ups) need their own statement: rare, and never batched.
    for (const m of messages.filter((x) => x.onlyInKnownThread))
      stored += await insertInKnownThread(this.db, rowValues(tenantId, channel, m));
    return stored;
  }

  private enqueue(rows: InboxInsert[]): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      if (this.running < this.options.maxConcurrent) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    const threads = batch.flatMap((w) => w.rows.map(threadOf));
    for (const t of threads) this.threadsInFlight.set(t, (this.threadsInFlight.get(t) ?? 0) + 1);
    this.running++;
    try {
      await this.write(batch);
    } finally {
      this.running--;
      for (const t of threads) {
        const left = (this.threadsInFlight.get(t) ?? 1) - 1;
        if (left > 0) this.threadsInFlight.set(t, left);
        else this.threadsInFlight.delete(t);
      }
      if (this.queue.length > 0) void this.flush();
    }
  }

  /**
   * The next statement's webhooks, in arrival order, up to `maxRows` rows. A webhook of a thread that has rows
   * in a statement in flight waits for it: two statements at once may take their ids in either order, and a
   * thread's messages must be numbered as they arrived (the claim and the lease go by id).
   */
  private takeBatch(): Waiting[] {
    const batch: Waiting[] = [];
    let size = 0;
    for (let i = 0; i < this.queue.length; ) {
      const next = this.queue[i]!;
      if (next.rows.some((row) => this.threadsInFlight.has(threadOf(row)))) {
        i++;
        continue;
      }
      if (batch.length > 0 && size + next.rows.length > this.options.maxRows) break;
      this.queue.splice(i, 1);
      batch.push(next);
      size += next.rows.length;
    }
    return batch;
  }

  private async write(batch: Waiting[]): Promise<void> {
    const rows = this.offerLeases(batch.flatMap((w) => w.rows));
    let inserted: Awaited<ReturnType<typeof insertRows>>;
    try {
      inserted = await insertRows(this.db, rows);
    } catch (err) {
      for (const row of rows) if (row.lease_owner) this.handoff?.cancel(row.tenant_id);
      // One bad row must not fail its neighbours: retry each webhook alone, so only its own request fails.
      if (batch.length === 1) return batch[0]!.reject(err);
      await Promise.all(batch.map((w) => this.write([w])));
      return;
    }
    for (const row of rows) {
      if (!row.lease_owner) continue;
      const stored = inserted.get(messageKey(row));
      if (stored?.leased) this.handoff?.take(claimedMessage(row, stored.id, stored.convId));
      else this.handoff?.cancel(row.tenant_id);
    }
    // A key sent twice in one statement (a racing redelivery) counts as new for the first request only.
    for (const waiting of batch) {
      let stored = 0;
      for (const row of waiting.rows) if (inserted.delete(messageKey(row))) stored++;
      waiting.resolve(stored);
    }
  }

  /**
   * Asks the worker for a slot for the first row of each thread in the statement (no other statement in
   * flight has rows of these threads). Returns copies: a failed batch is retried per webhook, and asks again.
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

const threadOf = (r: InboxInsert) => `${r.tenant_id}\u0000${r.channel}\u0000${r.thread_key}`;

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
