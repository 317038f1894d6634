import { and, eq, getTableColumns, type SQL, sql } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import type { InboundMessage, Route } from "../channels/types.js";
import { type Db, rowsOf } from "./client.js";
import { withDeadlockRetry } from "./errors.js";
import { onPartConflict, type PartRecord } from "./outbound.js";
import { conversations, inboundMessages, type MessageStatus, outboundMessages } from "./schema.js";

/** A claimed message, with its thread's current Quickchat conversation (read in the claim, no extra query). */
export type InboxRow = typeof inboundMessages.$inferSelect & { convId: string | null };

/** What the worker needs of a message it holds: a claimed row, or one leased by its own insert. */
export type ClaimedMessage = Pick<
  InboxRow,
  | "id"
  | "tenantId"
  | "channel"
  | "threadKey"
  | "kind"
  | "text"
  | "sender"
  | "route"
  | "status"
  | "attempts"
  | "giveUpAt"
  | "leaseOwner"
  | "replyHtml"
  | "error"
  | "convId"
>;

/** "Not finished yet": the predicate of the index of unfinished messages, which the thread probes read. */
const UNFINISHED: MessageStatus[] = ["pending", "delivering"];
const unfinished = (status: SQL | AnyPgColumn) =>
  sql`${status} in (${sql.raw(UNFINISHED.map((s) => `'${s}'`).join(", "))})`;

export interface ClaimOptions {
  limit: number;
  leaseMs: number;
  owner: string;
  excludeTenants?: string[];
}

/** Parameters of the current claim: the owner token fences every later write. */
export interface Lease {
  id: number;
  owner: string;
}

/** A new inbox row, named as the INSERT's record columns. */
export interface InboxInsert {
  tenant_id: string;
  channel: string;
  thread_key: string;
  dedupe_key: string;
  kind: string;
  sender: InboundMessage["sender"];
  route: Route;
  text: string;
  /** Set when this process's worker asks to take the message at once (see InboxWriter): the insert leases
   * it to this owner for `lease_ms`, unless its thread already has an unfinished message. */
  lease_owner?: string;
  lease_ms?: number;
}

/** A stored row: its id, and whether the insert leased it (then with its thread's conversation). */
export interface Inserted {
  id: number;
  leased: boolean;
  convId: string | null;
}

export function rowValues(tenantId: string, channel: string, m: InboundMessage): InboxInsert {
  return {
    tenant_id: tenantId,
    channel,
    thread_key: m.threadKey,
    dedupe_key: m.dedupeKey,
    kind: m.kind,
    sender: m.sender,
    route: m.route,
    text: m.text,
  };
}

/** The identity of a stored message: redeliveries share it. */
export const messageKey = (r: { tenant_id: string; channel: string; dedupe_key: string }) =>
  `${r.tenant_id}\u0000${r.channel}\u0000${r.dedupe_key}`;

/** The thread of a new row. */
export const threadOf = (r: { tenant_id: string; channel: string; thread_key: string }) =>
  `${r.tenant_id}\u0000${r.channel}\u0000${r.thread_key}`;

/**
 * Inserts rows in one statement, skipping those already stored; returns the rows inserted by `messageKey`.
 * The rows travel as one jsonb parameter, so the statement text is the same for any batch size (prepared
 * once) and costs no per-row query building. Ids follow the rows' order, which keeps per-thread order.
 * A row that asks for a lease gets it only when its thread has no unfinished message: the claim's rule.
 */
export async function insertRows(db: Db, rows: InboxInsert[]): Promise<Map<string, Inserted>> {
  if (rows.length === 0) return new Map();
  const result = await withDeadlockRetry(() => db.execute(insertStatement(rows)));
  type Returned = Parameters<typeof messageKey>[0] & {
    id: number | string;
    leased: boolean;
    conv_id: string | null;
  };
  return new Map(
    rowsOf<Returned>(result).map((r) => [
      messageKey(r),
      { id: Number(r.id), leased: r.leased, convId: r.conv_id },
    ]),
  );
}

