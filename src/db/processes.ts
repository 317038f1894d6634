/**
 * Running bridge processes and their heartbeats (`bridge_processes`). A process's lease owner tokens start
 * with its id (`<id>:<n>`), so a process presumed dead can have its leases handed back without waiting for
 * them to run out. Every time is the database's `now()`: replicas' clocks never meet.
 */
import { type SQL, sql } from "drizzle-orm";
import { type Db, rowsOf } from "./client.js";
import { bridgeProcesses, inboundMessages } from "./schema.js";

const olderThan = (silentMs: number) => sql`now() - make_interval(secs => ${silentMs} / 1000.0)`;

/** Adds this process's row (its first beat). */
export async function register(db: Db, id: string): Promise<void> {
  await db.insert(bridgeProcesses).values({ id });
}

/** What a beat learned. */
export interface Beat {
  /** False when this process's row was gone: the others presumed it dead and took its messages over. */
  found: boolean;
  /** Processes silent for longer than `silentMs`. */
  silent: string[];
}

/**
 * One beat, one statement: this process's row is stamped with now(), and the ids of processes whose last beat
 * is older than `silentMs` come back (none but rarely).
 */
export async function beat(db: Db, id: string, silentMs: number): Promise<Beat> {
  const [row] = rowsOf<{ found: boolean; silent: string[] | null }>(
    await db.execute(sql`
      with beat as (
        update ${bridgeProcesses} set heartbeat_at = now() where id = ${id} returning id)
      select exists (select 1 from beat) as found,
        (select array_agg(id) from ${bridgeProcesses}
          where id <> ${id} and heartbeat_at < ${olderThan(silentMs)}) as silent`),
  );
  return { found: row?.found ?? false, silent: row?.silent ?? [] };
}

/** What a takeover did. */
export interface Takeover {
  /** The processes removed: silent still when the statement ran (another process may have been first). */
  processes: string[];
  /** Messages they held, now back in the queue. */
  messages: number;
}

/**
 * Removes the rows of these processes, if still silent for longer than `silentMs`, and hands their leased
 * messages back to the queue, due now; a NOTIFY wakes every replica to claim them. Two processes taking the
 * same one over: the second finds its row gone, and changes nothing.
 */
export async function takeOver(db: Db, ids: string[], silentMs: number): Promise<Takeover> {
  return takeoverOf(await db.execute(takeOverStatement(ids, silentMs)));
}

/** `takeOver`'s statement (its cost is checked in a test). */
export const takeOverStatement = (ids: string[], silentMs: number) =>
  retireStatement(ids, sql`heartbeat_at < ${olderThan(silentMs)}`);

/**
 * A graceful stop, once the pool has handed its messages back: removes this process's row, and hands back
 * anything still leased to it (a hand-back that failed), so nothing waits for a takeover.
 */
export async function unregister(db: Db, id: string): Promise<Takeover> {
  return takeoverOf(await db.execute(retireStatement([id], sql`true`)));
}

/**
 * Deletes these processes' rows (where `condition` holds) and releases their leases, in one statement. A
 * leased message is a thread head whose `next_attempt_at` is its lease end, in the future: the claim index's
 * range past now() holds it, beside the messages waiting for a retry, and none of the backlog, whatever its
 * depth.
 */
function retireStatement(ids: string[], condition: SQL) {
  return sql`
    with dead as (
      delete from ${bridgeProcesses}
      where id in (select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb)) and ${condition}
      returning id),
    released as (
      update ${inboundMessages} set lease_owner = null, lease_until = null, next_attempt_at = now()
      -- Both bounds: as a range, the planner expects few rows on tables not yet analyzed; with the lower bound
      -- alone it expected a third of the inbox and read all of it.
      where next_attempt_at > now() and next_attempt_at < 'infinity'
        and split_part(lease_owner, ':', 1) in (select id from dead)
      returning id),
    notified as (select pg_notify('bridge_inbox', '') where exists (select 1 from released))
    select (select array_agg(id) from dead) as processes, (select count(*) from released)::int as messages,
      (select count(*) from notified) as notified`;
}

function takeoverOf(result: unknown): Takeover {
  const [row] = rowsOf<{ processes: string[] | null; messages: number }>(result);
  return { processes: row?.processes ?? [], messages: row?.messages ?? 0 };
}
