import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/client.js";
import { finishAll } from "../../src/db/inbox.js";
import { migrate } from "../../src/db/migrate.js";
import { createPostgresDatabase, POSTGRES_URL, rowsOf, type TestDatabase } from "../support/db.js";

describe.skipIf(!POSTGRES_URL)("PostgreSQL connections", () => {
  let testDb: TestDatabase;
  let database: Database;

  afterEach(async () => {
    await database?.close();
    await testDb?.drop();
  });

  // One connection, so the statements below share it.
  const open = async (query = "", { migrated = false } = {}) => {
    testDb = await createPostgresDatabase();
    if (migrated) {
      const migrating = await openDatabase({ url: testDb.url, dataDir: "memory://" });
      await migrate(migrating).finally(() => migrating.close());
    }
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

  it("plans each run of a prepared statement for the inbox as it is now, not as it was when prepared", async () => {
    const db = await open("", { migrated: true });
    // Prepared and run on an empty inbox, as on a fresh install: a cached plan made now would seq-scan
    // (a hash join) the inbox for ever after.
    const finish = (id: number) => finishAll(db, [{ lease: { id, owner: "probe" }, status: "delivered" }]);
    for (let i = 0; i < 8; i++) await finish(i);
    await db.execute(sql`
      insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text, status)
      select 'acme', 'telegram', 't' || n, 'd' || n, 'text', '{}', '{}', 'x', 'delivered'
      from generate_series(1, 20000) n`);
    for (let i = 0; i < 4; i++) await finish(i);
    const [plans] = rowsOf<{ generic: number; custom: number }>(
      await db.execute(sql`select generic_plans::int as generic, custom_plans::int as custom
        from pg_prepared_statements where statement like '%jsonb_to_recordset%' and statement like '%part as%'`),
    );
    expect(plans).toEqual({ generic: 0, custom: 12 });
  });

  it("prepares nothing with ?prepare=false (PgBouncer in transaction mode), nor sets a plan mode", async () => {
    const db = await open("?prepare=false");
    for (let i = 0; i < 3; i++) await db.execute(sql`select ${i}::int as qb_probe`);
    expect(await preparedStatements(db)).toHaveLength(0);
    // PgBouncer refuses a connection whose startup packet carries a parameter it does not know.
    expect(rowsOf(await db.execute(sql`show plan_cache_mode`))).toEqual([{ plan_cache_mode: "auto" }]);
  });
});
