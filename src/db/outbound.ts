import { and, eq, inArray, notInArray, sql } from "drizzle-orm";
import { type Db, rowsOf } from "./client.js";
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

/** The rank of the stored status, in SQL, from the same table. */
const storedProgress = sql.join(
  [
    sql`case ${outboundMessages.status}`,
    ...Object.entries(PROGRESS).map(([status, rank]) => sql`when ${status} then ${rank}::int`),
    sql`else 0 end`,
  ],
  sql` `,
);

/**
 * A delivery report from the channel (Twilio status callback) for a part this tenant sent. Applied only
 * when it moves the part forward (see PROGRESS) and the part is not final; a final status (`failed`,
 * `undelivered`, `canceled`) ends any other. Returns the number of parts changed.
 */
export async function updatePartStatus(
  db: Db,
  tenantId: string,
  channelMessageId: string,
  status: string,
  errorCode?: string,
): Promise<number> {
  const forward = isFinal(status) ? sql`true` : sql`${storedProgress} < ${PROGRESS[status] ?? 0}::int`;
  const rows = await db
    .update(outboundMessages)
    .set({ status, ...(errorCode && { errorCode }), updatedAt: sql`now()` })
    .where(
      and(
        eq(outboundMessages.channelMessageId, channelMessageId),
        notInArray(outboundMessages.status, [...FINAL_PART_STATUSES]),
        forward,
        inArray(
          outboundMessages.inboundId,
          db
            .select({ id: inboundMessages.id })
            .from(inboundMessages)
            .where(eq(inboundMessages.tenantId, tenantId)),
        ),
      ),
    )
    .returning({ part: outboundMessages.part });
  return rows.length;
}
