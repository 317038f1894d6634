import { and, eq } from "drizzle-orm";
import type { Db } from "./client.js";
import { conversations } from "./schema.js";

export interface ThreadRef {
  tenantId: string;
  channel: string;
  threadKey: string;
}

const match = (t: ThreadRef) =>
  and(
    eq(conversations.tenantId, t.tenantId),
    eq(conversations.channel, t.channel),
    eq(conversations.threadKey, t.threadKey),
  );

/** Forgets the thread's conversation: the next message starts a new one. */
export async function deleteConversation(db: Db, thread: ThreadRef): Promise<boolean> {
  const rows = await db
    .delete(conversations)
    .where(match(thread))
    .returning({ convId: conversations.convId });
  return rows.length > 0;
}
