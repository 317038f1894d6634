import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/client.js";
import { InboxWriter } from "../../src/db/inbox-writer.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createMetrics } from "../../src/metrics.js";
import { createQuickchatClient } from "../../src/quickchat/client.js";
import { WorkerPool } from "../../src/relay/worker.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";
import { waitFor } from "../support/harness.js";

describe.skipIf(!POSTGRES_URL)("worker slots shared by the handoff and the claim", () => {
  let testDb: TestDatabase;
  let database: Database;
  let pool: WorkerPool | undefined;
  let locker: postgres.Sql | undefined;

  afterEach(async () => {
    await pool?.stop(1000);
    await locker?.end();
    await database?.close();
    await testDb?.drop();
  });

  it("grants no slot that a claim in flight may need", async () => {
    testDb = await createPostgresDatabase();
    database = await openDatabase({ url: testDb.url, dataDir: "memory://" });
    await migrate(database);
    const message = (n: number) => ({
      threadKey: `t${n}`,
      dedupeKey: `d${n}`,
      kind: "text" as const,
      text: "hi",
      sender: { id: "u" },
      route: { chat_id: n },
    });
    await new InboxWriter(database.db).store("acme", "telegram", [1, 2, 3].map(message));
    pool = new WorkerPool({
      database,
      // No tenant is configured: a claimed message fails at once, which is all this test needs.
      tenants: { get: async () => undefined, list: async () => [] },
      adapters: {},
      quickchat: createQuickchatClient({ timeoutMs: 1000 }),
      log: createLogger("silent"),
      metrics: createMetrics(async () => ({ depth: 0, oldest: 0 })),
      options: {
        concurrency: 10,
        tenantConcurrency: 4,
        leaseMs: 60_000,
        pollIntervalMs: 60_000,
        maxRetryMs: 60_000,
        backoff: { baseMs: 100, maxMs: 1000 },
      },
    });
    // Hold the claim: it waits for this lock with its limit of 4 (the tenant's whole cap) outstanding.
    locker = postgres(testDb.url ?? "", { max: 1, onnotice: () => {} });
    const release = await new Promise<() => void>((resolveRelease) => {
      void locker?.begin(async (tx) => {
        await tx`lock table inbound_messages in access exclusive mode`;
        await new Promise<void>((unlock) => resolveRelease(unlock));
      });
    });
    await pool.start();
    const waiting = async () =>
      (await database.db.execute(
        sql`select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like 'update%'`,
      )) as unknown as unknown[];
    await waitFor(async () => (await waiting()).length > 0, 5000, "the claim waiting on the lock");

    // The claim may bring back 4 messages of acme: a webhook's message must not take a fifth slot meanwhile.
    expect(pool.reserve("acme")).toBeUndefined();
    release();
    await waitFor(() => pool?.active === 0, 5000, "the claimed messages to finish");
    // Once no claim is in flight, the tenant's slots are free again.
    const granted = await waitFor(() => pool?.reserve("acme"), 5000, "a slot for acme");
    expect(granted).toMatch(/:/);
    pool.cancel("acme");
  });
});
