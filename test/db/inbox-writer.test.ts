import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../src/channels/types.js";
import { type Database, openDatabase } from "../../src/db/client.js";
import type { ClaimedMessage } from "../../src/db/inbox.js";
import { type Handoff, InboxWriter } from "../../src/db/inbox-writer.js";
import { migrate } from "../../src/db/migrate.js";
import { conversations, inboundMessages } from "../../src/db/schema.js";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "../support/db.js";
import { waitFor } from "../support/harness.js";

const message = (n: number, overrides: Partial<InboundMessage> = {}): InboundMessage => ({
  threadKey: `thread-${n % 7}`,
  dedupeKey: `update-${n}`,
  kind: "text",
  text: `hello ${n}`,
  sender: { id: `user-${n}`, name: "Alice" },
  route: { chatId: n },
  ...overrides,
});

describe.each(DATABASE_KINDS)("inbox writer (group commit) on %s", (kind) => {
  let testDb: TestDatabase;
  let database: Database;

  async function open(): Promise<Database> {
    testDb = await createTestDatabase(kind);
    database = await openDatabase({ url: testDb.url, dataDir: "memory://" });
    await migrate(database);
    return database;
  }

  afterEach(async () => {
    await database?.close();
    await testDb?.drop();
  });

  it("writes concurrent webhooks in fewer statements than webhooks, each told whether it was new", async () => {
    const { db, listen } = await open();
    let notifications = 0;
    const unlisten = await listen("bridge_inbox", () => notifications++);
    const writer = new InboxWriter(db, { maxConcurrent: 2, maxRows: 50 });

    const results = await Promise.all(
      Array.from({ length: 200 }, (_, n) => writer.store("acme", "telegram", [message(n)])),
    );
    expect(results).toEqual(results.map(() => 1));
    expect(await db.$count(inboundMessages)).toBe(200);
    // The insert trigger notifies once per statement: batching shows as fewer notifications. They arrive
    // after the inserts have returned: wait for the first, then a while for the rest.
    await waitFor(() => notifications > 0, 5_000, "a notification");
    await new Promise((r) => setTimeout(r, 200));
    await unlisten();
    // Statements are ~50 rows, with smaller ones while a thread waits for its earlier rows to be written.
    expect(notifications).toBeLessThanOrEqual(10);
  });

  it("counts a redelivery racing in the same statement as a duplicate", async () => {
    const { db } = await open();
    const writer = new InboxWriter(db, { maxConcurrent: 1, maxRows: 50 });
    const results = await Promise.all([
      writer.store("acme", "telegram", [message(1)]),
      writer.store("acme", "telegram", [message(2)]),
      writer.store("acme", "telegram", [message(2)]),
      writer.store("acme", "slack", [message(2)]), // another channel: another message
    ]);
    expect(results).toEqual([1, 1, 0, 1]);
    expect(await writer.store("acme", "telegram", [message(1)])).toBe(0);
  });

  it("fails only the webhook whose row cannot be stored, not its neighbours in the batch", async () => {
    const { db } = await open();
    const writer = new InboxWriter(db, { maxConcurrent: 1, maxRows: 50 });
    // Random text is incompressible: a key this long exceeds the btree index's row size limit.
    const poison = message(99, { dedupeKey: randomBytes(6000).toString("hex") });
    const outcomes = await Promise.allSettled([
      writer.store("acme", "telegram", [message(1)]),
      writer.store("acme", "telegram", [message(2)]),
      writer.store("acme", "telegram", [poison]),
      writer.store("acme", "telegram", [message(3)]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect(await db.$count(inboundMessages)).toBe(3);
  });

  /** A worker double: grants up to `slots` reservations and records what the writer hands over. */
  function recordingHandoff(slots: number): Handoff & { taken: ClaimedMessage[]; cancelled: string[] } {
    let held = 0;
    let granted = 0;
    const taken: ClaimedMessage[] = [];
    const cancelled: string[] = [];
    return {
      leaseMs: 60_000,
      taken,
      cancelled,
      reserve(tenantId) {
        if (held === slots) return undefined;
        held++;
        return `owner-${tenantId}-${++granted}`;
      },
      take: (m) => void taken.push(m), // the slot stays held: the message runs in it
      cancel: (tenantId) => {
        held--;
        cancelled.push(tenantId);
      },
    };
  }

  const leaseOf = async (db: Database["db"]) =>
    (
      await db
        .select({ key: inboundMessages.dedupeKey, owner: inboundMessages.leaseOwner })
        .from(inboundMessages)
        .orderBy(inboundMessages.id)
    ).map((r) => `${r.key}:${r.owner ?? "-"}`);

  it("hands each thread's first new message to the worker, leased by the insert, with its conversation", async () => {
    const { db } = await open();
    await db.insert(conversations).values({
      tenantId: "acme",
      channel: "telegram",
      threadKey: "thread-1",
      convId: "conv-known",
    });
    const handoff = recordingHandoff(10);
    const writer = new InboxWriter(db, { maxConcurrent: 1, maxRows: 50 }, handoff);
    // One webhook, three messages: two in thread-1, one in thread-2.
    const stored = await writer.store("acme", "telegram", [
      message(1, { threadKey: "thread-1" }),
      message(2, { threadKey: "thread-1" }),
      message(3, { threadKey: "thread-2" }),
    ]);
    expect(stored).toBe(3);
    expect(handoff.taken.map((m) => [m.text, m.leaseOwner, m.convId, m.status, m.attempts])).toEqual([
      ["hello 1", "owner-acme-1", "conv-known", "pending", 0],
      ["hello 3", "owner-acme-2", null, "pending", 0],
    ]);
    // The second message of thread-1 waits for the first: stored unleased, for a later claim.
    expect(await leaseOf(db)).toEqual(["update-1:owner-acme-1", "update-2:-", "update-3:owner-acme-2"]);
    expect(handoff.taken[0]).toMatchObject({ tenantId: "acme", channel: "telegram", threadKey: "thread-1" });
    expect(handoff.taken[0]?.id).toBe(
      (await db.select({ id: inboundMessages.id }).from(inboundMessages).orderBy(inboundMessages.id))[0]?.id,
    );
  });

  it("leases nothing behind an unfinished message, nor a redelivery, nor beyond the slots granted", async () => {
    const { db } = await open();
    const handoff = recordingHandoff(1);
    const writer = new InboxWriter(db, { maxConcurrent: 1, maxRows: 50 });
    await writer.store("acme", "telegram", [message(1, { threadKey: "busy" })]); // pending, unleased
    const leasing = new InboxWriter(db, { maxConcurrent: 1, maxRows: 50 }, handoff);
    await leasing.store("acme", "telegram", [message(2, { threadKey: "busy" })]);
    await leasing.store("acme", "telegram", [message(1, { threadKey: "busy" })]); // a redelivery
    expect(handoff.taken).toEqual([]);
    expect(handoff.cancelled).toEqual(["acme", "acme"]);
    // Both slots were handed back; the next grant goes to a free thread, and the one after finds none left.
    await leasing.store("acme", "telegram", [
      message(3, { threadKey: "free" }),
      message(4, { threadKey: "other" }),
    ]);
    expect(handoff.taken.map((m) => m.text)).toEqual(["hello 3"]);
    expect(await leaseOf(db)).toEqual(["update-1:-", "update-2:-", "update-3:owner-acme-3", "update-4:-"]);
  });

  it("writes a thread's messages one statement after another, so their ids follow their arrival", async () => {
    const { db } = await open();
    const handoff = recordingHandoff(10);
    const writer = new InboxWriter(db, { maxConcurrent: 4, maxRows: 1 }, handoff);
    // One row per statement and four statements at once: a thread's second message must not race its first
    // (it could take the lower id, be claimed, and run beside the first, which the insert leased).
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        [1, 2, 3].map((n) => writer.store("acme", "telegram", [message(round * 3 + n, { threadKey: "t" })])),
      );
    }
    const rows = await db
      .select({ key: inboundMessages.dedupeKey })
      .from(inboundMessages)
      .orderBy(inboundMessages.id);
    expect(rows.map((r) => r.key)).toEqual(Array.from({ length: 30 }, (_, i) => `update-${i + 1}`));
    expect(handoff.taken.map((m) => m.text)).toEqual(["hello 1"]);
  });

  it("wakes workers only for rows left to claim", async () => {
    const { db, listen } = await open();
    let notifications = 0;
    const unlisten = await listen("bridge_inbox", () => notifications++);
    const writer = new InboxWriter(db, { maxConcurrent: 1, maxRows: 50 }, recordingHandoff(1));
    await writer.store("acme", "telegram", [message(1, { threadKey: "a" })]); // leased: nobody to wake
    await new Promise((r) => setTimeout(r, 300));
    expect(notifications).toBe(0);
    await writer.store("acme", "telegram", [message(2, { threadKey: "b" })]); // no slot: left to claim
    await waitFor(() => notifications > 0, 5_000, "the notification");
    await new Promise((r) => setTimeout(r, 300)); // and no second one
    await unlisten();
    expect(notifications).toBe(1);
  });
});
