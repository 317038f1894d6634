/**
 * The baseline the bridge is measured against: a bare Hono handler on @hono/node-server doing one
 * `INSERT … ON CONFLICT DO NOTHING` per request into PostgreSQL (postgres.js). Run as a child of bench/run.ts
 * with DATABASE_URL and PORT set; answers 200 `ok` once the row is written.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import postgres from "postgres";

const sql = postgres(process.env.DATABASE_URL ?? "", { max: 20, onnotice: () => {} });
await sql`create table if not exists baseline_inbox (id text primary key, body text not null, received_at timestamptz not null default now())`;

const app = new Hono();
app.get("/healthz", (c) => c.text("ok"));
app.post("/webhook", async (c) => {
  const body = await c.req.text();
  const id = c.req.header("x-bench-id") ?? "";
  await sql`insert into baseline_inbox (id, body) values (${id}, ${body}) on conflict do nothing`;
  return c.text("ok");
});

serve({ fetch: app.fetch, hostname: "127.0.0.1", port: Number(process.env.PORT) });
process.on("SIGTERM", () => {
  void sql.end({ timeout: 1 }).finally(() => process.exit(0));
});
