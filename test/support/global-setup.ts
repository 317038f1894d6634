/**
 * Runs once per `vitest run`. Initialises one empty embedded database and leaves its files in a temporary
 * file, so each test process starts its in-memory databases from a copy instead of running initdb (see
 * memory-databases.ts); names the run, whose PostgreSQL databases carry that name (createPostgresDatabase).
 * When the run ends, removes the file and drops those databases.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { POSTGRES_URL, TEST_DATABASE_PREFIX } from "./db.js";

declare module "vitest" {
  export interface ProvidedContext {
    memoryDatabaseImage: string;
    testRunId: string;
  }
}

export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), "qb-pglite-image-"));
  const fresh = await PGlite.create("memory://");
  const image = await fresh.dumpDataDir("none");
  await fresh.close();
  const path = join(dir, "image.tar");
  await writeFile(path, Buffer.from(await image.arrayBuffer()));
  project.provide("memoryDatabaseImage", path);
  const runId = randomBytes(4).toString("hex");
  project.provide("testRunId", runId);
  return async () => {
    await rm(dir, { recursive: true, force: true });
    await dropTestDatabases(runId);
  };
}

/** Drops the databases the run's tests made on the PostgreSQL server (see createPostgresDatabase). */
async function dropTestDatabases(runId: string): Promise<void> {
  if (!POSTGRES_URL) return;
  const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
  try {
    const rows = await admin<{ datname: string }[]>`
      select datname from pg_database where starts_with(datname, ${`${TEST_DATABASE_PREFIX}${runId}_`})`;
    for (const { datname } of rows) await admin.unsafe(`drop database ${datname} with (force)`);
  } finally {
    await admin.end();
  }
}
