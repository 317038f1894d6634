import { sql } from "drizzle-orm";
import postgres from "postgres";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  claimMessages,
  finishAll,
  type InboxInsert,
  type InboxRow,
  insertRows,
  messageKey,
  storeReplies,
} from "../../src/db/inbox.js";
import { adminClient, adminEnv } from "../admin/support.js";
import { startBridges } from "../support/bridges.js";
import { DATABASE_KINDS, inboxRow, migrated, migratedDatabase, POSTGRES_URL, rowsOf } from "../support/db.js";
import { waitFor } from "../support/harness.js";

const THREADS = 8;

const message = (thread: number, n: number) => inboxRow(`t${thread}`, `${thread}-${n}`, thread);

describe.skipIf(!POSTGRES_URL)("thread heads under concurrent inserts and ends", () => {
  it("never strands a message behind one that ended while it was inserted, and ends each thread in order", async () => {
    const db = await migratedDatabase("postgres");
    const ended = new Map<string, number[]>();
    let stop = false;
    let inserted = 0;
    // Two writers, each with its own threads: a process writes a thread's messages one statement after
    // another (InboxWriter), and two statements of one thread in flight at once may commit out of id order.
    const writer = async (first: number) => {
      for (let n = 0; !stop; n++) {
        const batch = Array.from({ length: 1 + (n % 3) }, (_, i) =>
          message(first + 2 * ((n + i) % (THREADS / 2)), n * 3 + i),
        );
        inserted += (await insertRows(db, batch)).size;
      }
    };
    // Two workers ending what they claim at once, as fast as they can.
    const worker = async (owner: string) => {
      while (!stop || (await pendingCount()) > 0) {
        const claimed = await claimMessages(db, { limit: 4, leaseMs: 60_000, owner });
        if (claimed.length === 0) {
          if (stop) break;
          continue;
        }
        for (const m of claimed) ended.set(m.threadKey, [...(ended.get(m.threadKey) ?? []), m.id]);
        await finishAll(
          db,
          claimed.map((m) => ({ lease: { id: m.id, owner }, status: "delivered" as const })),
        );
      }
    };
    const pendingCount = async () =>
      rowsOf<{ n: number }>(
        await db.execute(
          sql`select count(*)::int as n from inbound_messages where next_attempt_at is not null`,
        ),
      )[0]?.n ?? 0;
    const run = Promise.all([writer(0), writer(1), worker("w1"), worker("w2")]);
    // 4 s, and longer on a loaded machine until enough races have had their chance.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    await waitFor(() => inserted > 200, 20_000, "200 messages inserted");
    stop = true;
    await run;
    // Whatever is still unfinished can only be a message nothing will ever make due again.
    const stranded = rowsOf<{ id: number; thread_key: string }>(
      await db.execute(sql`select id, thread_key from inbound_messages where status <> 'delivered'`),
    );
    console.log(`${inserted} messages inserted and ended by two writers and two workers`);
    expect(inserted).toBeGreaterThan(200);
    expect(stranded).toEqual([]);
    for (const ids of ended.values()) expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it("never hands a worker a message whose thread's unfinished one was being written as it was inserted", async () => {
    const { database, url = "" } = await migrated("postgres");
    const db = database.db;
    await insertRows(db, [message(1, 1)]);
    const [first] = await claimMessages(db, { limit: 1, leaseMs: 60_000, owner: "w:1" });
    // A worker's statement writing the first message holds it while the second one is inserted.
    const worker = postgres(url, { max: 1, onnotice: () => {} });
    onTestFinished(() => worker.end());
    let release: () => void = () => {};
    const writing = worker.begin(async (tx) => {
      await tx`update inbound_messages set updated_at = now() where id = ${first?.id ?? 0}`;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = { ...message(1, 2), lease_owner: "w:2", lease_ms: 60_000 };
    const stored = await insertRows(db, [second]);
    release();
    await writing;
    // Not queued behind the message it could not lock, so due; but not leased to the inserting process either.
    expect(stored.get(messageKey(second))?.leased).toBe(false);
    // And no claim takes it while the first one is unfinished.
    expect(await claimMessages(db, { limit: 10, leaseMs: 60_000, owner: "w:3" })).toEqual([]);
    await finishAll(db, [{ lease: { id: first?.id ?? 0, owner: "w:1" }, status: "delivered" }]);
    const claimed = await claimMessages(db, { limit: 10, leaseMs: 60_000, owner: "w:3" });
    expect(claimed.map((m) => m.dedupeKey)).toEqual(["1-2"]);
  });

  it("leaves out, and takes out of the due index, a message ended with a due time (by code before 0005)", async () => {
    const db = await migratedDatabase("postgres");
    await insertRows(db, [message(1, 1), message(2, 1)]);
    // A replica still running the code before migration 0005 ended the first without clearing its due time.
    await db.execute(sql`update inbound_messages set status = 'delivered' where dedupe_key = '1-1'`);
    const claimed = await claimMessages(db, { limit: 10, leaseMs: 60_000, owner: "w:1" });
    expect(claimed.map((m) => m.dedupeKey)).toEqual(["2-1"]);
    const [ended] = rowsOf<{ due: boolean; owner: string | null }>(
      await db.execute(sql`select next_attempt_at is not null as due, lease_owner as owner from inbound_messages
        where dedupe_key = '1-1'`),
    );
    expect(ended).toEqual({ due: false, owner: null });
  });

  it("makes due a message queued behind a redelivery in its batch whose message ended before the batch committed", async () => {
    const { database, url = "" } = await migrated("postgres");
    const db = database.db;
    // Two other statements in flight, as another replica's: one stores the message our batch redelivers, the
    // other holds the key of a later row of our batch, so our statement is still running when the first ends.
    const replica = postgres(url, { max: 2, onnotice: () => {} });
    onTestFinished(() => replica.end());
    const holding = async (row: InboxInsert) => {
      let commit: () => void = () => {};
      const committed = new Promise<void>((resolve) => {
        commit = resolve;
      });
      let stored: () => void = () => {};
      const inserted = new Promise<void>((resolve) => {
        stored = resolve;
      });
      const done = replica.begin(async (tx) => {
        await tx`insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text)
          values (${row.tenant_id}, ${row.channel}, ${row.thread_key}, ${row.dedupe_key}, 'text', '{}', '{}', 'x')`;
        stored();
        await committed;
      });
      await inserted;
      return { commit, done };
    };
    const first = await holding(message(1, 1));
    const later = await holding(message(9, 1));
    const waiting = async () =>
      rowsOf<{ n: number }>(
        await db.execute(sql`select count(*)::int as n from pg_stat_activity
          where wait_event_type = 'Lock' and ltrim(query, E' \n') like 'insert into "inbound_messages"%'`),
      )[0]?.n === 1;
    const batch = insertRows(db, [message(1, 1), message(1, 2), message(9, 1)]);
    while (!(await waiting())) await new Promise((resolve) => setTimeout(resolve, 20));
    first.commit();
    await first.done;
    // Our statement now waits on the later key; the redelivered message is answered and ends meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const [redelivered] = await claimMessages(db, { limit: 10, leaseMs: 60_000, owner: "w:1" });
    expect(redelivered?.dedupeKey).toBe("1-1");
    await finishAll(db, [{ lease: { id: redelivered?.id ?? 0, owner: "w:1" }, status: "delivered" }]);
    later.commit();
    await later.done;
    expect([...(await batch).keys()].map((key) => key.split("\u0000")[2])).toEqual(["1-2"]);
    // Nothing ahead of it is unfinished: it must be due, or no claim would ever take it.
    const claimed = await claimMessages(db, { limit: 10, leaseMs: 60_000, owner: "w:2" });
    expect(claimed.map((m) => m.dedupeKey).sort()).toEqual(["1-2", "9-1"]);
  });
});

describe.each(DATABASE_KINDS)("a thread with two heads on %s", (kind) => {
  it("claims its later message only once the earlier one, retried, is answered and delivered", async () => {
    // No worker: this test claims, answers and ends the messages itself; the admin API retries one.
    const [bridge] = await startBridges(kind, [{ tenants: [], worker: false, env: adminEnv() }]);
    const db = bridge!.database.db;
    const claim = () => claimMessages(db, { limit: 10, leaseMs: 60_000, owner: "w:1" });
    const lease = (m: InboxRow | undefined) => ({ id: m?.id ?? 0, owner: "w:1" });
    await insertRows(db, [message(1, 1), message(1, 2)]);
    const [first] = await claim();
    // The thread's first message failed, which made the second due; then the first is retried: both are due.
    await finishAll(db, [{ lease: lease(first), status: "failed" }]);
    const retry = await adminClient(() => bridge!).call("POST", `/messages/${first?.id}/retry`);
    expect(retry.status).toBe(200);

    const retried = await claim();
    expect(retried.map((m) => m.dedupeKey)).toEqual(["1-1"]);
    expect(await storeReplies(db, [{ lease: lease(retried[0]), html: "again" }])).toEqual([true]);
    // Being delivered, it still holds the second back.
    expect(await claim()).toEqual([]);
    await finishAll(db, [{ lease: lease(retried[0]), status: "delivered" }]);
    expect((await claim()).map((m) => m.dedupeKey)).toEqual(["1-2"]);
  });
});
