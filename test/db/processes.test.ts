import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { Db } from "../../src/db/client.js";
import { beat, register, takeOver, takeOverStatement, unregister } from "../../src/db/processes.js";
import {
  DATABASE_KINDS,
  explained,
  migrated,
  migratedDatabase,
  POSTGRES_URL,
  rowsOf,
} from "../support/db.js";
import { waitFor } from "../support/harness.js";

const SILENT_MS = 5_000;

/** A process row whose last beat was `secondsAgo` ago. */
const processRow = (db: Db, id: string, secondsAgo: number) =>
  db.execute(sql`insert into bridge_processes (id, heartbeat_at)
    values (${id}, now() - make_interval(secs => ${secondsAgo}))`);

/** A message of its own thread, leased to `owner` (for a minute, as a claim does) or not leased. */
const message = (db: Db, thread: string, owner: string | null, status = "pending") =>
  db.execute(sql`
    insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text, status,
      lease_owner, lease_until, next_attempt_at)
    values ('acme', 'telegram', ${thread}, ${thread}, 'text', '{}', '{}', 'x', ${status}, ${owner},
      case when ${owner}::text is not null then now() + interval '1 minute' end,
      case when ${owner}::text is not null then now() + interval '1 minute' else now() end)`);

/** Each message's thread → its lease owner, and whether it is due now. */
async function leases(db: Db) {
  const rows = rowsOf<{ thread_key: string; lease_owner: string | null; due: boolean }>(
    await db.execute(sql`select thread_key, lease_owner, next_attempt_at <= now() as due
      from inbound_messages order by thread_key`),
  );
  return Object.fromEntries(rows.map((r) => [r.thread_key, { owner: r.lease_owner, due: r.due }]));
}

const processIds = async (db: Db) =>
  rowsOf<{ id: string }>(await db.execute(sql`select id from bridge_processes order by id`)).map((r) => r.id);

describe.each(DATABASE_KINDS)("process heartbeats on %s", (kind) => {
  it("a beat stamps the process's row and names the processes silent for longer than the given time", async () => {
    const db = await migratedDatabase(kind);
    await register(db, "me");
    await processRow(db, "old", 60);
    await processRow(db, "recent", 1);
    expect(await beat(db, "me", SILENT_MS)).toEqual({ found: true, silent: ["old"] });
    // Others removed this process's row: it was presumed dead.
    await db.execute(sql`delete from bridge_processes where id = 'me'`);
    expect(await beat(db, "me", SILENT_MS)).toEqual({ found: false, silent: ["old"] });
  });

  it("a takeover hands a silent process's leased messages back, due now, and no one else's", async () => {
    const { database } = await migrated(kind);
    const db = database.db;
    let notified = 0;
    const unlisten = await database.listen("bridge_inbox", () => notified++);
    await processRow(db, "dead", 60);
    await processRow(db, "live", 0);
    await message(db, "a", "dead:1");
    await message(db, "b", "dead:2", "delivering");
    await message(db, "c", "deadbeef:1"); // another process whose id starts alike
    await message(db, "d", "live:1");
    await message(db, "e", null);

    expect(await takeOver(db, ["dead"], SILENT_MS)).toEqual({ processes: ["dead"], messages: 2 });
    expect(await leases(db)).toEqual({
      a: { owner: null, due: true },
      b: { owner: null, due: true },
      c: { owner: "deadbeef:1", due: false },
      d: { owner: "live:1", due: false },
      e: { owner: null, due: true },
    });
    expect(await processIds(db)).toEqual(["live"]);
    await waitFor(() => notified > 0, 5_000, "a NOTIFY");
    await unlisten();
  });

  it("a takeover changes nothing for a process taken over already, or one that beat since", async () => {
    const db = await migratedDatabase(kind);
    await processRow(db, "dead", 60);
    await processRow(db, "paused", 60);
    await takeOver(db, ["dead"], SILENT_MS);
    // The process presumed dead was alive after all: what it leases afterwards stays its own.
    await message(db, "a", "dead:7");
    // Another one beats between the beat that found it silent and the takeover.
    await db.execute(sql`update bridge_processes set heartbeat_at = now() where id = 'paused'`);
    await message(db, "b", "paused:1");
    expect(await takeOver(db, ["dead", "paused"], SILENT_MS)).toEqual({ processes: [], messages: 0 });
    expect(await leases(db)).toEqual({
      a: { owner: "dead:7", due: false },
      b: { owner: "paused:1", due: false },
    });
  });

  it("unregistering removes the process's row and hands back what it still held", async () => {
    const db = await migratedDatabase(kind);
    await register(db, "me");
    await register(db, "other");
    await message(db, "a", "me:4");
    await message(db, "b", "other:1");
    expect(await unregister(db, "me")).toEqual({ processes: ["me"], messages: 1 });
    expect(await processIds(db)).toEqual(["other"]);
    expect(await leases(db)).toEqual({ a: { owner: null, due: true }, b: { owner: "other:1", due: false } });
  });
});

describe.skipIf(!POSTGRES_URL)("a takeover on a deep backlog", () => {
  it("reads the messages in flight, not the backlog, at 2,000 and at 32,000 waiting", async () => {
    const scanned = async (backlog: number) => {
      const db = await migratedDatabase("postgres");
      // Waiting messages, due and not leased, as after an outage; never analyzed.
      await db.execute(sql`
        insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text)
        select 'acme', 'telegram', 'b' || n, 'b' || n, 'text', '{}', '{}', 'x'
        from generate_series(1, ${backlog}) n`);
      // 64 messages in flight at a dead process, 64 at a live one.
      await processRow(db, "dead", 60);
      for (let i = 0; i < 64; i++) {
        await message(db, `dead-${i}`, `dead:${i}`);
        await message(db, `live-${i}`, `live:${i}`);
      }
      const { nodes } = await explained(db, takeOverStatement(["dead"], SILENT_MS));
      const scans = nodes.filter(
        (n) => n["Relation Name"] === "inbound_messages" && n["Node Type"] !== "ModifyTable",
      );
      expect(scans.map((n) => n["Node Type"])).not.toContain("Seq Scan");
      const [table] = rowsOf<{ pages: number }>(
        await db.execute(sql`select pg_relation_size('inbound_messages')::int / 8192 as pages`),
      );
      // Pages the scans read (a node's count includes its children's); the updates' writes are not counted.
      const pages = scans.reduce((sum, n) => sum + n["Shared Hit Blocks"] + n["Shared Read Blocks"], 0);
      return { pages, table: table?.pages ?? 0 };
    };
    const small = await scanned(2_000);
    const large = await scanned(32_000);
    console.log(
      `takeover of 64 messages: its scans read ${small.pages} pages with 2,000 waiting (table ${small.table} ` +
        `pages), ${large.pages} with 32,000 (table ${large.table} pages)`,
    );
    // The 128 messages in flight, each a heap fetch at most: never a page per waiting message.
    for (const { pages } of [small, large]) expect(pages).toBeLessThanOrEqual(2 * 128);
  });
});
