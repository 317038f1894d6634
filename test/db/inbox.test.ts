import { desc, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { Db } from "../../src/db/client.js";
import {
  finishAll,
  finishAllStatement,
  insertInKnownThreadStatement,
  insertStatement,
  storeReplies,
  storeRepliesStatement,
} from "../../src/db/inbox.js";
import { inboundMessages } from "../../src/db/schema.js";
import {
  DATABASE_KINDS,
  explained,
  genericPlan,
  migrated,
  migratedDatabase,
  POSTGRES_URL,
  rowsOf,
} from "../support/db.js";

/** Stores `count` messages of tenant acme on `channel`, one per thread (`t<n>`), with the status `status` gives. */
function seed(db: Db, count: number, status = sql`'pending'`, channel = "telegram") {
  return db.execute(sql`
    insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text, status)
    select 'acme', ${channel}, 't' || n, 'd' || n, 'text', '{}', '{}', 'x', ${status}
    from generate_series(1, ${sql.raw(String(count))}) n`);
}

describe.skipIf(!POSTGRES_URL)("inbox statements on a large inbox", () => {
  it("probes only the new message's thread when deciding whether the insert may lease it", async () => {
    const db = await migratedDatabase("postgres");
    // 20,000 unfinished messages in other threads: a backlog.
    await seed(db, 20_000);
    await db.execute(sql`analyze inbound_messages`);
    const rows = Array.from({ length: 4 }, (_, i) => ({
      tenant_id: "acme",
      channel: "telegram" as const,
      thread_key: `new-${i}`,
      dedupe_key: `new-${i}`,
      kind: "text",
      sender: { id: "u" },
      route: { chat_id: 1 },
      text: "hi",
      lease_owner: "worker:1",
      lease_ms: 60_000,
    }));
    // A few index pages per row. Hashing every unfinished message of the inbox instead read over 1,000 here.
    const { pages } = await explained(db, insertStatement(rows));
    expect(pages).toBeLessThan(100);
  });

  it("answers whether a thread has any message from the thread index alone", async () => {
    const db = await migratedDatabase("postgres");
    // 10,000 messages of the same tenant and channel, in other threads.
    await seed(db, 10_000, sql`'delivered'`, "slack");
    await db.execute(sql`analyze inbound_messages`);
    const followUp = {
      tenant_id: "acme",
      channel: "slack" as const,
      thread_key: "unknown",
      dedupe_key: "new",
      kind: "text",
      sender: { id: "U1" },
      route: { channel: "C1" },
      text: "in a thread we never saw",
    };
    // Through the old dedupe index's (tenant_id, channel) prefix this read every one of the 10,000.
    const { nodes, pages } = await explained(db, insertInKnownThreadStatement(followUp));
    expect(nodes.map((n) => n["Node Type"])).not.toContain("Seq Scan");
    expect(pages).toBeLessThan(20);

    // Only the thread index is led by (tenant_id, channel), so no other index can stand in for it on a
    // thread probe, as the dedupe index did on an inbox not yet analyzed.
    const indexes = rowsOf<{ indexname: string; indexdef: string }>(
      await db.execute(
        sql`select indexname, indexdef from pg_indexes where tablename = 'inbound_messages' order by 1`,
      ),
    );
    expect(
      indexes.filter((i) => /USING btree \(tenant_id, channel\b/.test(i.indexdef)).map((i) => i.indexname),
    ).toEqual(["inbound_thread_idx"]);
  });

  it("plans the webhook inserts once, on an empty inbox, with an index probe for every read", async () => {
    const { database, url = "" } = await migrated("postgres");
    const planCacheMode = async (db: Db) =>
      rowsOf<{ plan_cache_mode: string }>(await db.execute(sql`show plan_cache_mode`))[0]?.plan_cache_mode;
    expect(await planCacheMode(database.fixedPlans)).toBe("force_generic_plan");
    expect(await planCacheMode(database.db)).toBe("force_custom_plan");

    const row = {
      tenant_id: "acme",
      channel: "telegram" as const,
      thread_key: "t1",
      dedupe_key: "d1",
      kind: "text",
      sender: { id: "u" },
      route: { chat_id: 1 },
      text: "hi",
    };
    // The plans made now are the ones kept while the inbox grows: every read must go through an index.
    for (const statement of [
      insertStatement([{ ...row, lease_owner: "worker:1", lease_ms: 60_000 }]),
      insertInKnownThreadStatement(row),
    ]) {
      const reads = (await genericPlan(url, statement)).filter(
        (node) => node["Relation Name"] && node["Node Type"] !== "ModifyTable",
      );
      expect(reads.map((node) => node["Relation Name"])).toContain("inbound_messages");
      expect(reads.map((node) => node["Node Type"])).toEqual(
        reads.map(() => expect.stringMatching(/^Index (Only )?Scan$/)),
      );
    }
  });

  it("keeps delivered messages out of the status index, which still lists the failed ones", async () => {
    const db = await migratedDatabase("postgres");
    await seed(db, 10_000, sql`case when n % 2000 = 0 then 'failed' else 'delivered' end`);
    await db.execute(sql`analyze inbound_messages`);
    // The admin API's listing, with the status as a parameter.
    const failed = db
      .select({ id: inboundMessages.id })
      .from(inboundMessages)
      .where(eq(inboundMessages.status, "failed"))
      .orderBy(desc(inboundMessages.id))
      .limit(50);
    const { nodes, pages } = await explained(db, failed.getSQL());
    expect(nodes.map((n) => n["Index Name"])).toContain("inbound_status_idx");
    expect(pages).toBeLessThan(20);
    // Five entries: its metapage and one leaf. With the delivered messages it took 52 pages here.
    const [size] = rowsOf<{ pages: number }>(
      await db.execute(sql`select pg_relation_size('inbound_status_idx')::int / 8192 as pages`),
    );
    expect(size?.pages).toBe(2);
  });

  it("writes a reply and a final state by primary key, not by reading the inbox", async () => {
    const db = await migratedDatabase("postgres");
    // 10,000 answered messages, and one in delivery. (At 20,000 the planner turns to the index anyway.)
    await seed(db, 10_000, sql`'delivered'`);
    const [leased] = rowsOf<{ id: string }>(
      await db.execute(sql`
        insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text,
          lease_owner)
        values ('acme', 'telegram', 'live', 'live', 'text', '{}', '{}', 'hi', 'worker:1') returning id`),
    );
    await db.execute(sql`analyze inbound_messages`);
    const lease = { id: Number(leased?.id), owner: "worker:1" };
    const conversation = { tenantId: "acme", channel: "telegram", threadKey: "live", convId: "c1" };
    const statements = [
      storeRepliesStatement([{ lease, html: "<b>hi</b>", conversation }]),
      finishAllStatement([
        { lease, status: "delivered", lastPart: { inboundId: lease.id, part: 0, status: "sent" } },
      ]),
    ];
    for (const statement of statements) {
      const { nodes, pages } = await explained(db, statement);
      // Each read the whole table (a hash join over a sequential scan: about 175 pages here).
      expect(
        nodes.filter((n) => n["Relation Name"] === "inbound_messages").map((n) => n["Node Type"]),
      ).not.toContain("Seq Scan");
      expect(pages).toBeLessThan(60);
    }
  });
});

describe.each(DATABASE_KINDS)("replies and final states on %s", (kind) => {
  it("are written for several messages per statement, each fenced by its lease", async () => {
    const db = await migratedDatabase(kind);
    // Messages 1-4 in threads a-d, leased to "w"; 5 waits behind 3 in thread c; 4's lease went to "other".
    await db.execute(sql`
      insert into inbound_messages (id, tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text,
        status, lease_owner)
      values (1, 'acme', 'telegram', 'a', 'd1', 'text', '{}', '{}', 'x', 'pending', 'w'),
        (2, 'acme', 'telegram', 'b', 'd2', 'text', '{}', '{}', 'x', 'pending', 'w'),
        (3, 'acme', 'telegram', 'c', 'd3', 'text', '{}', '{}', 'x', 'delivering', 'w'),
        (4, 'acme', 'telegram', 'd', 'd4', 'text', '{}', '{}', 'x', 'delivering', 'other'),
        (5, 'acme', 'telegram', 'c', 'd5', 'text', '{}', '{}', 'x', 'pending', null)`);
    const conversation = { tenantId: "acme", channel: "telegram", threadKey: "a", convId: "conv-a" };
    const stored = await storeReplies(db, [
      { lease: { id: 1, owner: "w" }, html: "<b>hi</b>", conversation },
      { lease: { id: 2, owner: "stale" }, html: "lost" },
    ]);
    expect(stored).toEqual([true, false]); // stored; lease lost
    const finished = await finishAll(db, [
      { lease: { id: 3, owner: "w" }, status: "delivered", lastPart: sentPart(3) },
      { lease: { id: 4, owner: "w" }, status: "delivered" },
    ]);
    expect(finished).toEqual([true, false]); // ended with message 5 waiting behind it; lease lost
    const rows = await db.execute(
      sql`select id::int, status, reply_html, lease_owner from inbound_messages order by id`,
    );
    expect(rowsOf(rows)).toEqual([
      { id: 1, status: "delivering", reply_html: "<b>hi</b>", lease_owner: "w" },
      { id: 2, status: "pending", reply_html: null, lease_owner: "w" },
      { id: 3, status: "delivered", reply_html: null, lease_owner: null },
      { id: 4, status: "delivering", reply_html: null, lease_owner: "other" },
      { id: 5, status: "pending", reply_html: null, lease_owner: null },
    ]);
    const threads = await db.execute(sql`select thread_key, conv_id from conversations`);
    expect(rowsOf(threads)).toEqual([{ thread_key: "a", conv_id: "conv-a" }]);
    const parts = await db.execute(
      sql`select inbound_id::int, part, channel_message_id from outbound_messages`,
    );
    expect(rowsOf(parts)).toEqual([{ inbound_id: 3, part: 0, channel_message_id: "m3" }]);
    // A thread with nothing behind its message reports so.
    const [alone] = await finishAll(db, [{ lease: { id: 1, owner: "w" }, status: "delivered" }]);
    expect(alone).toBe(false);
  });
});

const sentPart = (id: number) => ({ inboundId: id, part: 0, status: "sent", channelMessageId: `m${id}` });
