/**
 * The worker pool: claims messages from the inbox (or takes them from this process's webhook inserts, the
 * Handoff), within the pool's and each tenant's concurrency, runs each under its lease, and on a stop hands
 * unfinished messages back to the queue.
 */
import type { AdapterMap } from "../channels/types.js";
import type { Database } from "../db/client.js";
import { GroupCommit } from "../db/group-commit.js";
import {
  type ClaimedMessage,
  claimMessages,
  finishAll,
  type Lease,
  release,
  storeReplies,
} from "../db/inbox.js";
import type { Handoff } from "../db/inbox-writer.js";
import { errorFields, type Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { QuickchatClient } from "../quickchat/client.js";
import type { TenantRegistry } from "../tenants/registry.js";
import { type MessageContext, processMessage } from "./message.js";
import type { BackoffPolicy } from "./retry.js";

export interface WorkerOptions {
  /** Messages in progress at once (each mostly waits on Quickchat). */
  concurrency: number;
  /** Messages of one tenant in progress at once, so a flood on one tenant cannot starve the others. */
  tenantConcurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  /** Retryable failures (Quickchat or channel) stop being retried after this long. */
  maxRetryMs: number;
  backoff: BackoffPolicy;
}

export interface WorkerDeps {
  /** This process's id (its heartbeat's): the prefix of every lease owner token, so a lease names its process. */
  processId: string;
  database: Database;
  tenants: TenantRegistry;
  adapters: AdapterMap;
  quickchat: QuickchatClient;
  log: Logger;
  metrics: Metrics;
  options: WorkerOptions;
}

/** At most this many rows per claim query: keeps each claim short under a deep backlog. */
const CLAIM_BATCH = 64;

/**
 * Group commit of replies and final states: one statement of each in flight, the rest gathering for the next.
 * Fewer, larger statements relayed more messages per second than four in flight (docs/performance.md): each
 * statement costs PostgreSQL a plan and a commit, and both processes a wakeup.
 */
const STATE_WRITES = { maxConcurrent: 1, maxSize: 200 };

/**
 * The relay: claims messages from the inbox (or takes them from this process's webhook inserts, see Handoff),
 * asks Quickchat, stores the reply, delivers it part by part.
 * Each step is fenced by the claim's lease, so a worker that lost its lease (crash, pause) writes nothing.
 */
export class WorkerPool implements Handoff {
  private readonly inFlight = new Map<number, Lease>();
  /** Messages in progress per tenant, counting slots reserved for messages being inserted (`reserve`). */
  private readonly perTenant = new Map<string, number>();
  /** Slots held for messages this process's webhooks are inserting (the Handoff). */
  private reserved = 0;
  /** The limit of the claim in flight, if any: its rows are not counted anywhere yet. */
  private claiming = 0;
  private claimCount = 0;
  /** The claim loop, while one runs: a stop waits for it, since a claim in flight hands its rows back. */
  private filling: Promise<void> | undefined;
  private refill = false;
  /**
   * Claimable messages may be waiting that no claim has taken: set by a NOTIFY, the poll and `wake`, and by a
   * claim that came back full or left a tenant at its cap out. A message that ends claims only then, or when
   * its thread has a message waiting behind it (most messages are taken straight from their webhook's insert,
   * and an empty claim per finished message cost as much as the message itself at 200 messages/s).
   */
  private backlog = true;
  /** NOTIFYs received; a message during which one arrived claims when it ends (its insert may have raced
   * this message's final state and found the thread still busy). */
  private notifications = 0;
  private stopping = false;
  /** Set once a stop's timeout has passed: deliveries stop before their next send and hand the message back. */
  private abandoning = false;
  /** Messages in delivery: a send to the channel may be on its way, so a stop waits for these. */
  private readonly delivering = new Set<number>();
  /** Releases of messages handed back during a stop: the stop waits for them before the database closes. */
  private readonly handingBack = new Set<Promise<void>>();
  /** A stop waiting for the pool to change: a message, a delivery, a claim or a webhook's insert ending. */
  private readonly waiters: (() => void)[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  /** What each message runs with; its replies and final states of concurrent messages are written together. */
  private readonly context: MessageContext;

  constructor(private readonly deps: WorkerDeps) {
    const db = deps.database.db;
    this.context = {
      ...deps,
      replies: new GroupCommit((items) => storeReplies(db, items), STATE_WRITES),
      finals: new GroupCommit((items) => finishAll(db, items), STATE_WRITES),
      delivering: this.delivering,
      abandoning: () => this.abandoning,
      changed: () => this.changed(),
    };
  }

  get active(): number {
    return this.inFlight.size;
  }

  get leaseMs(): number {
    return this.deps.options.leaseMs;
  }

  reserve(tenantId: string): string | undefined {
    const { concurrency, tenantConcurrency } = this.deps.options;
    const tenantBusy = this.perTenant.get(tenantId) ?? 0;
    // A claim in flight may bring back up to `claiming` messages, all of one tenant: keep room for them.
    const busy = this.inFlight.size + this.reserved + this.claiming;
    if (this.stopping || busy >= concurrency || tenantBusy + this.claiming >= tenantConcurrency)
      return undefined;
    this.reserved++;
    this.perTenant.set(tenantId, tenantBusy + 1);
    return this.leaseOwner();
  }

  take(message: ClaimedMessage): void {
    this.reserved--;
    if (!this.stopping) {
      this.run(message);
      return;
    }
    // Stopping: the message goes back to the queue at once, for another replica or the next start.
    this.leaveTenant(message.tenantId);
    this.handBack([leaseOf(message)]);
    this.changed();
  }

  cancel(tenantId: string): void {
    this.reserved--;
    this.leaveTenant(tenantId);
    this.changed();
  }

  async start(): Promise<void> {
    this.unlisten = await this.deps.database.listen("bridge_inbox", () => {
      this.notifications++;
      this.wake();
    });
    // Also the only way to messages whose retry came due or whose lease ran out: nothing notifies those.
    this.pollTimer = setInterval(() => this.wake(), this.deps.options.pollIntervalMs);
    this.pollTimer.unref();
    this.wake();
  }

  /** Checks for claimable messages now (also called on NOTIFY and on the poll). */
  wake(): void {
    this.backlog = true;
    this.fill();
  }

  /**
   * Stops claiming, lets claimed messages finish for up to `timeoutMs`, then returns the rest to the queue
   * (their leases are released, so another worker or the next start takes them at once). A send already on
   * its way to the channel is waited for first: handing its message back would have it sent again.
   * Messages leased while the stop waits (by a claim or a webhook's insert already in flight) are handed
   * back too: left leased, they would wait out their lease, and a claim's would be asked of Quickchat twice.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.pollTimer);
    await this.unlisten?.().catch(() => {});
    await Promise.race([
      this.until(() => this.inFlight.size === 0 && !this.filling && this.reserved === 0),
      new Promise((resolve) => setTimeout(resolve, timeoutMs).unref()),
    ]);
    this.abandoning = true;
    await this.until(() => this.delivering.size === 0);
    const left = [...this.inFlight.values()];
    this.handBack(left);
    await Promise.all(this.handingBack);
    if (left.length > 0)
      this.deps.log.warn({ returned: left.length }, "returned unfinished messages to the queue");
  }

  /** Releases these leases; a failure is logged, and the messages wait out their leases instead. */
  private handBack(leases: Lease[]): void {
    if (leases.length === 0) return;
    const released: Promise<void> = release(this.deps.database.db, leases)
      .catch((err: unknown) => {
        this.deps.log.warn(
          { msg_ids: leases.map((l) => l.id), ...errorFields(err) },
          "could not return messages to the queue; they go back when this process unregisters, or are taken over once it is silent",
        );
      })
      .finally(() => this.handingBack.delete(released));
    this.handingBack.add(released);
  }

  private async until(done: () => boolean): Promise<void> {
    while (!done()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private changed(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  private fill(): void {
    if (this.stopping) return;
    if (this.filling) {
      this.refill = true;
      return;
    }
    this.filling = this.claimWhileFree().finally(() => {
      this.filling = undefined;
      this.changed();
    });
  }

  /** Claims due messages while the pool has free slots (and again when a claim is asked for meanwhile). */
  private async claimWhileFree(): Promise<void> {
    try {
      do {
        this.refill = false;
        while (!this.stopping) {
          const free = this.deps.options.concurrency - this.inFlight.size - this.reserved;
          if (free <= 0) break;
          const cap = this.deps.options.tenantConcurrency;
          const busy = [...this.perTenant];
          // A batch may be all one tenant's: claiming no more than the least headroom of any tenant keeps
          // every tenant within its cap, so nothing claimed is ever handed back (a flood at the cap would
          // otherwise churn a batch per finished message). Tenants at their cap are left out of the claim.
          const headroom = Math.min(cap, ...busy.map(([, n]) => cap - n).filter((h) => h > 0));
          const limit = Math.min(free, CLAIM_BATCH, headroom);
          const excludeTenants = busy.filter(([, n]) => n >= cap).map(([id]) => id);
          this.claiming = limit;
          // Anything that arrives during the claim sets it again.
          this.backlog = false;
          const rows = await claimMessages(this.deps.database.db, {
            limit,
            leaseMs: this.deps.options.leaseMs,
            owner: this.leaseOwner(),
            excludeTenants,
          }).finally(() => {
            this.claiming = 0;
          });
          if (this.stopping) {
            this.handBack(rows.map(leaseOf));
            return;
          }
          if (rows.length === limit || excludeTenants.length > 0) this.backlog = true;
          for (const row of rows) {
            this.perTenant.set(row.tenantId, (this.perTenant.get(row.tenantId) ?? 0) + 1);
            this.run(row);
          }
          if (rows.length < limit) break;
        }
      } while (this.refill && !this.stopping);
    } catch (err) {
      this.deps.log.error(errorFields(err), "claiming messages failed; will retry on the next poll");
    }
  }

  private leaseOwner(): string {
    return `${this.deps.processId}:${++this.claimCount}`;
  }

  private leaveTenant(tenantId: string): void {
    const left = (this.perTenant.get(tenantId) ?? 1) - 1;
    if (left > 0) this.perTenant.set(tenantId, left);
    else this.perTenant.delete(tenantId);
  }

  /** Runs a message whose tenant slot is already counted in `perTenant`. */
  private run(row: ClaimedMessage): void {
    const lease = leaseOf(row);
    this.inFlight.set(row.id, lease);
    this.deps.metrics.inFlight.set(this.inFlight.size);
    const notifications = this.notifications;
    processMessage(this.context, row, lease)
      .catch((err: unknown) => {
        // Database trouble mid-message: the lease expires and the message is taken up again.
        this.deps.log.error({ msg_id: row.id, ...errorFields(err) }, "processing failed; will retry");
        return false;
      })
      .then((successorWaiting) => {
        this.inFlight.delete(row.id);
        this.leaveTenant(row.tenantId);
        this.deps.metrics.inFlight.set(this.inFlight.size);
        this.changed();
        if (successorWaiting || this.notifications !== notifications) this.backlog = true;
        if (this.backlog) this.fill();
      });
  }
}

const leaseOf = (message: ClaimedMessage): Lease => ({ id: message.id, owner: message.leaseOwner ?? "" });
