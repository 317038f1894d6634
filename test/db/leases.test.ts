import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { Db } from "../../src/db/client.js";
import { claimMessages, insertRows, type Lease, release, renewLease } from "../../src/db/inbox.js";
import type { MessageStatus } from "../../src/db/schema.js";
import { DATABASE_KINDS, inboxRow, migratedDatabase, rowsOf } from "../support/db.js";

/** A stored message: due `due` seconds from now (null: waiting behind another), leased to `owner` until then. */
interface Stored {
  id: number;
  thread: string;
  status?: MessageStatus;
  due?: number | null;
  owner?: string;
  tenant?: string;
  channel?: string;
}

async function store(db: Db, messages: Stored[]) {
  for (const m of messages) {
    const due = m.due === null ? sql`null` : sql`now() + ${`${m.due ?? -1} seconds`}::interval`;
    await db.execute(sql`
      insert into inbound_messages (id, tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text,
        status, next_attempt_at, lease_until, lease_owner)
      values (${m.id}, ${m.tenant ?? "acme"}, ${m.channel ?? "telegram"}, ${m.thread}, ${`d${m.id}`}, 'text',
        '{}', '{}', 'x', ${m.status ?? "pending"}, ${due}, ${m.owner ? due : sql`null`}, ${m.owner ?? null})`);
  }
}

/** Each message's lease: its owner, the milliseconds it has left, and whether it is due now. */
async function leases(db: Db) {
  const rows = await db.execute(sql`
    select id::int, lease_owner as owner, round(extract(epoch from lease_until - now()) * 1000)::int as "leftMs",
      next_attempt_at is not distinct from lease_until as "dueAtLeaseEnd", next_attempt_at <= now() as due
    from inbound_messages order by id`);
  return rowsOf<{
    id: number;
    owner: string | null;
    leftMs: number | null;
    dueAtLeaseEnd: boolean;
    due: boolean | null;
  }>(rows);
}

/** A lease of `leaseMs` just taken or renewed by `owner`; the message is due again when it runs out. */
const leased = (id: number, owner: string, leaseMs: number) => ({
  id,
  owner,
  leftMs: expect.closeTo(leaseMs, -4), // within 5 s
  dueAtLeaseEnd: true,
  due: false,
});

const ids = (rows: { id: number }[]) => rows.map((row) => row.id).sort((a, b) => a - b);

const claim = (db: Db, owner: string, options: { limit?: number; excludeTenants?: string[] } = {}) =>
  claimMessages(db, { limit: 10, leaseMs: 60_000, owner, ...options });

