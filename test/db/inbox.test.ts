import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/client.js";
import { insertStatement } from "../../src/db/inbox.js";
import { migrate } from "../../src/db/migrate.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";

describe.skipIf(!POSTGRES_URL)("inbox statements on a large inbox", () => {
  let testDb: TestDatabase;
  let database: Database;

  afterEach(async () => {
    await database?.close();
    await testDb?.drop();
  });

  it("probes only the new message's thread when deciding whether the insert may lease it", async () => {
    testDb = await createPostgresDatabase();
    database = await openDatabase({ url: testDb.url, dataDir: "memory://" });
    await migrate(database);
    const { db } = database;
    // 20,000 unfinished messages in other threads: a backlog.
    await db.execute(sql`
      insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text)
      select 'acme', 'telegram', 't' || n, 'd' || n, 'text', '{}', '{}', 'x' from generate_series(1, 20000) n`);
    await db.execute(sql`analyze inbound_messages`);
    const rows = Array.from({ length: 4 }, (_, i) => ({
      tenant_id: "acme",
      channel: "telegram" as const,
      thread_key: `new-${i}`,
      dedupe_key: `new-${i}`,
      kind: "text",
      sender: { id: "u" },
      route: { chat_id: 1 },
      text: "hi",
      lease_owner: "worker:1",
      lease_ms: 60_000,
    }));
    const result = await db.execute(sql`explain (analyze, buffers, format json) ${insertStatement(rows)}`);
    type Explained = {
      "QUERY PLAN": [{ Plan: { "Shared Hit Blocks": number; "Shared Read Blocks": number } }];
    };
    const [explained] = result as unknown as Explained[]; // postgres.js: the rows themselves
    const plan = explained?.["QUERY PLAN"][0].Plan;
    expect(plan).toBeDefined();
    // A few index pages per row. Hashing every unfinished message of the inbox instead read over 1,000 here.
    const pages = (plan?.["Shared Hit Blocks"] ?? 0) + (plan?.["Shared Read Blocks"] ?? 0);
    expect(pages).toBeLessThan(100);
  });
});