/**
 * `insertRows`'s statement (its cost is checked in a test). A row is queued (not due, out of the claim's index)
 * when its thread has an unfinished message, or an earlier row in this batch. The statement's trigger
 * (`bridge_inbox_notify`, after the rows are in) keeps it queued only behind an older unfinished message it can
 * share-lock: the statement ending that message waits for the lock, and its own trigger, which makes the next
 * message due, then sees this row. Otherwise (a redelivery never stored, a message ended meanwhile or being
 * written) the row is made due at once; if a message being written was its thread's only unfinished one, it is
 * a second head, which the claim's probe for an older unfinished message holds back. The insert leases a row to
 * its own worker only when its thread has no unfinished message at all.
 */
export function insertStatement(rows: InboxInsert[]) {
  return sql`
    insert into ${inboundMessages} (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text,
      lease_owner, lease_until, next_attempt_at)
    select r.tenant_id, r.channel, r.thread_key, r.dedupe_key, r.kind, r.sender, r.route, r.text,
      case when l.leased then r.lease_owner end,
      case when l.leased then now() + make_interval(secs => r.lease_ms / 1000.0) end,
      case when l.leased then now() + make_interval(secs => r.lease_ms / 1000.0) when not b.busy then now() end
    from rows from (jsonb_to_recordset(${JSON.stringify(batchRows(rows))}::jsonb) as (tenant_id text,
      channel text, thread_key text, dedupe_key text, kind text, sender jsonb, route jsonb, text text,
      lease_owner text, lease_ms int, preceded boolean))
      with ordinality as r(tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text, lease_owner,
        lease_ms, preceded, ord)
    cross join lateral (select r.preceded or ${busy(sql`r`)} as busy) b
    cross join lateral (select r.lease_owner is not null and not b.busy as leased) l
    order by r.ord
    on conflict do nothing
    returning id, tenant_id, channel, dedupe_key, lease_owner is not null as leased,
      case when lease_owner is not null then (select c.conv_id from ${conversations} c
        where c.tenant_id = inbound_messages.tenant_id and c.channel = inbound_messages.channel
          and c.thread_key = inbound_messages.thread_key) end as conv_id`;
}

/** The rows as the insert reads them, each marked when an earlier row of the batch is in its thread. */
function batchRows(rows: InboxInsert[]) {
  const seen = new Set<string>();
  return rows.map((row) => {
    const thread = threadOf(row);
    const preceded = seen.has(thread);
    seen.add(thread);
    return { ...row, preceded };
  });
}

/**
 * Probes of a thread's unfinished messages, through the index of unfinished messages by thread: one LIMIT 1
 * probe, whatever the thread's history. (Through the thread index, as `status in (…)`, the planner filtered a
 * long chat's entries one by one; as EXISTS or NOT EXISTS it could hash every unfinished row of the inbox.)
 * `r` is a row with tenant_id, channel and thread_key; `olderThan`, an id the message found must be below.
 */
const unfinishedIn = (r: SQL, olderThan?: SQL) => sql`from ${inboundMessages} o
  where o.tenant_id = ${r}.tenant_id and o.channel = ${r}.channel and o.thread_key = ${r}.thread_key
    and ${unfinished(sql`o.status`)} ${olderThan ? sql`and o.id < ${olderThan}` : sql``}`;

/** Whether the thread of `r` has an unfinished message. (As EXISTS, the planner made it a hashed subplan.) */
const busy = (r: SQL) => sql`coalesce((select true ${unfinishedIn(r)} limit 1), false)`;

/**
 * The message `m` has no older unfinished message in its thread, as one expression, which the planner takes to
 * pass half the rows. As NOT EXISTS it became an anti join that read every unfinished message per candidate; as
 * `probe IS NULL` it was expected to pass almost none, and on tables not yet analyzed the planner then sorted
 * every due head instead of reading the first few in index order.
 */
const noOlderUnfinished = (m: SQL) =>
  sql`coalesce((select false ${unfinishedIn(m, sql`${m}.id`)} limit 1), true)`;

/** One conditional INSERT: stored only when the thread already has a conversation or an earlier message. */
export async function insertInKnownThread(db: Db, v: InboxInsert): Promise<number> {
  return rowsOf(await db.execute(insertInKnownThreadStatement(v))).length;
}

