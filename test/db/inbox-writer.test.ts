import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../src/channels/types.js";
import { type Database, openDatabase } from "../../src/db/client.js";
import { InboxWriter } from "../../src/db/inbox-writer.js";
import { migrate } from "../../src/db/migrate.js";
import { inboundMessages } from "../../src/db/schema.js";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "../support/db.js";

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
    // The insert trigger notifies once per statement: batching shows as fewer notifications.
    await new Promise((r) => setTimeout(r, 200));
    await unlisten();
    expect(notifications).toBeGreaterThan(0);
    expect(notifications).toBeLessThanOrEqual(200 / 50 + 2);
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
});
