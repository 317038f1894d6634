import { desc, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { Db } from "../../src/db/client.js";
import {
  claimStatement,
  finishAll,
  finishAllStatement,
  insertInKnownThreadStatement,
  insertRows,
  insertStatement,
  queueStats,
  queueStatsStatement,
  storeReplies,
  storeRepliesStatement,
} from "../../src/db/inbox.js";
import { inboundMessages } from "../../src/db/schema.js";
import {
  DATABASE_KINDS,
  explained,
  genericPlan,
  inboxRow,
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
    // About 25 a row: one probe of the unfinished messages' index, the row's entries in seven indexes, its
    // conversation.
    expect(pages).toBeLessThan(150);
  });

  it("reads none of a long chat's history to queue a message, claim its thread's head or end it", async () => {
    const db = await migratedDatabase("postgres");
    // One chat with 20,000 answered messages, then one waiting to be answered.
    await db.execute(sql`
      insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text, status,
        next_attempt_at)
      select 'acme', 'telegram', 'chat', 'old-' || n, 'text', '{}', '{}', 'x', 'delivered', null
      from generate_series(1, 20000) n`);
    const row = {
      tenant_id: "acme",
      channel: "telegram" as const,
      thread_key: "chat",
      kind: "text",
      sender: { id: "u" },
      route: { chat_id: 1 },
      text: "hi",
    };
    await insertRows(db, [{ ...row, dedupe_key: "head" }]);
    // Its thread is busy: the next message is queued, found through the head alone.
    const queue = await explained(db, insertStatement([{ ...row, dedupe_key: "next" }]));
    const claim = await explained(
      db,
      claimStatement(db, { limit: 64, leaseMs: 60_000, owner: "w:1" }).getSQL(),
    );
    const [head] = rowsOf<{ id: number }>(
      await db.execute(sql`select id from inbound_messages where dedupe_key = 'head'`),
    );
    const end = await explained(
      db,
      finishAllStatement([{ lease: { id: Number(head?.id), owner: "w:1" }, status: "delivered" }]),
    );
    const states = rowsOf<{ dedupe_key: string; status: string; due: boolean }>(
      await db.execute(sql`select dedupe_key, status, next_attempt_at is not null as due from inbound_messages
        where dedupe_key in ('head', 'next') order by id`),
    );
    expect(states).toEqual([
      { dedupe_key: "head", status: "delivered", due: false },
      { dedupe_key: "next", status: "pending", due: true },
    ]);
    // With \`status in ('pending', 'delivering')\` the thread index's entries were filtered one by one: 474
    // pages for each probe here.
    const pages = { queue: queue.pages, claim: claim.pages, end: end.pages };
    console.log("pages with a 20,000-message history:", pages);
    expect(Math.max(...Object.values(pages))).toBeLessThan(60);
  });

  it("claims as cheaply from a backlog of 50,000 as from one of 2,000, deep or wide, on tables never analyzed", async () => {
    /** Pages a claim of 64 reads with `perThread` messages waiting in each of `threads` threads. */
    const claimCost = async (threads: number, perThread: number) => {
      const db = await migratedDatabase("postgres");
      await db.execute(sql`alter table inbound_messages set (autovacuum_enabled = false)`);
      // Stored as webhooks store them, a batch of up to 500 at a time.
      for (let round = 0; round < perThread; round++) {
        for (let first = 0; first < threads; first += 500) {
          const batch = Array.from({ length: Math.min(500, threads - first) }, (_, i) => first + i);
          await insertRows(
            db,
            batch.map((thread) => inboxRow(`t${thread}`, `${round}-${thread}`, thread)),
          );
        }
      }
      const [stats] = rowsOf<{ analyzed: boolean; due: number }>(
        await db.execute(sql`select
          (select coalesce(last_analyze, last_autoanalyze) is not null from pg_stat_user_tables
            where relname = 'inbound_messages') as analyzed,
          (select count(*)::int from inbound_messages where next_attempt_at is not null) as due`),
      );
      // Only each thread's head is due.
      expect(stats).toEqual({ analyzed: false, due: threads });
      const { pages } = await explained(
        db,
        claimStatement(db, { limit: 64, leaseMs: 60_000, owner: "w:1" }).getSQL(),
      );
      const [claimed] = rowsOf<{ n: number; heads: number }>(
        await db.execute(sql`select count(*)::int as n,
          count(*) filter (where dedupe_key like '0-%')::int as heads
          from inbound_messages where lease_owner = 'w:1'`),
      );
      expect(claimed).toEqual({ n: 64, heads: 64 });
      return pages;
    };
    const small = await claimCost(500, 4);
    const deep = await claimCost(500, 100);
    const wide = await claimCost(50_000, 1);
    console.log(`claim of 64: ${small} pages with 2,000 waiting; with 50,000: ${deep} deep, ${wide} wide`);
    // Before only thread heads were due, every waiting message was walked and its thread probed (3,273 pages
    // at 50,000 deep); sorting every due head read 1,325 at 50,000 wide.
    for (const large of [deep, wide]) expect(large).toBeLessThan(small * 1.25 + 20);
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

    // Only the thread indexes are led by (tenant_id, channel, thread_key), so no other index can stand in for
    // them on a thread probe, as the dedupe index did on an inbox not yet analyzed.
    const indexes = rowsOf<{ indexname: string; indexdef: string }>(
      await db.execute(
        sql`select indexname, indexdef from pg_indexes where tablename = 'inbound_messages' order by 1`,
      ),
    );
    expect(
      indexes.filter((i) => /USING btree \(tenant_id, channel\b/.test(i.indexdef)).map((i) => i.indexname),
    ).toEqual(["inbound_thread_idx", "inbound_unfinished_idx"]);
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

  it("lists failed messages from an index of the failed ones alone", async () => {
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
    expect(nodes.map((n) => n["Index Name"])).toContain("inbound_failed_idx");
    expect(pages).toBeLessThan(20);
    // Five entries: its metapage and one leaf. With the delivered messages it took 52 pages here.
    const [size] = rowsOf<{ pages: number }>(
      await db.execute(sql`select pg_relation_size('inbound_failed_idx')::int / 8192 as pages`),
    );
    expect(size?.pages).toBe(2);
  });

  it("counts the queue for metrics from the unfinished messages alone", async () => {
    const db = await migratedDatabase("postgres");
    await seed(db, 20_000, sql`case when n % 1000 = 0 then 'pending' else 'delivered' end`);
    const { pages } = await explained(db, queueStatsStatement());
    expect(await queueStats(db)).toEqual({ depth: 20, oldest: expect.any(Number) });
    // The whole inbox (or a whole index of it) is over 200 pages.
    expect(pages).toBeLessThan(40);
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
