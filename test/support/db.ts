import { randomBytes } from "node:crypto";
import postgres from "postgres";

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
