import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import type { Route } from "../channels/types.js";

const timestamps = {
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
};

/** One Quickchat conversation per channel thread. */
export const conversations = pgTable(
  "conversations",
  {
    tenantId: text("tenant_id").notNull(),
    channel: text("channel").notNull(),
    threadKey: text("thread_key").notNull(),
    convId: text("conv_id").notNull(),
    ...timestamps,
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.channel, t.threadKey] }),
    index("conversations_updated_idx").on(t.updatedAt),
  ],
);

/**
 * Message states:
 * - `pending`: waiting for Quickchat (or for its retry at `next_attempt_at`);
 * - `delivering`: reply stored in `reply_html`; parts are being sent (outbound_messages tracks each part);
 * - `delivered`: every part sent; `failed`: given up (`error` says why; retryable through the admin API).
 */
export const MESSAGE_STATUSES = ["pending", "delivering", "delivered", "failed"] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** Finished messages that still hold text: what retention prunes, and the predicate of its index. */
export const PRUNABLE = sql`status in ('delivered', 'failed') and (text is not null or reply_html is not null)`;

/** The durable inbox: both the message log and the work queue. */
export const inboundMessages = pgTable(
  "inbound_messages",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    tenantId: text("tenant_id").notNull(),
    channel: text("channel").notNull(),
    threadKey: text("thread_key").notNull(),
    dedupeKey: text("dedupe_key").notNull(),
    kind: text("kind").notNull(),
    sender: jsonb("sender").$type<{ id: string; name?: string }>().notNull(),
    route: jsonb("route").$type<Route>().notNull(),
    text: text("text"),
    status: text("status").$type<MessageStatus>().notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    /**
     * When the message may next be claimed. Null while it waits behind an older unfinished message of its
     * thread (the insert leaves it null when the thread is busy; the `inbound_promote_next` trigger sets it
     * when the message ahead ends) and once it has ended: the claim's index holds thread heads only, however
     * deep the backlog.
     */
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).defaultNow(),
    /** Retryable Quickchat failures stop being retried after this moment. */
    giveUpAt: timestamp("give_up_at", { withTimezone: true }),
    leaseUntil: timestamp("lease_until", { withTimezone: true }),
    /** Fencing token of the worker holding the lease: a worker whose lease was taken over writes nothing. */
    leaseOwner: text("lease_owner"),
    replyHtml: text("reply_html"),
    error: text("error"),
    ...timestamps,
  },
  (t) => [
    // The message id leads: an index led by (tenant_id, channel) would compete with the thread index for
    // the thread probes, and on an inbox not yet analyzed the planner took it when it was the smaller one
    // (WhatsApp: ids shorter than thread keys), filtering every message of the tenant's channel per probe.
    uniqueIndex("inbound_dedupe_uq").on(t.dedupeKey, t.tenantId, t.channel),
    // Claim scan: each thread's head (its oldest unfinished message) by due time. No status in the
    // predicate: on tables not yet analyzed, every extra condition shrank the planner's row estimate until it
    // sorted every due head instead of reading the first few in index order.
    index("inbound_ready_idx").on(t.nextAttemptAt, t.id).where(sql`next_attempt_at is not null`),
    // Threads: "has this thread any message at all?" (Slack follow-ups), and the next pending message of a
    // thread when one ends.
    index("inbound_thread_idx").on(t.tenantId, t.channel, t.threadKey, t.status, t.id),
    // Admin listing of failed messages, few among many. Delivered ones, most of the inbox, and unfinished
    // ones, the newest, are listed in id order anyway. With the unfinished ones in it, this smaller index
    // looked cheaper to the planner than the thread index for the thread probes, on tables not yet analyzed,
    // and each probe read every unfinished message older than the one probed.
    index("inbound_failed_idx").on(t.id).where(sql`status = 'failed'`),
    // Unfinished messages by thread: "has this thread an unfinished message (older than this one)?" in one
    // probe, whatever the thread's history; and the queue's depth and oldest message (metrics).
    index("inbound_unfinished_idx")
      .on(t.tenantId, t.channel, t.threadKey, t.id)
      .where(sql`status in ('pending', 'delivering')`),
    // Retention: the oldest finished messages with text (a message leaves it when pruned).
    index("inbound_prunable_idx").on(t.updatedAt).where(PRUNABLE),
  ],
);

/** Delivery state per part of a reply, so a retry never re-sends a part the channel accepted. */
export const outboundMessages = pgTable(
  "outbound_messages",
  {
    inboundId: bigint("inbound_id", { mode: "number" })
      .notNull()
      .references(() => inboundMessages.id, { onDelete: "cascade" }),
    part: integer("part").notNull(),
    channelMessageId: text("channel_message_id"),
    status: text("status").notNull(),
    errorCode: text("error_code"),
    ...timestamps,
  },
  (t) => [
    primaryKey({ columns: [t.inboundId, t.part] }),
    index("outbound_channel_msg_idx").on(t.channelMessageId),
  ],
);

/**
 * Running bridge processes, each beating its row every few seconds. A process whose beat is stale is presumed
 * dead: the others hand its leased messages back to the queue, without waiting out their leases.
 */
export const bridgeProcesses = pgTable("bridge_processes", {
  id: text("id").primaryKey(),
  heartbeatAt: timestamp("heartbeat_at", { withTimezone: true }).notNull().defaultNow(),
  startedAt: timestamp("started_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Tenants managed through the admin API (config-file and environment tenants are not stored). */
export const tenants = pgTable("tenants", {
  id: text("id").primaryKey(),
  settings: jsonb("settings").$type<Record<string, unknown>>().notNull(),
  secretsEncrypted: text("secrets_encrypted"),
  source: text("source").notNull().default("api"),
  ...timestamps,
});
