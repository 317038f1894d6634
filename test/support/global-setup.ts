/**
 * Runs once per `vitest run`, before the test processes start:
 * - gives the run its own temporary directory, as TMPDIR for the test processes and everything they start
 *   (services, CLIs, tsx's cache), removed when the run ends: a run leaves nothing in the system's;
 * - initialises one empty embedded database and leaves its files there, so each test process starts its
 *   in-memory databases from a copy instead of running initdb (see memory-databases.ts);
 * - compiles the service once for the child processes tests start (service-build.ts);
 * - names the run; its PostgreSQL databases carry that name (createPostgresDatabase) and are dropped at its end.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { buildService } from "./service-build.js";

declare module "vitest" {
  export interface ProvidedContext {
    memoryDatabaseImage: string;
    testRunId: string;
  }
}

/** Prefix of every database the tests make on the PostgreSQL server. */
export const TEST_DATABASE_PREFIX = "qb_test_";

export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), "qb-test-run-"));
  process.env.TMPDIR = dir;
  // esbuild works in its own process meanwhile.
  const [image, bridgeBin] = await Promise.all([memoryDatabaseImage(dir), buildService(join(dir, "app"))]);
  project.provide("memoryDatabaseImage", image);
  project.provide("bridgeBin", bridgeBin);
  const runId = randomBytes(4).toString("hex");
  project.provide("testRunId", runId);
  return async () => {
    await rm(dir, { recursive: true, force: true });
    await dropTestDatabases(runId);
  };
}

/** Initialises an empty embedded database and writes its files to `dir`/image.tar; returns that path. */
async function memoryDatabaseImage(dir: string): Promise<string> {
  const fresh = await PGlite.create("memory://");
  const image = await fresh.dumpDataDir("none");
  await fresh.close();
  const path = join(dir, "image.tar");
  await writeFile(path, Buffer.from(await image.arrayBuffer()));
  return path;
}

/** Drops the databases the run's tests made on the PostgreSQL server (see createPostgresDatabase). */
async function dropTestDatabases(runId: string): Promise<void> {
  const server = process.env.DATABASE_URL;
  if (!server) return;
  const admin = postgres(server, { max: 1, onnotice: () => {} });
  try {
    const rows = await admin<{ datname: string }[]>`
      select datname from pg_database where starts_with(datname, ${`${TEST_DATABASE_PREFIX}${runId}_`})`;
    for (const { datname } of rows) await admin.unsafe(`drop database ${datname} with (force)`);
  } finally {
    await admin.end();
  }
}
