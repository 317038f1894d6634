import { randomBytes } from "node:crypto";
import { eq, type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { onTestFinished } from "vitest";
import { type Database, type Db, openDatabase, rowsOf } from "../../src/db/client.js";
import type { InboxInsert } from "../../src/db/inbox.js";
import { migrate } from "../../src/db/migrate.js";
import { inboundMessages, outboundMessages } from "../../src/db/schema.js";
import { waitFor } from "./harness.js";

/** The PostgreSQL server tests use when DATABASE_URL is set (CI sets it); otherwise tests use PGlite. */
export const POSTGRES_URL = process.env.DATABASE_URL;

/** The database kinds to run database-backed tests on: PGlite always, PostgreSQL when available. */
export const DATABASE_KINDS: ("pglite" | "postgres")[] = POSTGRES_URL ? ["pglite", "postgres"] : ["pglite"];

export interface TestDatabase {
  /** postgres URL, or undefined for a fresh in-memory PGlite per bridge. */
  url?: string;
  drop(): Promise<void>;
}

/** A fresh, empty database on the test PostgreSQL server, dropped afterwards. */
export async function createPostgresDatabase(): Promise<TestDatabase> {
  if (!POSTGRES_URL) throw new Error("DATABASE_URL is not set");
  const name = `qb_test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
      await sql.unsafe(`drop database if exists ${name} with (force)`);
      await sql.end();
    },
  };
}

export async function createTestDatabase(kind: "pglite" | "postgres"): Promise<TestDatabase> {
  return kind === "postgres" ? createPostgresDatabase() : { drop: async () => {} };
}

export { rowsOf } from "../../src/db/client.js";

/** A migrated database of `kind` for the running test, closed and dropped when the test ends. */
export async function migratedDatabase(kind: "pglite" | "postgres"): Promise<Db> {
  return (await migrated(kind)).database.db;
}

/** As migratedDatabase: the whole Database, and its URL on PostgreSQL. */
export async function migrated(kind: "pglite" | "postgres"): Promise<{ database: Database; url?: string }> {
  const testDb = await createTestDatabase(kind);
  const database = await openDatabase({ url: testDb.url, dataDir: "memory://" });
  onTestFinished(async () => {
    await database.close();
    await testDb.drop();
  });
  await migrate(database);
  return { database, url: testDb.url };
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Shared Hit Blocks": number;
  "Shared Read Blocks": number;
  Plans?: PlanNode[];
}

/** Runs the statement under EXPLAIN ANALYZE: its plan's nodes, and the pages it read (all of them, cached or not). */
export async function explained(db: Db, statement: SQL) {
  const result = await db.execute(sql`explain (analyze, buffers, format json) ${statement}`);
  const [row] = rowsOf<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(result);
  const plan = row?.["QUERY PLAN"][0].Plan;
  if (!plan) throw new Error("no plan");
  return { nodes: nodesOf(plan), pages: plan["Shared Hit Blocks"] + plan["Shared Read Blocks"] };
}

/**
 * The nodes of the plan a connection that keeps its plans (`Database.fixedPlans`) makes for the statement:
 * PostgreSQL's generic plan, made without the parameters' values and from the tables as they are now.
 */
export async function genericPlan(url: string, statement: SQL): Promise<PlanNode[]> {
  const { sql: text, params } = new PgDialect().sqlToQuery(statement);
  const session = postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { plan_cache_mode: "force_generic_plan" },
  });
  try {
    // PREPARE and EXECUTE take no bind parameters: the values go in as literals.
    await session.unsafe(`prepare checked as ${text}`).simple();
    const literals = params.map((p) => `'${String(p).replaceAll("'", "''")}'`).join(", ");
    const result = await session.unsafe(`explain (format json) execute checked(${literals})`).simple();
    const [row] = rowsOf<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(result);
    if (!row) throw new Error("no plan");
    return nodesOf(row["QUERY PLAN"][0].Plan);
  } finally {
    await session.end();
  }
}

function nodesOf(plan: PlanNode): PlanNode[] {
  const nodes: PlanNode[] = [];
  const visit = (node: PlanNode) => {
    nodes.push(node);
    node.Plans?.forEach(visit);
  };
  visit(plan);
  return nodes;
}

/** The sent part a channel knows by `channelMessageId` (a Twilio MessageSid), as stored. */
export async function partByChannelId(db: Db, channelMessageId: string) {
  const [part] = await db
    .select()
    .from(outboundMessages)
    .where(eq(outboundMessages.channelMessageId, channelMessageId));
  return part;
}

/** A new Telegram message of tenant acme in thread `thread` (chat `chatId`), as a webhook stores it. */
export const inboxRow = (thread: string, dedupeKey: string, chatId = 1): InboxInsert => ({
  tenant_id: "acme",
  channel: "telegram",
  thread_key: thread,
  dedupe_key: dedupeKey,
  kind: "text",
  sender: { id: "u" },
  route: { chat_id: chatId },
  text: "hi",
});

/** The inbox, in id order, once it holds at least `count` messages and every one has ended (delivered or failed). */
export async function settledInbox(db: Db, count: number) {
  const rows = await waitFor(
    async () => {
      const rows = await db.select().from(inboundMessages).orderBy(inboundMessages.id);
      const ended = rows.every((r) => r.status === "delivered" || r.status === "failed");
      return rows.length >= count && ended ? rows : undefined;
    },
    10_000,
    `${count} finished messages`,
  );
  return rows!;
}
