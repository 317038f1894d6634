import { type SQL, sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/client.js";
import {
  finishAll,
  finishAllStatement,
  insertStatement,
  storeReplies,
  storeRepliesStatement,
} from "../../src/db/inbox.js";
import { migrate } from "../../src/db/migrate.js";
import {
  createTestDatabase,
  DATABASE_KINDS,
  POSTGRES_URL,
  rowsOf,
  type TestDatabase,
} from "../support/db.js";

let testDb: TestDatabase | undefined;
let database: Database | undefined;

afterEach(async () => {
  await database?.close();
  await testDb?.drop();
  database = testDb = undefined;
});

/** A migrated database of `kind`, closed and dropped after the test. */
async function migrated(kind: "pglite" | "postgres") {
  testDb = await createTestDatabase(kind);
  database = await openDatabase({ url: testDb.url, dataDir: "memory://" });
  await migrate(database);
  return database.db;
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Shared Hit Blocks": number;
  "Shared Read Blocks": number;
  Plans?: PlanNode[];
}

/** Runs the statement under EXPLAIN ANALYZE: its plan's nodes, and the pages it read (all of them, cached or not). */
async function explained(db: Database["db"], statement: SQL) {
  const result = await db.execute(sql`explain (analyze, buffers, format json) ${statement}`);
  const [row] = result as unknown as { "QUERY PLAN": [{ Plan: PlanNode }] }[]; // postgres.js: the rows themselves
  const plan = row?.["QUERY PLAN"][0].Plan;
  if (!plan) throw new Error("no plan");
  const nodes: PlanNode[] = [];
  const visit = (node: PlanNode) => {
    nodes.push(node);
    node.Plans?.forEach(visit);
  };
  visit(plan);
  return { nodes, pages: plan["Shared Hit Blocks"] + plan["Shared Read Blocks"] };
}

describe.skipIf(!POSTGRES_URL)("inbox statements on a large inbox", () => {
  it("probes only the new message's thread when deciding whether the insert may lease it", async () => {
    const db = await migrated("postgres");
    // 20,000 unfinished messages in other threads: a backlog.
    await db.execute(sql`
      insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text)
      select 'acme', 'telegram', 't' || n, 'd' || n, 'text', '{}', '{}', 'x' from generate_series(1, 20000) n`);
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

  it("writes a reply and a final state by primary key, not by reading the inbox", async () => {
    const db = await migrated("postgres");
    // 10,000 answered messages, and one in delivery. (At 20,000 the planner turns to the index anyway.)
    await db.execute(sql`
      insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text, status)
      select 'acme', 'telegram', 't' || n, 'd' || n, 'text', '{}', '{}', 'x', 'delivered'
      from generate_series(1, 10000) n`);
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
    const db = await migrated(kind);
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
