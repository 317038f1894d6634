import { randomBytes } from "node:crypto";
import { eq, type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { inject, onTestFinished } from "vitest";
import { type Database, type Db, openDatabase, rowsOf } from "../../src/db/client.js";
import type { InboxInsert } from "../../src/db/inbox.js";
import { migrate } from "../../src/db/migrate.js";
import { inboundMessages, outboundMessages } from "../../src/db/schema.js";
import { TEST_DATABASE_PREFIX } from "./global-setup.js";
import { waitFor } from "./harness.js";
import { borrowMemoryDatabase, giveBackMemoryDatabase } from "./memory-databases.js";

/** The PostgreSQL server tests use when DATABASE_URL is set (CI sets it); otherwise tests use PGlite. */
export const POSTGRES_URL = process.env.DATABASE_URL;

/** The database kinds to run database-backed tests on: PGlite always, PostgreSQL when available. */
export const DATABASE_KINDS: ("pglite" | "postgres")[] = POSTGRES_URL ? ["pglite", "postgres"] : ["pglite"];

export interface TestDatabase {
  /** postgres URL, or undefined for a fresh in-memory PGlite per bridge. */
  url?: string;
  drop(): Promise<void>;
}

/**
 * An empty database on the test PostgreSQL server, for the running test. CREATE and DROP DATABASE each wait
 * for a checkpoint (up to 2 s here), so databases are reused: one released by `drop()` is handed out again
 * under a new name (so a client some earlier test left connected cannot reach it again), with its schemas
 * dropped and made anew, as empty as a new one. Names carry the run and the vitest worker slot, so workers and
 * concurrent runs never share one; the run's teardown drops them (global-setup.ts).
 */
export async function createPostgresDatabase(): Promise<TestDatabase> {
  if (!POSTGRES_URL) throw new Error("DATABASE_URL is not set");
  const name = `${TEST_DATABASE_PREFIX}${inject("testRunId")}_${process.env.VITEST_POOL_ID ?? "0"}_${randomBytes(4).toString("hex")}`;
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  const reused = released.pop();
  if (reused) await renamedAndEmptied(reused, name, url.toString());
  else await withAdmin((admin) => admin.unsafe(`create database ${name}`));
  return {
    url: url.toString(),
    async drop() {
      released.push(name);
    },
  };
}

/** Databases this process made and the tests have released. */
const released: string[] = [];

async function withAdmin<T>(use: (admin: postgres.Sql) => Promise<T>): Promise<T> {
  const admin = postgres(POSTGRES_URL!, { max: 1, onnotice: () => {} });
  try {
    return await use(admin);
  } finally {
    await admin.end();
  }
}

/** Ends the sessions on database `from`, renames it `to`, and drops and makes anew its schemas. */
async function renamedAndEmptied(from: string, to: string, url: string): Promise<void> {
  await withAdmin(async (admin) => {
    // A client left connected may reconnect between the two statements: try again.
    for (let attempt = 1; ; attempt++) {
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${from}`;
      try {
        return void (await admin.unsafe(`alter database ${from} rename to ${to}`));
      } catch (error) {
        if (attempt === 5) throw error;
      }
    }
  });
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(
      "drop schema if exists drizzle cascade; drop schema public cascade; create schema public",
    );
  } finally {
    await sql.end();
  }
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
  if (kind === "pglite") {
    const database = await borrowMemoryDatabase();
    onTestFinished(() => giveBackMemoryDatabase(database));
    return { database };
  }
  const testDb = await createPostgresDatabase();
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
