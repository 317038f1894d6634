import { describe, expect, it } from "vitest";
import type { Db } from "../../src/db/client.js";
import { updatePartStatuses } from "../../src/db/outbound.js";
import { inboundMessages, outboundMessages } from "../../src/db/schema.js";
import { DATABASE_KINDS, migratedDatabase, partByChannelId } from "../support/db.js";

/**
 * Delivery reports applied in one statement per webhook (Meta batches thousands of statuses into one POST):
 * each part moves only forward, a final status ends it, the most advanced of a batch's reports for one part
 * wins, and a tenant only reaches its own parts.
 */

/** One delivered message of `tenant` whose reply was sent as parts with these channel ids, all `sent`. */
async function sentReply(db: Db, tenant: string, ...channelIds: string[]) {
  const [row] = await db
    .insert(inboundMessages)
    .values({
      tenantId: tenant,
      channel: "whatsapp_cloud",
      threadKey: `${tenant}-thread`,
      dedupeKey: `${tenant}-${channelIds[0]}`,
      kind: "text",
      sender: { id: "u" },
      route: {},
      status: "delivered",
      nextAttemptAt: null,
    })
    .returning({ id: inboundMessages.id });
  await db
    .insert(outboundMessages)
    .values(
      channelIds.map((id, part) => ({ inboundId: row!.id, part, channelMessageId: id, status: "sent" })),
    );
}

const statusOf = async (db: Db, id: string) => {
  const part = await partByChannelId(db, id);
  return part && { status: part.status, errorCode: part.errorCode };
};

describe.each(DATABASE_KINDS)("a batch of delivery reports (%s)", (kind) => {
  it("moves each part to its most advanced report; final statuses end a part; late reports change nothing", async () => {
    const db = await migratedDatabase(kind);
    await sentReply(db, "acme", "a1", "a2", "a3", "a4");

    const changed = await updatePartStatuses(db, "acme", [
      { channelMessageId: "a1", status: "read" },
      { channelMessageId: "a1", status: "delivered" }, // after read in the batch: not a step back
      { channelMessageId: "a2", status: "failed", errorCode: "131047" },
      { channelMessageId: "a2", status: "read" }, // a final status outranks every other
      { channelMessageId: "a3", status: "sent" }, // no move: already sent
      { channelMessageId: "unknown", status: "delivered" },
    ]);
    expect(changed).toBe(2);
    expect(await statusOf(db, "a1")).toEqual({ status: "read", errorCode: null });
    expect(await statusOf(db, "a2")).toEqual({ status: "failed", errorCode: "131047" });
    expect(await statusOf(db, "a3")).toEqual({ status: "sent", errorCode: null });

    // A later batch: a failed part stays failed, a read part is not moved back, a4 moves on.
    expect(
      await updatePartStatuses(db, "acme", [
        { channelMessageId: "a2", status: "delivered" },
        { channelMessageId: "a1", status: "delivered" },
        { channelMessageId: "a4", status: "delivered" },
      ]),
    ).toBe(1);
    expect(await statusOf(db, "a1")).toEqual({ status: "read", errorCode: null });
    expect(await statusOf(db, "a2")).toEqual({ status: "failed", errorCode: "131047" });
    expect(await statusOf(db, "a4")).toEqual({ status: "delivered", errorCode: null });
  });

  it("reaches only the reporting tenant's parts", async () => {
    const db = await migratedDatabase(kind);
    await sentReply(db, "acme", "shared-id");
    await sentReply(db, "globex", "globex-id");
    expect(
      await updatePartStatuses(db, "globex", [
        { channelMessageId: "shared-id", status: "delivered" },
        { channelMessageId: "globex-id", status: "delivered" },
      ]),
    ).toBe(1);
    expect(await statusOf(db, "shared-id")).toEqual({ status: "sent", errorCode: null });
    expect(await statusOf(db, "globex-id")).toEqual({ status: "delivered", errorCode: null });
  });

  it("applies thousands of reports, with ids of any characters, in one call", async () => {
    const db = await migratedDatabase(kind);
    const ids = Array.from({ length: 3000 }, (_, i) => `wamid.${i}+/="'\\{}`);
    await sentReply(db, "acme", ...ids);
    const reports = ids.map((channelMessageId) => ({ channelMessageId, status: "delivered" }));
    expect(await updatePartStatuses(db, "acme", reports)).toBe(3000);
    expect(await statusOf(db, ids[2999]!)).toEqual({ status: "delivered", errorCode: null });
  });
});
