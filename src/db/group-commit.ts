interface Waiting<T, R> {
  item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export interface GroupCommitOptions<T> {
  /** Statements in flight at once; items submitted meanwhile go together into the next statement. */
  maxConcurrent: number;
  /** Size of one statement at most, in `sizeOf` units (one per item by default). */
  maxSize: number;
  sizeOf?(item: T): number;
  /**
   * Keys that order items: an item waits while an earlier statement still in flight holds one of its keys, so
   * items sharing a key are written in the order they were submitted, never by two statements at once.
   */
  keysOf?(item: T): string[];
}

/**
 * Group commit: concurrent callers' writes become one statement (one round trip, one commit, one WAL flush)
 * instead of one each. A caller still waits for the statement that carries its item, so its promise resolving
 * means "written". With nothing in flight an item is written at once, so a quiet service adds no wait.
 * When a statement of several items fails, each item is retried alone, so only a bad item fails its caller.
 */
export class GroupCommit<T, R> {
  private readonly queue: Waiting<T, R>[] = [];
  private running = 0;
  private readonly keysInFlight = new Map<string, number>();

  constructor(
    /** Writes the items in one statement; returns one result per item, in order. */
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly options: GroupCommitOptions<T>,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.running < this.options.maxConcurrent) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    const keys = batch.flatMap((w) => this.options.keysOf?.(w.item) ?? []);
    for (const key of keys) this.keysInFlight.set(key, (this.keysInFlight.get(key) ?? 0) + 1);
    this.running++;
    try {
      await this.settle(batch);
    } finally {
      this.running--;
      for (const key of keys) {
        const left = (this.keysInFlight.get(key) ?? 1) - 1;
        if (left > 0) this.keysInFlight.set(key, left);
        else this.keysInFlight.delete(key);
      }
      if (this.queue.length > 0) void this.flush();
    }
  }

  /** The next statement's items, in submission order, skipping those whose keys are in flight. */
  private takeBatch(): Waiting<T, R>[] {
    const { maxSize, sizeOf = () => 1, keysOf } = this.options;
    const batch: Waiting<T, R>[] = [];
    let size = 0;
    for (let i = 0; i < this.queue.length; ) {
      const next = this.queue[i]!;
      if (keysOf?.(next.item).some((key) => this.keysInFlight.has(key))) {
        i++;
        continue;
      }
      if (batch.length > 0 && size + sizeOf(next.item) > maxSize) break;
      this.queue.splice(i, 1);
      batch.push(next);
      size += sizeOf(next.item);
    }
    return batch;
  }

  private async settle(batch: Waiting<T, R>[]): Promise<void> {
    let results: R[];
    try {
      results = await this.write(batch.map((w) => w.item));
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      await Promise.all(batch.map((w) => this.settle([w])));
      return;
    }
    for (const [i, w] of batch.entries()) w.resolve(results[i]!);
  }
}