/** `insertInKnownThread`'s statement (its cost is checked in a test). */
export function insertInKnownThreadStatement(v: InboxInsert) {
  const known = sql`exists (select 1 from ${conversations} c where c.tenant_id = ${v.tenant_id}
      and c.channel = ${v.channel} and c.thread_key = ${v.thread_key})
    or exists (select 1 from ${inboundMessages} i where i.tenant_id = ${v.tenant_id}
      and i.channel = ${v.channel} and i.thread_key = ${v.thread_key})`;
  return sql`
    insert into ${inboundMessages} (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text,
      next_attempt_at)
    select ${v.tenant_id}, ${v.channel}, ${v.thread_key}, ${v.dedupe_key}, ${v.kind},
      ${JSON.stringify(v.sender)}::jsonb, ${JSON.stringify(v.route)}::jsonb, ${v.text},
      case when not ${busy(sql`v`)} then now() end
    from (select ${v.tenant_id} as tenant_id, ${v.channel} as channel, ${v.thread_key} as thread_key) v
    where ${known}
    on conflict do nothing
    returning id`;
}

/**
 * Claims up to `limit` due messages for `owner`, the earliest due first. Only the oldest unfinished message of a
 * thread is claimable, which keeps per-thread order: only thread heads are ever due (a message waiting behind
 * another has no due time), and a probe for an older unfinished message guards the rare thread with two heads
 * (two replicas' inserts at once, or a failed message retried). A leased message is due when its lease runs
 * out, so an expired lease makes a crashed worker's message claimable again. SKIP LOCKED lets many workers
 * claim concurrently; NO KEY UPDATE is all it needs.
 *
 * The statement reads the first heads in the due index's order and stops: its cost does not depend on the
 * backlog's depth or width. It has no other filter the planner could count against that order: with
 * `status in (…)` or a lease condition beside the due time, the row estimate on tables not yet analyzed fell
 * below the limit, and it sorted every due head instead.
 */
export async function claimMessages(db: Db, options: ClaimOptions): Promise<InboxRow[]> {
  return (await claimStatement(db, options)).filter((row) => UNFINISHED.includes(row.status));
}

/** `claimMessages`'s statement (its cost is checked in a test). */
export function claimStatement(db: Db, options: ClaimOptions) {
  const leaseEnd = sql`now() + ${`${options.leaseMs} milliseconds`}::interval`;
  // One jsonb parameter, not a list of them: the statement's text (and so its prepared form) stays the same
  // whatever the number of tenants left out.
  const tenantsLeftOut = options.excludeTenants?.length
    ? sql`and m.tenant_id <> all (select jsonb_array_elements_text(${JSON.stringify(options.excludeTenants)}::jsonb))`
    : sql``;
  const due = sql`(select m.id from ${inboundMessages} m
    where m.next_attempt_at <= now() ${tenantsLeftOut} and ${noOlderUnfinished(sql`m`)}
    order by m.next_attempt_at, m.id
    limit ${options.limit}
    for no key update of m skip locked)`;
  return (
    db
      .update(inboundMessages)
      // An ended message with a due time (ended by a replica still running the code before migration 0005,
      // which kept it) is not claimed: its due time is cleared, and claimMessages leaves it out.
      .set({
        leaseUntil: sql`case when ${unfinished(sql`status`)} then ${leaseEnd} end`,
        nextAttemptAt: sql`case when ${unfinished(sql`status`)} then ${leaseEnd} end`,
        leaseOwner: sql`case when ${unfinished(sql`status`)} then ${options.owner} end`,
        updatedAt: sql`now()`,
      })
      // An array, not `IN (subquery)`: a semi join the planner could make by hashing a scan of the whole inbox.
      .where(sql`${inboundMessages.id} = any(array${due})`)
      .returning({
        ...getTableColumns(inboundMessages),
        // Qualified by hand: drizzle writes RETURNING columns unqualified, which the subquery would take as c's.
        convId: sql<string | null>`(select c.conv_id from ${conversations} c
        where c.tenant_id = inbound_messages.tenant_id and c.channel = inbound_messages.channel
          and c.thread_key = inbound_messages.thread_key)`,
      })
  );
}

