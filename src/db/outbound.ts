import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "./client.js";
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

/** Records what became of one part (sent, with the channel's id, or failed). */
export async function recordPart(db: Db, p: PartRecord): Promise<void> {
  await db.execute(sql`
    insert into ${outboundMessages} (inbound_id, part, status, channel_message_id, error_code)
    values (${p.inboundId}, ${p.part}, ${p.status}, ${p.channelMessageId ?? null}, ${p.errorCode ?? null})
    ${onPartConflict}`);
}

/** A delivery report from the channel (Twilio status callback) for a part this tenant sent. */
export async function updatePartStatus(
  db: Db,
  tenantId: string,
  channelMessageId: string,
  status: string,
  errorCode?: string,
): Promise<number> {
  const rows = await db
    .update(outboundMessages)
    .set({ status, ...(errorCode && { errorCode }), updatedAt: sql`now()` })
    .where(
      and(
        eq(outboundMessages.channelMessageId, channelMessageId),
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
