import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import type { PgliteDatabase } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import { type Database, type Db, rowsOf } from "./client.js";

/** `drizzle/` at the package root, from src/db (tsx) and dist/db (compiled) alike. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));

/** Arbitrary constant identifying the bridge's migration lock among advisory locks. */
const MIGRATION_LOCK = 7_316_001;

/** Applies pending migrations; safe when several replicas start at once (advisory lock). */
export async function migrate(database: Database): Promise<void> {
  const config = { migrationsFolder: MIGRATIONS_FOLDER };
  await database.withLock(MIGRATION_LOCK, () =>
    database.kind === "postgres"
      ? migratePostgres(database.db as unknown as PostgresJsDatabase, config)
      : migratePglite(database.db as unknown as PgliteDatabase, config),
  );
}

function expectedMigrations(): number {
  const journal = JSON.parse(readFileSync(`${MIGRATIONS_FOLDER}/meta/_journal.json`, "utf8")) as {
    entries: unknown[];
  };
  return journal.entries.length;
}

/** True when every migration in `drizzle/` has been applied to this database. */
export async function migrationsApplied(db: Db): Promise<boolean> {
  try {
    const [row] = rowsOf<{ n: number }>(
      await db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`),
    );
    return (row?.n ?? 0) >= expectedMigrations();
  } catch {
    return false;
  }
}
