import { sql } from "drizzle-orm";
import { it } from "vitest";
import { claimStatement, insertRows } from "../../src/db/inbox.js";
import { migratedDatabase, rowsOf } from "../support/db.js";

it("plan", async () => {
  const db = await migratedDatabase("postgres");
  await db.execute(sql`alter table inbound_messages set (autovacuum_enabled = false)`);
  const threads = Number(process.env.THREADS ?? 500);
  for (let round = 0; round < Number(process.env.PER ?? 100); round++) {
    for (let start = 0; start < threads; start += 500) {
      await insertRows(
        db,
        Array.from({ length: Math.min(500, threads - start) }, (_, i) => ({
          tenant_id: "acme",
          channel: "telegram",
          thread_key: `t${start + i}`,
          dedupe_key: `${round}-${start + i}`,
          kind: "text",
          sender: { id: "u" },
          route: { chat_id: start + i },
          text: "hi",
        })),
      );
    }
  }
  const claim = claimStatement(db, { limit: 64, leaseMs: 60_000, owner: "w:1" }).getSQL();
  const r = rowsOf<{ "QUERY PLAN": string }>(await db.execute(sql`explain (analyze, buffers) ${claim}`));
  console.log(r.map((x) => x["QUERY PLAN"]).join("\n"));
});
