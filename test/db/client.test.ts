import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/client.js";
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

  it("prepares parameterized statements once per connection, and plans each run for its parameters", async () => {
    const db = await open();
    for (let i = 0; i < 3; i++) await db.execute(sql`select ${i}::int as qb_probe`);
    expect(await preparedStatements(db)).toHaveLength(1);
    // A generic plan ignores the claim's LIMIT and parameters: it scanned the inbox (seconds under load).
    const [mode] = rowsOf<{ plan_cache_mode: string }>(await db.execute(sql`show plan_cache_mode`));
    expect(mode?.plan_cache_mode).toBe("force_custom_plan");
  });

  it("prepares nothing with ?prepare=false (PgBouncer in transaction mode)", async () => {
    const db = await open("?prepare=false");
    for (let i = 0; i < 3; i++) await db.execute(sql`select ${i}::int as qb_probe`);
    expect(await preparedStatements(db)).toHaveLength(0);
  });
});
