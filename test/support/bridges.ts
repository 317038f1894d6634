import { onTestFinished } from "vitest";
import { createTestDatabase } from "./db.js";
import { startTestBridge, type TestBridge, type TestBridgeOptions } from "./harness.js";
import { borrowMemoryDatabase, giveBackMemoryDatabase } from "./memory-databases.js";

type BridgeOnSharedDatabase = Omit<TestBridgeOptions, "databaseUrl" | "database">;

/**
 * Bridges on one fresh database of `kind`, as replicas: on PostgreSQL each with its own connections, as
 * separate processes would have; PGlite is one connection inside this process, which they share. Stopped, and
 * the database dropped, when the test ends.
 */
export async function startBridges(kind: "pglite" | "postgres", options: BridgeOnSharedDatabase[]) {
  const testDb = await createTestDatabase(kind);
  const shared = testDb.url ? undefined : await borrowMemoryDatabase();
  const bridges: TestBridge[] = [];
  onTestFinished(async () => {
    for (const bridge of bridges) await bridge.stop();
    if (shared) await giveBackMemoryDatabase(shared);
    await testDb.drop();
  });
  for (const bridge of options)
    bridges.push(
      await startTestBridge({
        ...bridge,
        ...(testDb.url && { databaseUrl: testDb.url }),
        ...(shared && { database: shared }),
      }),
    );
  return bridges;
}
