import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase, rowsOf } from "../../src/db/client.js";
import { InboxWriter } from "../../src/db/inbox-writer.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createMetrics } from "../../src/metrics.js";
import { createQuickchatClient } from "../../src/quickchat/client.js";
import { WorkerPool } from "../../src/relay/pool.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";
import { waitFor } from "../support/harness.js";

const message = (n: number, thread = `t${n}`) => ({
  threadKey: thread,
  dedupeKey: `d${n}`,
  kind: "text" as const,
  text: "hi",
  sender: { id: "u" },
  route: { chat_id: n },
});

/** A pool over `database` with no tenant configured: a message fails at once, which is all these tests need. */
function newPool(database: Database, log = createLogger("silent")): WorkerPool {
  return new WorkerPool({
    processId: "handoff-test",
    database,
    tenants: { get: async () => undefined, list: async () => [] },
    adapters: {},
    quickchat: createQuickchatClient({ timeoutMs: 1000 }),
    log,
    metrics: createMetrics(async () => ({ depth: 0, oldest: 0 })),
    options: {
      concurrency: 10,
      tenantConcurrency: 4,
      // Far beyond the tests: a message the pool picks up was claimed or handed over, never polled for.
      pollIntervalMs: 60_000,
      leaseMs: 60_000,
      maxRetryMs: 60_000,
      backoff: { baseMs: 100, maxMs: 1000 },
    },
  });
}

