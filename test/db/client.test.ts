import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, databaseReason, openDatabase } from "../../src/db/client.js";
import { claimStatement } from "../../src/db/inbox.js";
import { migrate } from "../../src/db/migrate.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";

const rowsOf = <T>(result: unknown): T[] =>
  Array.isArray(result) ? result : ((result as { rows?: T[] }).rows ?? []);

describe.skipIf(!POSTGRES_URL)("PostgreSQL connections", () => {
  let testDb: TestDatabase;
  let database: Database;

  afterEach(async () => {
    await database?.close();
    await testDb?.drop();
  });

  // One connection, so the statements below share it.
  const open = async (query = "") => {
    testDb = await createPostgresDatabase();
    database = await openDatabase({ url: `${testDb.url}${query}`, dataDir: "memory://", maxConnections: 1 });
    return database.db;
  };
  const preparedStatements = async (db: Database["db"]) =>
    rowsOf<{ statement: string }>(
      await db.execute(sql`select statement from pg_prepared_statements where statement like '%qb_probe%'`),
    );

  it("prepares parameterized statements once per connection", async () => {
    const db = await open();
    for (let i = 0; i < 3; i++) await db.execute(sql`select ${i}::int as qb_probe`);
    expect(await preparedStatements(db)).toHaveLength(1);
  });

  it("claims through the inbox's partial indexes even with a generic (cached) plan", async () => {
    testDb = await createPostgresDatabase();
    database = await openDatabase({ url: testDb.url, dataDir: "memory://" });
    await migrate(database);
    const { db } = database;
    await db.execute(sql`
      insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text, status)
      select 'acme', 'telegram', 't' || n, 'd' || n, 'text', '{}', '{}', 'x',
        case when n % 1000 = 0 then 'pending' else 'delivered' end
      from generate_series(1, 20000) n`);
    await db.execute(sql`analyze inbound_messages`);
    // A prepared statement is planned generically after five runs: explain that plan.
    const claim = claimStatement(db, { limit: 64, leaseMs: 60_000, owner: "probe" }).toSQL();
    const literal = (p: unknown) => `'${String(p).replaceAll("'", "''")}'`;
    const plan = await db.transaction(async (tx) => {
      await tx.execute(sql`set local plan_cache_mode = force_generic_plan`);
      await tx.execute(sql.raw(`prepare probe as ${claim.sql}`));
      const lines = rowsOf<{ "QUERY PLAN": string }>(
        await tx.execute(sql.raw(`explain execute probe(${claim.params.map(literal).join(", ")})`)),
      );
      await tx.execute(sql`deallocate probe`);
      return lines.map((line) => line["QUERY PLAN"]).join("\n");
    });
    // With the statuses as parameters the generic plan could not prove the partial indexes' predicate: it read
    // the whole table twice into a hash anti join, seconds per claim under load.
    expect(plan).toContain("inbound_due_idx");
    expect(plan).toContain("inbound_thread_idx");
    expect(plan).not.toContain("Seq Scan");
  });

  it("reports a failed statement's reason without its parameters (message texts)", async () => {
    const db = await open();
    const err = await db.execute(sql`select length(${"a private message"}) / 0`).catch((e: unknown) => e);
    expect((err as Error).message).toContain("a private message");
    expect(databaseReason(err)).toBe("division by zero");
  });

  it("prepares nothing with ?prepare=false (PgBouncer in transaction mode)", async () => {
    const db = await open("?prepare=false");
    for (let i = 0; i < 3; i++) await db.execute(sql`select ${i}::int as qb_probe`);
    expect(await preparedStatements(db)).toHaveLength(0);
  });
});
