import { eq, type SQL, sql } from "drizzle-orm";
import type { DeliveryStatus } from "../channels/types.js";
import { type Db, rowsOf } from "./client.js";
import { withDeadlockRetry } from "./errors.js";
import type { Lease } from "./inbox.js";
import { inboundMessages, outboundMessages } from "./schema.js";

/** Parts of a reply already accepted by the channel (a retry resumes after them). */
export async function sentParts(db: Db, inboundId: number): Promise<Set<number>> {
  const rows = await db
    .select({ part: outboundMessages.part, status: outboundMessages.status })
    .from(outboundMessages)
    .where(eq(outboundMessages.inboundId, inboundId));
  return new Set(rows.filter((r) => r.status !== "failed").map((r) => r.part));
}

/** What became of one part of a reply on the channel. */
export interface PartRecord {
  inboundId: number;
  part: number;
  status: string;
  channelMessageId?: string;
  errorCode?: string;
}

/** A part's record replaces an earlier one (a retried part): shared by `recordPart` and `finishAll`. */
export const onPartConflict = sql`on conflict (inbound_id, part) do update set status = excluded.status,
  channel_message_id = excluded.channel_message_id, error_code = excluded.error_code, updated_at = now()`;

/**
 * Records what became of one part (sent, with the channel's id, or failed); false when `lease` no longer holds
 * its message. The record is true whoever holds the message now, so it is written either way (as `finishAll`
 * writes the last part's); a worker whose lease was taken over sends no further part.
 */
export async function recordPart(db: Db, p: PartRecord, lease: Lease): Promise<boolean> {
  const [row] = rowsOf<{ held: boolean }>(
    await db.execute(sql`
      with part as (
        insert into ${outboundMessages} (inbound_id, part, status, channel_message_id, error_code)
        values (${p.inboundId}, ${p.part}, ${p.status}, ${p.channelMessageId ?? null}, ${p.errorCode ?? null})
        ${onPartConflict})
      select exists (select 1 from ${inboundMessages} where id = ${lease.id}
        and lease_owner = ${lease.owner}) as held`),
  );
  return row?.held === true;
}

/**
 * How far a sent message got, in the order Twilio moves it. Status callbacks can arrive out of order, so a
 * report only moves a part forward: `delivered` is never replaced by a late `sent`. A status not listed (a
 * new one) ranks with `queued`.
 */
const PROGRESS: Record<string, number> = {
  accepted: 0,
  scheduled: 0,
  queued: 0,
  sending: 1,
  sent: 2,
  partially_delivered: 3,
  delivered: 4,
  read: 5,
};

/** A part in one of these states stays in it: no later report changes the outcome. */
const FINAL_PART_STATUSES = ["failed", "undelivered", "canceled"] as const;

const isFinal = (status: string) => (FINAL_PART_STATUSES as readonly string[]).includes(status);

/** The rank of a stored status, in SQL. */
const storedProgressOf = (column: SQL) =>
  sql.join(
    [
      sql`case ${column}`,
      ...Object.entries(PROGRESS).map(([status, rank]) => sql`when ${status} then ${rank}::int`),
      sql`else 0 end`,
    ],
    sql` `,
  );

/** Final statuses outrank every other, so a batch's most advanced report for a part is the one applied. */
const FINAL_RANK = 1000;
const rankOf = (status: string) => (isFinal(status) ? FINAL_RANK : (PROGRESS[status] ?? 0));

/**
 * Delivery reports from the channel (Twilio status callbacks, Meta status updates) for parts this tenant sent,
 * in one statement however many a webhook carries. A report is applied only when it moves its part forward
 * (see PROGRESS) and the part is not final; a final status (`failed`, `undelivered`, `canceled`) ends any
 * other. Of several reports for one part, the most advanced is applied. Returns the number of parts changed.
 */
export async function updatePartStatuses(
  db: Db,
  tenantId: string,
  reports: DeliveryStatus[],
): Promise<number> {
  const latest = new Map<string, DeliveryStatus>();
  for (const report of reports) {
    const seen = latest.get(report.channelMessageId);
    if (!seen || rankOf(report.status) > rankOf(seen.status)) latest.set(report.channelMessageId, report);
  }
  if (latest.size === 0) return 0;
  const rows = [...latest.values()].map((r) => ({
    id: r.channelMessageId,
    status: r.status,
    code: r.errorCode ?? null,
    rank: rankOf(r.status),
  }));
  // Two batches may update the same parts in different orders: a deadlock between them runs again.
  const changed = await withDeadlockRetry(() =>
    db.execute(sql`
    update ${outboundMessages} o
    set status = r.status, error_code = coalesce(r.code, o.error_code), updated_at = now()
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(id text, status text, code text, rank int),
      ${inboundMessages} i
    where o.channel_message_id = r.id
      and o.status not in (${sql.join(
        FINAL_PART_STATUSES.map((status) => sql`${status}`),
        sql`, `,
      )})
      and (r.rank = ${FINAL_RANK} or (${storedProgressOf(sql`o.status`)}) < r.rank)
      and i.id = o.inbound_id and i.tenant_id = ${tenantId}
    returning o.part`),
  );
  return rowsOf(changed).length;
}