/**
 * The rows a grouped update writes, as an id array the planner can count. It takes a function's rows
 * (jsonb_to_recordset) as 100, and for 100 rows hashing the whole inbox looked cheaper than as many
 * primary-key probes until the inbox held 10,000 to 20,000 rows: every reply and final state read the table
 * (1.4-1.6 ms and 87 pages at 5,000 rows, against 0.15-0.35 ms by primary key).
 */
const idsOf = (leases: Lease[]) => sql`${`{${leases.map((lease) => lease.id).join(",")}}`}::bigint[]`;

const held = (lease: Lease) =>
  and(eq(inboundMessages.id, lease.id), eq(inboundMessages.leaseOwner, lease.owner));

/** Extends a lease; false when another worker has taken the message over. */
export async function renewLease(db: Db, lease: Lease, leaseMs: number): Promise<boolean> {
  const rows = await db
    .update(inboundMessages)
    .set({
      leaseUntil: sql`now() + ${`${leaseMs} milliseconds`}::interval`,
      nextAttemptAt: sql`now() + ${`${leaseMs} milliseconds`}::interval`,
    })
    .where(held(lease))
    .returning({ id: inboundMessages.id });
  return rows.length === 1;
}

/** A reply to store for a leased message, with the thread's conversation id when Quickchat gave one. */
export interface StoredReply {
  lease: Lease;
  html: string;
  /** Why the message is failing (the reply is then the bridge's `unavailable` text). */
  error?: string;
  conversation?: { tenantId: string; channel: string; threadKey: string; convId: string };
}

/**
 * Stores replies to deliver (and, for failing messages, why) with their threads' conversation ids, for
 * several messages in one statement (one round trip, atomic). Per reply: false when its lease was lost.
 * Delivery gets its own retry window: attempts and give-up time start over.
 */
export async function storeReplies(db: Db, replies: StoredReply[]): Promise<boolean[]> {
  return perLease(replies, await withDeadlockRetry(() => db.execute(storeRepliesStatement(replies))));
}

interface Returned {
  id: number | string;
  waiting?: boolean;
}

/** Per item of a grouped update: whether the statement returned its message's row, and the row passes `test`. */
function perLease(items: { lease: Lease }[], result: unknown, test = (_row: Returned) => true): boolean[] {
  const ids = new Set(
    rowsOf<Returned>(result)
      .filter(test)
      .map((row) => Number(row.id)),
  );
  return items.map((item) => ids.has(item.lease.id));
}

/** `storeReplies`'s statement. */
export function storeRepliesStatement(replies: StoredReply[]) {
  const rows = replies.map(({ lease, html, error, conversation: c }) => ({
    id: lease.id,
    owner: lease.owner,
    html,
    error: error ?? null,
    tenant_id: c?.tenantId ?? null,
    channel: c?.channel ?? null,
    thread_key: c?.threadKey ?? null,
    conv_id: c?.convId ?? null,
  }));
  return sql`
    with r as (
      select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(id bigint, owner text, html text,
        error text, tenant_id text, channel text, thread_key text, conv_id text)),
    stored as (
      update ${inboundMessages} m set status = 'delivering', reply_html = r.html, error = r.error, attempts = 0,
        give_up_at = null, updated_at = now()
      from r where m.id = any(${idsOf(replies.map((reply) => reply.lease))}) and m.id = r.id
        and m.lease_owner = r.owner
      returning m.id),
    conversation as (
      insert into ${conversations} (tenant_id, channel, thread_key, conv_id)
      select r.tenant_id, r.channel, r.thread_key, r.conv_id from r join stored on stored.id = r.id
      where r.conv_id is not null
      on conflict (tenant_id, channel, thread_key) do update set conv_id = excluded.conv_id, updated_at = now())
    select id from stored`;
}

/** Puts the message back for a later attempt (backoff), releasing the lease. */
export async function reschedule(
  db: Db,
  lease: Lease,
  delayMs: number,
  /** Why it failed; undefined keeps the stored reason (a delivery retry must not mask a Quickchat failure). */
  error: string | undefined,
  giveUpAt?: Date,
): Promise<void> {
  await db
    .update(inboundMessages)
    .set({
      attempts: sql`${inboundMessages.attempts} + 1`,
      nextAttemptAt: sql`now() + ${`${Math.round(delayMs)} milliseconds`}::interval`,
      giveUpAt: giveUpAt ?? sql`${inboundMessages.giveUpAt}`,
      ...(error !== undefined && { error }),
      leaseUntil: null,
      leaseOwner: null,
      updatedAt: sql`now()`,
    })
    .where(held(lease));
}