describe.each(DATABASE_KINDS)("claims, renewals and releases on %s", (kind) => {
  it("claims the due messages, each leased to the owner for leaseMs, with its thread's conversation", async () => {
    const db = await migratedDatabase(kind);
    await db.execute(sql`insert into conversations (tenant_id, channel, thread_key, conv_id)
      values ('acme', 'telegram', 'a', 'conv-a')`);
    await store(db, [
      { id: 1, thread: "a" },
      { id: 2, thread: "b", due: 3600 },
      // Waiting behind message 2 (a message with nothing before it is made due as it is stored).
      { id: 3, thread: "b", due: null },
      // A crashed worker's message: its lease ran out while it was being delivered.
      { id: 4, thread: "d", status: "delivering", owner: "w:0" },
      // Ended by a replica running code before migration 0005, which kept its due time.
      { id: 5, thread: "e", status: "delivered" },
    ]);
    const claimed = await claim(db, "w:1");
    expect(claimed.map(({ id, status, leaseOwner, convId }) => ({ id, status, leaseOwner, convId }))).toEqual(
      expect.arrayContaining([
        { id: 1, status: "pending", leaseOwner: "w:1", convId: "conv-a" },
        { id: 4, status: "delivering", leaseOwner: "w:1", convId: null },
      ]),
    );
    expect(ids(claimed)).toEqual([1, 4]);
    expect(await leases(db)).toEqual([
      leased(1, "w:1", 60_000),
      { id: 2, owner: null, leftMs: null, dueAtLeaseEnd: false, due: false },
      { id: 3, owner: null, leftMs: null, dueAtLeaseEnd: true, due: null },
      leased(4, "w:1", 60_000),
      // Its due time cleared: it is never claimed.
      { id: 5, owner: null, leftMs: null, dueAtLeaseEnd: true, due: null },
    ]);
    expect(await claim(db, "w:2")).toEqual([]);
  });

  it("claims only a thread's oldest unfinished message, pending or delivering", async () => {
    const db = await migratedDatabase(kind);
    await store(db, [
      { id: 1, thread: "a", owner: "w:0", due: 60 },
      { id: 2, thread: "a" },
      { id: 3, thread: "b", status: "delivering", owner: "w:0", due: 60 },
      { id: 4, thread: "b" },
      { id: 5, thread: "c", status: "delivered", due: null },
      { id: 6, thread: "c" },
      { id: 7, thread: "d", status: "failed", due: null },
      { id: 8, thread: "d" },
      // Two heads (a failed message retried): the older goes first, though the later one is due earlier.
      { id: 9, thread: "e" },
      { id: 10, thread: "e", due: -2 },
      // Thread a's key, in another channel and another tenant: other threads.
      { id: 11, thread: "a", channel: "slack" },
      { id: 12, thread: "a", tenant: "beta" },
    ]);
    expect(ids(await claim(db, "w:1"))).toEqual([6, 8, 9, 11, 12]);
  });

  it("claims at most limit messages, the earliest due first, leaving out the tenants asked to", async () => {
    const db = await migratedDatabase(kind);
    await store(db, [
      { id: 1, thread: "a", due: -1 },
      { id: 2, thread: "b", tenant: "beta", due: -2 },
      { id: 3, thread: "c", tenant: "gamma", due: -3 },
      { id: 4, thread: "d", due: -4 },
      { id: 5, thread: "e", due: -5 },
    ]);
    expect(ids(await claim(db, "w:1", { limit: 1, excludeTenants: ["beta", "gamma"] }))).toEqual([5]);
    expect(ids(await claim(db, "w:1", { limit: 2, excludeTenants: ["gamma"] }))).toEqual([2, 4]);
    expect(ids(await claim(db, "w:1", { limit: 2, excludeTenants: [] }))).toEqual([1, 3]);
  });

  it("queues a new message behind its thread's unfinished one, pending or delivering, and not behind an ended one", async () => {
    const db = await migratedDatabase(kind);
    const due = async (dedupeKey: string) => {
      const [row] = rowsOf<{ due: boolean }>(
        await db.execute(
          sql`select next_attempt_at is not null as due from inbound_messages where dedupe_key = ${dedupeKey}`,
        ),
      );
      return row?.due;
    };
    const setStatus = (dedupeKey: string, status: MessageStatus) =>
      db.execute(sql`update inbound_messages set status = ${status} where dedupe_key = ${dedupeKey}`);
    await insertRows(db, [inboxRow("a", "1")]);
    await insertRows(db, [inboxRow("a", "2")]);
    expect([await due("1"), await due("2")]).toEqual([true, false]);
    await setStatus("2", "failed");
    await setStatus("1", "delivering");
    await insertRows(db, [inboxRow("a", "3")]);
    expect(await due("3")).toBe(false);
    await setStatus("1", "delivered");
    await setStatus("3", "failed");
    await insertRows(db, [inboxRow("a", "4")]);
    expect(await due("4")).toBe(true);
  });

  it("renews a lease its owner still holds, also once run out, and none taken over or another's", async () => {
    const db = await migratedDatabase(kind);
    await store(db, [
      { id: 1, thread: "a", owner: "w:1", due: 1 },
      { id: 2, thread: "b", owner: "w:2", due: 60 },
      { id: 3, thread: "c", owner: "w:1", due: -1 },
    ]);
    expect(await renewLease(db, { id: 1, owner: "w:1" }, 120_000)).toBe(true);
    expect(await renewLease(db, { id: 2, owner: "w:1" }, 120_000)).toBe(false);
    expect(await renewLease(db, { id: 1, owner: "w:2" }, 120_000)).toBe(false);
    // Run out, but nobody claimed it: still w:1's.
    expect(await renewLease(db, { id: 3, owner: "w:1" }, 30_000)).toBe(true);
    expect(await leases(db)).toEqual([
      leased(1, "w:1", 120_000),
      expect.objectContaining({ id: 2, owner: "w:2", leftMs: expect.closeTo(60_000, -4) }),
      leased(3, "w:1", 30_000),
    ]);
    await db.execute(
      sql`update inbound_messages set lease_until = now(), next_attempt_at = now() where id = 3`,
    );
    expect(ids(await claim(db, "w:3"))).toEqual([3]);
    expect(await renewLease(db, { id: 3, owner: "w:1" }, 30_000)).toBe(false);
  });

  it("releases the leases still held, due again at once, and no other", async () => {
    const db = await migratedDatabase(kind);
    await store(db, [
      { id: 1, thread: "a" },
      { id: 2, thread: "b" },
      { id: 3, thread: "c" },
    ]);
    expect(ids(await claim(db, "w:1"))).toEqual([1, 2, 3]);
    const leasesOf = (owner: string, ...ids: number[]): Lease[] => ids.map((id) => ({ id, owner }));
    await release(db, [...leasesOf("w:1", 1, 2), ...leasesOf("w:2", 3)]);
    const released = { owner: null, leftMs: null, dueAtLeaseEnd: false, due: true };
    expect(await leases(db)).toEqual([
      { id: 1, ...released },
      { id: 2, ...released },
      leased(3, "w:1", 60_000),
    ]);
    expect(ids(await claim(db, "w:2"))).toEqual([1, 2]);
  });
});

describe("release", () => {
  it("sends no statement for no leases", async () => {
    const noDatabase = new Proxy({} as Db, {
      get: () => {
        throw new Error("no statement expected");
      },
    });
    await expect(release(noDatabase, [])).resolves.toBeUndefined();
  });
});
