import type { ChannelName, InboundMessage } from "../channels/types.js";
import type { Db } from "./client.js";
import { type InboxInsert, insertInKnownThread, insertRows, messageKey, rowValues } from "./inbox.js";

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
 * Group commit for the webhook path. Webhooks that arrive while earlier inserts are in flight are written
 * together, in one multi-row `INSERT … ON CONFLICT DO NOTHING`: one round trip, one commit (one WAL flush)
 * and one NOTIFY for many messages. A request still waits for the statement that carries its rows, so its
 * ack means "stored". When nothing is in flight a webhook is written at once, so a quiet bridge adds no wait.
 */
export class InboxWriter {
  private queue: Waiting[] = [];
  private running = 0;

  constructor(
    private readonly db: Db,
    private readonly options: InboxWriterOptions = { maxConcurrent: 4, maxRows: 500 },
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
    const batch: Waiting[] = [];
    let size = 0;
    while (
      this.queue.length > 0 &&
      (batch.length === 0 || size + this.queue[0]!.rows.length <= this.options.maxRows)
    ) {
      const next = this.queue.shift()!;
      batch.push(next);
      size += next.rows.length;
    }
    if (batch.length === 0) return;
    this.running++;
    try {
      await this.write(batch);
    } finally {
      this.running--;
      if (this.queue.length > 0) void this.flush();
    }
  }

  private async write(batch: Waiting[]): Promise<void> {
    let inserted: Set<string>;
    try {
      inserted = await insertRows(
        this.db,
        batch.flatMap((w) => w.rows),
      );
    } catch (err) {
      // One bad row must not fail its neighbours: retry each webhook alone, so only its own request fails.
      if (batch.length === 1) return batch[0]!.reject(err);
      await Promise.all(batch.map((w) => this.write([w])));
      return;
    }
    // A key sent twice in one statement (a racing redelivery) counts as new for the first request only.
    for (const waiting of batch) {
      let stored = 0;
      for (const row of waiting.rows) if (inserted.delete(messageKey(row))) stored++;
      waiting.resolve(stored);
    }
  }
}
