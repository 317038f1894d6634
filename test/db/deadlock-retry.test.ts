import { sql } from "drizzle-orm";
import postgres from "postgres";
import { describe, expect, it, onTestFinished } from "vitest";
import { withDeadlockRetry } from "../../src/db/errors.js";
import { migrated, POSTGRES_URL, rowsOf } from "../support/db.js";

describe.skipIf(!POSTGRES_URL)("withDeadlockRetry", () => {
  /**
   * A statement updating rows 1 then 2 while another transaction holds row 2 and then asks for row 1: the
   * statement waits first, so PostgreSQL ends it as the deadlock's victim after deadlock_timeout.
   */
  async function deadlocked(retried: boolean) {
    const { database, url = "" } = await migrated("postgres");
    const db = database.db;
    await db.execute(sql`create table pairs (id int primary key, n int not null)`);
    await db.execute(sql`insert into pairs values (1, 0), (2, 0)`);
    const other = postgres(url, { max: 1, onnotice: () => {} });
    onTestFinished(() => other.end());
    let holding: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const blocker = other.begin(async (tx) => {
      await tx`update pairs set n = n + 10 where id = 2`;
      holding();
      // Once the statement below waits for row 2, ask for its row 1.
      for (;;) {
        // The activity view is read once per transaction unless its snapshot is cleared.
        await tx`select pg_stat_clear_snapshot()`;
        const [waiting] = await tx`select count(*)::int as n from pg_stat_activity
          where wait_event_type = 'Lock' and query like 'update pairs set n = n + 1%'`;
        if (waiting?.n) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await tx`update pairs set n = n + 10 where id = 1`;
    });
    await held;
    const statement = () => db.execute(sql`update pairs set n = n + 1 where id in (1, 2)`);
    const outcome = await (retried ? withDeadlockRetry(statement) : statement()).then(
      () => "done",
      (err: Error) => String((err.cause as { code?: string } | undefined)?.code ?? err.message),
    );
    await blocker;
    return { outcome, rows: rowsOf(await db.execute(sql`select id, n from pairs order by id`)) };
  }

  it("runs a statement again when PostgreSQL ended it as a deadlock's victim", async () => {
    expect(await deadlocked(true)).toEqual({
      outcome: "done",
      rows: [
        { id: 1, n: 11 },
        { id: 2, n: 11 },
      ],
    });
  });

  it("and without it, the victim fails", async () => {
    expect(await deadlocked(false)).toEqual({
      outcome: "40P01",
      rows: [
        { id: 1, n: 10 },
        { id: 2, n: 10 },
      ],
    });
  });
});
