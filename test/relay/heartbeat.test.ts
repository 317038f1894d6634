import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/client.js";
import { createLogger } from "../../src/log.js";
import { Heartbeat } from "../../src/relay/heartbeat.js";
import { DATABASE_KINDS, migrated, rowsOf } from "../support/db.js";
import { waitFor } from "../support/harness.js";

/** TAKEOVER_SECONDS of these tests: a beat every 200 ms. */
const TAKEOVER_MS = 1_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(DATABASE_KINDS)("heartbeat on %s", (kind) => {
  let heartbeat: Heartbeat | undefined;
  afterEach(async () => {
    await heartbeat?.stop();
    heartbeat = undefined;
  });

  /** A started heartbeat on a fresh database, and the warnings it logs. */
  async function started(wrap: (database: Database) => Database = (d) => d) {
    const { database } = await migrated(kind);
    const warnings: Record<string, unknown>[] = [];
    const log = createLogger("warn", {
      write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>),
    });
    heartbeat = new Heartbeat({ database: wrap(database), log, takeoverMs: TAKEOVER_MS });
    await heartbeat.start();
    const db = database.db;
    const processRows = async () =>
      rowsOf<{ id: string; beat: string }>(
        await db.execute(sql`select id, heartbeat_at::text as beat from bridge_processes order by id`),
      );
    /** A process whose last beat was `secondsAgo` ago, holding one leased message. */
    const otherProcess = async (id: string, secondsAgo: number) => {
      await db.execute(sql`insert into bridge_processes (id, heartbeat_at)
        values (${id}, now() - make_interval(secs => ${secondsAgo}))`);
      await db.execute(sql`
        insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text,
          lease_owner, lease_until, next_attempt_at)
        values ('acme', 'telegram', ${id}, ${id}, 'text', '{}', '{}', 'x', ${`${id}:1`},
          now() + interval '1 minute', now() + interval '1 minute')`);
    };
    const has = async (id: string) => (await processRows()).some((row) => row.id === id);
    return { database, heartbeat, warnings, processRows, otherProcess, has };
  }

  it("registers, beats, and removes its row on a stop", async () => {
    const { heartbeat: own, processRows } = await started();
    const [first] = await processRows();
    expect(first?.id).toBe(own.processId);
    await waitFor(async () => (await processRows())[0]?.beat !== first?.beat, 2_000, "a beat");
    await own.stop();
    heartbeat = undefined;
    expect(await processRows()).toEqual([]);
  });

  it("takes over a silent process, once it has itself beaten for a whole takeover period", async () => {
    const { database, warnings, otherProcess, has } = await started();
    await otherProcess("dead", 60);
    // Just started: it has not shown yet that the database lets live processes beat.
    await sleep(TAKEOVER_MS / 2);
    expect(await has("dead")).toBe(true);
    await waitFor(async () => !(await has("dead")), 3_000, "the takeover");
    const [message] = rowsOf<{ lease_owner: string | null }>(
      await database.db.execute(sql`select lease_owner from inbound_messages`),
    );
    expect(message?.lease_owner).toBeNull();
    // Logged once the takeover's statement has returned, which may be after the row is seen gone.
    await waitFor(
      () => warnings.some((w) => String(w.msg).startsWith("took over")),
      2_000,
      "the takeover's warning",
    );
    expect(warnings).toContainEqual(
      expect.objectContaining({
        msg: "took over the messages of processes presumed dead (no heartbeat for TAKEOVER_SECONDS)",
        processes: ["dead"],
        returned: 1,
      }),
    );
  });

  it("after a silence of its own (an event loop stalled past two beats), waits a whole period again", async () => {
    const { otherProcess, has } = await started();
    await sleep(TAKEOVER_MS * 1.5);
    // Silent for half a period when the stall begins: for longer than a period once it ends.
    await otherProcess("stalled-too", TAKEOVER_MS / 2000);
    const until = Date.now() + TAKEOVER_MS;
    while (Date.now() < until); // the stall
    await sleep(TAKEOVER_MS / 2);
    expect(await has("stalled-too")).toBe(true);
    await waitFor(async () => !(await has("stalled-too")), 3_000, "the takeover");
  });

  it("registers again when its row was removed (it was presumed dead), and says so", async () => {
    const { database, heartbeat: own, warnings, has } = await started();
    await database.db.execute(sql`delete from bridge_processes`);
    await waitFor(() => has(own.processId), 2_000, "the row back");
    await waitFor(() => warnings.some((w) => String(w.msg).includes("presumed dead")), 2_000, "the warning");
    expect(warnings).toContainEqual(
      expect.objectContaining({
        msg: expect.stringContaining("this process was presumed dead"),
        process_id: own.processId,
      }),
    );
  });

  it("logs a failing beat once, and after it waits a whole period before judging", async () => {
    let failing = false;
    const { warnings, otherProcess, has } = await started((database) => ({
      ...database,
      db: new Proxy(database.db, {
        get(target, property, receiver) {
          if (property === "execute" && failing)
            return async () => Promise.reject(new Error("connection lost"));
          return Reflect.get(target, property, receiver);
        },
      }),
    }));
    await sleep(TAKEOVER_MS * 1.5);
    failing = true;
    // Once a beat in flight has ended, a process silent for long appears.
    await sleep(TAKEOVER_MS / 2);
    await otherProcess("dead", 60);
    await sleep(TAKEOVER_MS / 2);
    failing = false;
    await sleep(TAKEOVER_MS / 2);
    expect(await has("dead")).toBe(true);
    await waitFor(async () => !(await has("dead")), 3_000, "the takeover");
    expect(warnings.filter((w) => String(w.msg).startsWith("heartbeat failed"))).toHaveLength(1);
  });
});
