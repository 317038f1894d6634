import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { conversations, inboundMessages } from "../../src/db/schema.js";
import { pruneOnce } from "../../src/relay/retention.js";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "../support/db.js";

const DAY = 86_400_000;

describe.each(DATABASE_KINDS)("retention on %s", (kind) => {
  let testDb: TestDatabase;
  let database: Database;

  afterEach(async () => {
    await database?.close();
    await testDb?.drop();
  });

  it("prunes finished messages' text and idle conversations in batches, with a fake clock", async () => {
    testDb = await createTestDatabase(kind);
    database = await openDatabase({ url: testDb.url, dataDir: "memory://" });
    await migrate(database);
    const { db } = database;
    const now = Date.now();
    const message = (n: number, status: "delivered" | "failed" | "pending", ageDays: number) => ({
      tenantId: "acme",
      channel: "telegram",
      threadKey: `t${n}`,
      dedupeKey: `m${n}`,
      kind: "text",
      sender: { id: "u" },
      route: {},
      text: `text ${n}`,
      replyHtml: `reply ${n}`,
      status,
      updatedAt: new Date(now - ageDays * DAY),
    });
    await db.insert(inboundMessages).values([
      ...Array.from({ length: 7 }, (_, i) => message(i, "delivered", 40)),
      message(7, "failed", 40),
      message(8, "pending", 40), // unfinished: kept whatever its age
      message(9, "delivered", 5), // recent: kept
    ]);
    await db.insert(conversations).values([
      {
        tenantId: "acme",
        channel: "telegram",
        threadKey: "old1",
        convId: "c1",
        updatedAt: new Date(now - 100 * DAY),
      },
      {
        tenantId: "acme",
        channel: "telegram",
        threadKey: "old2",
        convId: "c2",
        updatedAt: new Date(now - 95 * DAY),
      },
      {
        tenantId: "acme",
        channel: "telegram",
        threadKey: "new",
        convId: "c3",
        updatedAt: new Date(now - 1 * DAY),
      },
    ]);

    const policy = { messageDays: 30, conversationDays: 90, batchSize: 3 };
    expect(await pruneOnce(db, policy, new Date(now))).toEqual({ messages: 8, conversations: 2 });
    const rows = await db.select().from(inboundMessages).orderBy(inboundMessages.id);
    expect(rows.filter((r) => r.text === null && r.replyHtml === null).map((r) => r.dedupeKey)).toEqual(
      Array.from({ length: 8 }, (_, i) => `m${i}`),
    );
    expect(rows).toHaveLength(10);
    expect((await db.select().from(conversations)).map((c) => c.threadKey)).toEqual(["new"]);

    // Moving the clock 30 days on makes the recent message old enough too.
    expect(await pruneOnce(db, policy, new Date(now + 30 * DAY))).toEqual({ messages: 1, conversations: 0 });
  });
});