describe.skipIf(!POSTGRES_URL)("claims beside the handoff", () => {
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

  const freshDatabase = async () => {
    testDb = await createPostgresDatabase();
    database = await openDatabase({ url: testDb.url, dataDir: "memory://" });
    await migrate(database);
  };
  const leases = async () =>
    rowsOf<{ status: string; lease_owner: string | null }>(
      await database.db.execute(sql`select status, lease_owner from inbound_messages order by id`),
    );
  const statuses = async () => (await leases()).map((row) => row.status);

  /** Locks the inbox until the returned function is called: the pool's next statement waits for it. */
  const lockInbox = () => {
    locker = postgres(testDb.url ?? "", { max: 1, onnotice: () => {} });
    return new Promise<() => void>((resolveRelease) => {
      void locker?.begin(async (tx) => {
        await tx`lock table inbound_messages in access exclusive mode`;
        await new Promise<void>((unlock) => resolveRelease(unlock));
      });
    });
  };
  const waitingOnLock = (statement: "insert" | "update") =>
    waitFor(
      async () =>
        rowsOf(
          await database.db.execute(
            sql`select 1 from pg_stat_activity where wait_event_type = 'Lock'
              and ltrim(query, E' \n') like ${`${statement}%`}`,
          ),
        ).length > 0,
      5000,
      `an ${statement} waiting on the lock`,
    );
  /** Stops the pool while the inbox is locked; true when the stop waited for the unlock. */
  const stopWaitsFor = async (unlock: () => void) => {
    let stopped = false;
    const stopping = pool?.stop(5000).then(() => {
      stopped = true;
    });
    // Long enough for a stop with nothing to wait for to end: it makes one round trip (UNLISTEN).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const waited = !stopped;
    unlock();
    await stopping;
    return waited;
  };

  it("grants no slot that a claim in flight may need", async () => {
    await freshDatabase();
    await new InboxWriter(database.db).store(
      "acme",
      "telegram",
      [1, 2, 3].map((n) => message(n)),
    );
    pool = newPool(database);
    // Hold the claim: it waits for this lock with its limit of 4 (the tenant's whole cap) outstanding.
    const release = await lockInbox();
    await pool.start();
    await waitingOnLock("update");

    // The claim may bring back 4 messages of acme: a webhook's message must not take a fifth slot meanwhile.
    expect(pool.reserve("acme")).toBeUndefined();
    release();
    await waitFor(() => pool?.active === 0, 5000, "the claimed messages to finish");
    // Once no claim is in flight, the tenant's slots are free again.
    const granted = await waitFor(() => pool?.reserve("acme"), 5000, "a slot for acme");
    expect(granted).toMatch(/:/);
    pool.cancel("acme");
  });

  it("hands back, on a stop, what a claim in flight brings back, instead of running it", async () => {
    await freshDatabase();
    await new InboxWriter(database.db).store("acme", "telegram", [message(1), message(2)]);
    pool = newPool(database);
    const unlock = await lockInbox();
    await pool.start();
    await waitingOnLock("update");

    expect(await stopWaitsFor(unlock)).toBe(true);
    // Run, they would have failed (no tenant); left leased, they would wait out their lease.
    expect(await leases()).toEqual([
      { status: "pending", lease_owner: null },
      { status: "pending", lease_owner: null },
    ]);
  });

  /** Stops the started pool while a webhook's insert, held on a lock, leases a message to it; its result. */
  async function storeWhileStopping(started: WorkerPool): Promise<number> {
    await started.start();
    await waitFor(() => started.reserve("acme"), 5000, "the start's claim to end");
    started.cancel("acme");
    const unlock = await lockInbox();
    const stored = new InboxWriter(database.db, undefined, started).store("acme", "telegram", [message(1)]);
    await waitingOnLock("insert");
    expect(await stopWaitsFor(unlock)).toBe(true);
    return stored;
  }

  it("hands back, on a stop, a message its webhook's insert in flight leases to the pool", async () => {
    await freshDatabase();
    pool = newPool(database);
    expect(await storeWhileStopping(pool)).toBe(1);
    expect(await leases()).toEqual([{ status: "pending", lease_owner: null }]);
  });

  it("logs a message it could not hand back on a stop, which then waits out its lease", async () => {
    await freshDatabase();
    const lines: string[] = [];
    // The pool's only raw statement is the release: it fails, as with the database going away.
    const failingRelease: Database = {
      ...database,
      db: new Proxy(database.db, {
        get(target, property, receiver) {
          if (property === "execute") return async () => Promise.reject(new Error("connection lost"));
          return Reflect.get(target, property, receiver);
        },
      }),
    };
    pool = newPool(failingRelease, createLogger("info", { write: (line: string) => void lines.push(line) }));
    expect(await storeWhileStopping(pool)).toBe(1);
    const [leased] = await leases();
    expect(leased?.lease_owner).toMatch(/:/);
    const warnings = lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === "warn");
    expect(warnings).toContainEqual(
      expect.objectContaining({
        msg: "could not return messages to the queue; they go back when this process unregisters, or are taken over once it is silent",
        err: "connection lost",
        msg_ids: [expect.any(Number)],
      }),
    );
  });

  it("claims a thread's next message as soon as the one before it ends, without a NOTIFY or the poll", async () => {
    await freshDatabase();
    // Both stored before the pool listens: their NOTIFY is gone, and the second waits behind the first.
    await new InboxWriter(database.db).store("acme", "telegram", [message(1, "t"), message(2, "t")]);
    pool = newPool(database);
    await pool.start();
    // The first claim takes message 1 only; its end reports message 2 waiting, which is claimed at once.
    await waitFor(async () => (await statuses()).join() === "failed,failed", 5000, "both messages to end");
  });

  it("runs no claim when a message taken from its webhook's insert ends with nothing behind it", async () => {
    await freshDatabase();
    let claims = 0;
    const counted: Database = {
      ...database,
      db: new Proxy(database.db, {
        get(target, property, receiver) {
          if (property === "update") claims++; // the claim is the pool's only update in these runs
          return Reflect.get(target, property, receiver);
        },
      }),
    };
    pool = newPool(counted);
    await pool.start();
    // The start's claim has ended once a slot can be granted (see above).
    await waitFor(() => pool?.reserve("acme"), 5000, "the start's claim to end");
    pool.cancel("acme");
    const writer = new InboxWriter(database.db, undefined, pool);
    for (let n = 1; n <= 5; n++) {
      await writer.store("acme", "telegram", [message(n)]);
      await waitFor(async () => (await statuses()).at(-1) === "failed", 5000, `message ${n} to end`);
    }
    await waitFor(() => pool?.active === 0, 5000, "the pool to be idle");
    expect(claims).toBe(1);
  });
});