/** The final state of a leased message; `lastPart` is the record of the part that ended its delivery. */
export interface FinalState {
  lease: Lease;
  status: "delivered" | "failed";
  /** Why it failed; undefined keeps the stored reason. */
  error?: string;
  lastPart?: PartRecord;
}

/**
 * Final states (and their last parts' records) of several messages, in one statement. Per state: whether its
 * thread has a later unfinished message, which the end of this one makes claimable (the `inbound_promote_next`
 * trigger makes it due, once the inserts that queued a message behind this one have committed: see
 * insertStatement).
 */
export async function finishAll(db: Db, states: FinalState[]): Promise<boolean[]> {
  const result = await withDeadlockRetry(() => db.execute(finishAllStatement(states)));
  return perLease(states, result, (row) => row.waiting === true);
}

/** `finishAll`'s statement. */
export function finishAllStatement(states: FinalState[]) {
  const rows = states.map(({ lease, status, error, lastPart: p }) => ({
    id: lease.id,
    owner: lease.owner,
    status,
    error: error ?? null,
    part: p?.part ?? null,
    part_status: p?.status ?? null,
    channel_message_id: p?.channelMessageId ?? null,
    error_code: p?.errorCode ?? null,
  }));
  return sql`
    with r as (
      select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(id bigint, owner text, status text,
        error text, part int, part_status text, channel_message_id text, error_code text)),
    part as (
      insert into ${outboundMessages} (inbound_id, part, status, channel_message_id, error_code)
      select r.id, r.part, r.part_status, r.channel_message_id, r.error_code from r where r.part is not null
      ${onPartConflict})
    update ${inboundMessages} m set status = r.status, error = coalesce(r.error, m.error), lease_until = null,
      lease_owner = null, next_attempt_at = null, updated_at = now()
    from r where m.id = any(${idsOf(states.map((state) => state.lease))}) and m.id = r.id and m.lease_owner = r.owner
    returning m.id, exists (select 1 from ${inboundMessages} o where o.tenant_id = m.tenant_id
      and o.channel = m.channel and o.thread_key = m.thread_key and o.status = 'pending' and o.id > m.id)
      as waiting`;
}

/** Returns claimed messages to the queue at once (shutdown, or a claim past a tenant's cap). */
export async function release(db: Db, leases: Lease[]): Promise<void> {
  if (leases.length === 0) return;
  await db.execute(sql`
    update ${inboundMessages} set lease_until = null, lease_owner = null, next_attempt_at = now()
    from jsonb_to_recordset(${JSON.stringify(leases)}::jsonb) as l(id bigint, owner text)
    where inbound_messages.id = any(${idsOf(leases)}) and inbound_messages.id = l.id
      and inbound_messages.lease_owner = l.owner`);
}

/** A changed delivery route (Telegram group → supergroup) for this message. */
export async function updateRoute(db: Db, lease: Lease, route: Route): Promise<void> {
  await db.update(inboundMessages).set({ route }).where(held(lease));
}

/** Unfinished messages and the age in seconds of the oldest one (for metrics). */
export async function queueStats(db: Db): Promise<{ depth: number; oldest: number }> {
  const [row] = rowsOf<{ depth: number; oldest: number }>(await db.execute(queueStatsStatement()));
  return { depth: row?.depth ?? 0, oldest: row?.oldest ?? 0 };
}

/** `queueStats`'s statement (its cost is checked in a test). */
export function queueStatsStatement() {
  // The oldest message has the lowest id: read from the index of unfinished messages with the count, then its
  // creation time by primary key.
  return sql`select q.depth, coalesce(extract(epoch from now() - (select m.created_at from ${inboundMessages} m
      where m.id = q.oldest_id)), 0)::float8 as oldest
    from (select count(*)::int as depth, min(id) as oldest_id from ${inboundMessages}
      where ${unfinished(sql`status`)}) q`;
}
