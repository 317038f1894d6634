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

export async function recordPart(
  db: Db,
  part: { inboundId: number; part: number; status: string; channelMessageId?: string; errorCode?: string },
): Promise<void> {
  const values = {
    inboundId: part.inboundId,
    part: part.part,
    status: part.status,
    channelMessageId: part.channelMessageId ?? null,
    errorCode: part.errorCode ?? null,
  };
  await db
    .insert(outboundMessages)
    .values(values)
    .onConflictDoUpdate({
      target: [outboundMessages.inboundId, outboundMessages.part],
      set: { ...values, updatedAt: sql`now()` },
    });
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
