import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { conversations, inboundMessages } from "../../src/db/schema.js";
import { prunableBatch, pruneOnce } from "../../src/relay/retention.js";
import { DATABASE_KINDS, explained, migratedDatabase, POSTGRES_URL } from "../support/db.js";

const DAY = 86_400_000;

describe.each(DATABASE_KINDS)("retention on %s", (kind) => {
  it("prunes finished messages' text and idle conversations in batches, with a fake clock", async () => {
    const db = await migratedDatabase(kind);
    const now = Date.now();
    const message = (n: number, status: "delivered" | "failed" | "pending", ageDays: number) => ({
      tenantId: "acme",
      channel: "telegram",
      threadKey: `t${n}`,
      dedupeKey: `m${n}`,
      kind: "text",
      sender: { id: "u" },
      route: {},
      text: `text ${n}`,
      replyHtml: `reply ${n}`,
      status,
      updatedAt: new Date(now - ageDays * DAY),
    });
    await db.insert(inboundMessages).values([
      ...Array.from({ length: 7 }, (_, i) => message(i, "delivered", 40)),
      message(7, "failed", 40),
      message(8, "pending", 40), // unfinished: kept whatever its age
      message(9, "delivered", 5), // recent: kept
    ]);
    await db.insert(conversations).values([
      {
        tenantId: "acme",
        channel: "telegram",
        threadKey: "old1",
        convId: "c1",
        updatedAt: new Date(now - 100 * DAY),
      },
      {
        tenantId: "acme",
        channel: "telegram",
        threadKey: "old2",
        convId: "c2",
        updatedAt: new Date(now - 95 * DAY),
      },
      {
        tenantId: "acme",
        channel: "telegram",
        threadKey: "new",
        convId: "c3",
        updatedAt: new Date(now - 1 * DAY),
      },
    ]);

    const policy = { messageDays: 30, conversationDays: 90, batchSize: 3 };
    expect(await pruneOnce(db, policy, new Date(now))).toEqual({ messages: 8, conversations: 2 });
    const rows = await db.select().from(inboundMessages).orderBy(inboundMessages.id);
    expect(rows.filter((r) => r.text === null && r.replyHtml === null).map((r) => r.dedupeKey)).toEqual(
      Array.from({ length: 8 }, (_, i) => `m${i}`),
    );
    expect(rows).toHaveLength(10);
    expect((await db.select().from(conversations)).map((c) => c.threadKey)).toEqual(["new"]);

    // Moving the clock 30 days on makes the recent message old enough too.
    expect(await pruneOnce(db, policy, new Date(now + 30 * DAY))).toEqual({ messages: 1, conversations: 0 });
  });
});

describe.skipIf(!POSTGRES_URL)("retention on a large inbox", () => {
  it("reads only the messages it prunes, not those it pruned before", async () => {
    const db = await migratedDatabase("postgres");
    // 50,000 messages pruned in earlier passes, 100 now due, 20,000 recent ones.
    await db.execute(sql`
      insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text,
        reply_html, status, updated_at)
      select 'acme', 'telegram', 't' || n, 'd' || n, 'text', '{}', '{}',
        case when n > 50000 then 'x' end, case when n > 50000 then '<b>y</b>' end, 'delivered',
        now() - case when n <= 50100 then interval '40 days' else interval '1 day' end
      from generate_series(1, 70100) n`);
    await db.execute(sql`analyze inbound_messages`);
    const cutoff = new Date(Date.now() - 30 * DAY);
    // Through the status index this read all 50,000 pruned messages first (about 1,000 pages).
    const { nodes, pages } = await explained(db, prunableBatch(db, cutoff, 100).getSQL());
    expect(nodes.map((n) => n["Node Type"])).not.toContain("Seq Scan");
    expect(pages).toBeLessThan(50);
    expect(
      await pruneOnce(db, { messageDays: 30, conversationDays: 90, batchSize: 100 }, new Date()),
    ).toEqual({ messages: 100, conversations: 0 });
  });
});
