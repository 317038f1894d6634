import { randomUUID } from "node:crypto";
import { storableText } from "../channels/shared.js";
import {
  type ChannelAdapter,
  type ChannelName,
  ChannelSendError,
  type DeliveryTarget,
  type SentPart,
} from "../channels/types.js";
import type { TenantConfig } from "../config/schema.js";
import type { Database } from "../db/client.js";
import { deleteConversation, type ThreadRef } from "../db/conversations.js";
import { GroupCommit } from "../db/group-commit.js";
import {
  type ClaimedMessage,
  claimMessages,
  type FinalState,
  finishAll,
  type Lease,
  release,
  renewLease,
  reschedule,
  type StoredReply,
  storeReplies,
  updateRoute,
} from "../db/inbox.js";
import type { Handoff } from "../db/inbox-writer.js";
import { type PartRecord, recordPart, sentParts } from "../db/outbound.js";
import { type FormattedPart, formatReply } from "../format/index.js";
import { errorFields, type Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { QuickchatClient } from "../quickchat/client.js";
import { QuickchatError } from "../quickchat/client.js";
import { buildClientMetadata } from "../quickchat/metadata.js";
import { type TenantRegistry, TenantUnreadableError } from "../tenants/registry.js";
import { type BackoffPolicy, backoffDelay } from "./retry.js";
import { startTyping } from "./typing.js";

export type AdapterMap = Partial<Record<ChannelName, ChannelAdapter<unknown>>>;

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

/** What asking for a reply produced: a reply to deliver (maybe a failure text) or a later retry. */
type Answer =
  | { type: "reply"; html: string; convId?: string; error?: string }
  | { type: "retry"; delayMs: number; error: string; giveUpAt: Date };

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
  private readonly processId = randomUUID().slice(0, 8);
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
  /** Replies and final states of concurrent messages are written together (group commit). */
  private readonly replies: GroupCommit<StoredReply, boolean>;
  /** Per final state: whether its thread has a message waiting behind it. */
  private readonly finals: GroupCommit<FinalState, boolean>;

  constructor(private readonly deps: WorkerDeps) {
    const db = deps.database.db;
    this.replies = new GroupCommit((items) => storeReplies(db, items), STATE_WRITES);
    this.finals = new GroupCommit((items) => finishAll(db, items), STATE_WRITES);
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
          "could not return messages to the queue; they are taken up again when their leases expire",
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
    return `${this.processId}:${++this.claimCount}`;
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
    this.process(row, lease)
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

  /** Runs one message to its end or its next retry; true when its end left a message of its thread claimable. */
  private async process(row: ClaimedMessage, lease: Lease): Promise<boolean> {
    const { database, options } = this.deps;
    const log = this.deps.log.child({ tenant: row.tenantId, channel: row.channel, msg_id: row.id });
    const renewal = setInterval(() => {
      renewLease(database.db, lease, options.leaseMs).catch(() => {});
    }, options.leaseMs / 3);
    renewal.unref();
    try {
      const tenant = await this.deps.tenants.get(row.tenantId).catch((err: unknown) => {
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
      const adapter = this.deps.adapters[row.channel as ChannelName];
      const config = tenant && adapter?.config(tenant);
      if (!tenant || !adapter || config === undefined) {
        log.warn("tenant or channel no longer configured; message failed");
        return await this.finals.submit({
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
          const answer = await this.answer(row, tenant, adapter, target, log);
          if (answer.type === "retry") {
            log.warn(
              { err: answer.error, delay_ms: Math.round(answer.delayMs) },
              "Quickchat unavailable; retrying later",
            );
            await reschedule(database.db, lease, answer.delayMs, answer.error, answer.giveUpAt);
            return false;
          }
          const thread = { tenantId: row.tenantId, channel: row.channel, threadKey: row.threadKey };
          const conversation = answer.convId ? { ...thread, convId: answer.convId } : undefined;
          // Quickchat's HTML could carry a NUL, which the reply column cannot hold.
          const html = storableText(answer.html);
          const stored = await this.replies.submit({
            lease,
            html,
            ...(answer.error && { error: answer.error }),
            ...(conversation && { conversation }),
          });
          if (!stored) {
            log.warn("lease lost before the reply was stored; another worker has the message");
            return false;
          }
          reply = { html, error: answer.error };
        }
        // Storing the reply gave delivery a fresh retry window.
        const delivering = row.status === "pending" ? { ...row, attempts: 0, giveUpAt: null } : row;
        this.delivering.add(row.id);
        try {
          return await this.deliver(delivering, lease, adapter, target, reply, log);
        } finally {
          this.delivering.delete(row.id);
          this.changed();
        }
      } finally {
        stopTyping();
      }
    } finally {
      clearInterval(renewal);
    }
  }

  /** Decides the reply: a bridge text, Quickchat's answer, the `unavailable` text, or a retry later. */
  private async answer(
    row: ClaimedMessage,
    tenant: TenantConfig,
    adapter: ChannelAdapter<unknown>,
    target: DeliveryTarget<unknown>,
    log: Logger,
  ): Promise<Answer> {
    const db = this.deps.database.db;
    const thread: ThreadRef = { tenantId: row.tenantId, channel: row.channel, threadKey: row.threadKey };
    switch (row.kind) {
      case "reset":
        await deleteConversation(db, thread);
        return { type: "reply", html: tenant.texts.reset };
      case "unsupported":
        return { type: "reply", html: tenant.texts.unsupported };
      case "start":
        await deleteConversation(db, thread);
        return this.askQuickchat(
          row,
          tenant,
          adapter,
          target,
          row.text || tenant.texts.greeting,
          undefined,
          log,
        );
      default:
        // Empty text: the user only called the bot (a bare mention), answered like a greeting.
        return this.askQuickchat(
          row,
          tenant,
          adapter,
          target,
          row.text || tenant.texts.greeting,
          row.convId ?? undefined,
          log,
        );
    }
  }

  private async askQuickchat(
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
      channel: row.channel as ChannelName,
      channelUserId: row.sender.id,
      threadKey: row.threadKey,
      userName,
      kbTopic: tenant.quickchat.kb_topic,
    });
    const { metrics } = this.deps;
    const chat = async (conv: string | undefined) => {
      const timer = metrics.quickchatLatency.startTimer({ tenant: tenant.id });
      try {
        return await this.deps.quickchat.chat(tenant.quickchat, { text, convId: conv, clientMetadata });
      } catch (err) {
        if (err instanceof QuickchatError)
          metrics.quickchatErrors.inc({ tenant: tenant.id, class: err.kind });
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
        const retry = this.retryOrGiveUp(row, err.message, err.retryAfterMs);
        if (retry) return retry;
        log.error({ err: err.message }, "Quickchat retries exhausted; sending the unavailable text");
      } else {
        log.error(
          { err: err.message, status: err.status },
          "Quickchat rejected the request: check the tenant",
        );
      }
      return { type: "reply", html: tenant.texts.unavailable, error: err.message };
    }
  }

  /** A retry while the message is within its retry window, else undefined (give up). */
  private retryOrGiveUp(row: ClaimedMessage, error: string, retryAfterMs?: number): Answer | undefined {
    const { options } = this.deps;
    const giveUpAt = row.giveUpAt ?? new Date(Date.now() + options.maxRetryMs);
    const delayMs = backoffDelay(row.attempts, options.backoff, retryAfterMs);
    if (Date.now() + delayMs > giveUpAt.getTime()) return undefined;
    return { type: "retry", delayMs, error, giveUpAt };
  }

  /**
   * Sends the reply's parts in order, skipping parts a previous attempt delivered. True when the message ended
   * and its thread has a message waiting behind it.
   */
  private async deliver(
    row: ClaimedMessage,
    lease: Lease,
    adapter: ChannelAdapter<unknown>,
    target: DeliveryTarget<unknown>,
    reply: { html: string; error?: string },
    log: Logger,
  ): Promise<boolean> {
    const db = this.deps.database.db;
    const labels = { tenant: row.tenantId, channel: adapter.channel };
    const count = (outcome: string) => this.deps.metrics.sends.inc({ ...labels, outcome });
    const done = async (status: "delivered" | "failed", error?: string, lastPart?: PartRecord) => {
      const successorWaiting = await this.finals.submit({
        lease,
        status,
        ...(error !== undefined && { error }),
        ...(lastPart && { lastPart }),
      });
      this.deps.metrics.messages.inc({ ...labels, status });
      return successorWaiting;
    };
    const parts = formatReply(reply.html, adapter.channel);
    // Parts exist only once a reply was stored: a message that was pending at its claim has none.
    const alreadySent = row.status === "pending" ? new Set<number>() : await sentParts(db, row.id);
    let current = target;
    for (const [index, part] of parts.entries()) {
      if (alreadySent.has(index)) continue;
      // A stop past its timeout: no new send; the next worker resumes at this part.
      if (this.abandoning) {
        await release(db, [lease]);
        return false;
      }
      let sent: SentPart;
      try {
        sent = await sendPart(adapter, current, part, count);
      } catch (err) {
        // Not a classified failure: its message may quote a remote answer, so only its name is kept.
        const failure =
          err instanceof ChannelSendError
            ? err
            : new ChannelSendError("retry", `unexpected ${(err as Error)?.name ?? typeof err}`);
        const retry =
          failure.kind === "retry" && this.retryOrGiveUp(row, failure.message, failure.retryAfterMs);
        count(failure.kind === "retry" ? "retry" : "permanent");
        if (retry && retry.type === "retry") {
          log.warn(
            { err: failure.message, part: index, delay_ms: Math.round(retry.delayMs) },
            "send failed; retrying later",
          );
          await reschedule(db, lease, retry.delayMs, undefined, retry.giveUpAt);
          return false;
        }
        log.error(
          { err: failure.message, code: failure.code, part: index },
          "send failed permanently; message failed",
        );
        return done("failed", `${adapter.channel} send failed: ${failure.message}`, {
          inboundId: row.id,
          part: index,
          status: "failed",
          errorCode: failure.code,
        });
      }
      if (sent.route) {
        current = { ...current, route: sent.route };
        await updateRoute(db, lease, sent.route);
      }
      const record = {
        inboundId: row.id,
        part: index,
        status: "sent",
        channelMessageId: sent.channelMessageId,
      };
      // The last part's record goes with the final state, in one statement.
      if (index === parts.length - 1) return done(reply.error ? "failed" : "delivered", undefined, record);
      await recordPart(db, record);
    }
    return done(reply.error ? "failed" : "delivered");
  }
}

const leaseOf = (message: ClaimedMessage): Lease => ({ id: message.id, owner: message.leaseOwner ?? "" });

/** One part; when the channel rejects the markup, the same part again as plain text (DESIGN 1). */
async function sendPart(
  adapter: ChannelAdapter<unknown>,
  target: DeliveryTarget<unknown>,
  part: FormattedPart,
  count: (outcome: string) => void,
): Promise<SentPart> {
  try {
    const sent = await adapter.send(target, part.text, { plain: false });
    count("sent");
    return sent;
  } catch (err) {
    if (!(err instanceof ChannelSendError && err.kind === "markup")) throw err;
    const sent = await adapter.send(target, part.plain, { plain: true });
    count("plain_fallback");
    return sent;
  }
}
