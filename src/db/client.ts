import { chmodSync, lstatSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import type { Logger } from "../log.js";
import * as schema from "./schema.js";

/** The query API shared by both drivers: repositories are written against this only. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  /**
   * The same database, for statements whose plan is the same at any table size (the webhook inserts; tests
   * check their plans): its connections plan each prepared statement once and keep that plan, where `db`'s
   * plan every run (see openPostgres). Planning was half of the webhook insert's cost in PostgreSQL.
   */
  fixedPlans: Db;
  kind: "postgres" | "pglite";
  /** Subscribes to a NOTIFY channel; returns the unsubscribe function. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /** Runs `fn` while holding a cluster-wide advisory lock (migrations on several replicas at once). */
  withLock<T>(key: number, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres.js URL; when absent, PGlite in `dataDir` (or in memory when `dataDir` is "memory://"). */
  url?: string;
  dataDir: string;
  /** postgres.js pool size. */
  maxConnections?: number;
  /** Where a warning about a DATA_DIR other users could read goes. */
  log?: Logger;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url
    ? openPostgres(options.url, options.maxConnections ?? 20)
    : openPglite(options.dataDir, options.log);
}

/** Connections of `Database.fixedPlans`: the webhook inserts in flight at once (InboxWriter). */
const FIXED_PLAN_CONNECTIONS = 2;

function openPostgres(url: string, max: number): Database {
  // A prepared statement's cached (generic) plan is made once, from the tables' sizes at that moment: made on
  // a young inbox, it scans the whole table by the time the inbox has grown (12 ms instead of 0.7 ms per
  // grouped update at 20,000 rows). Planning each run with its parameters costs far less.
  // Unprepared statements are planned per run anyway, and PgBouncer refuses unknown startup parameters, so
  // without prepared statements there is one pool, with the server's default.
  const prepares = preparesStatements(url);
  const client = connect(url, max, prepares ? "force_custom_plan" : undefined);
  const fixedPlanClient = prepares ? connect(url, FIXED_PLAN_CONNECTIONS, "force_generic_plan") : client;
  const drizzled = (sql: postgres.Sql) =>
    drizzlePostgres(withPreparedStatements(sql), { schema }) as unknown as Db;
  return {
    db: drizzled(client),
    fixedPlans: drizzled(fixedPlanClient),
    kind: "postgres",
    async listen(channel, onNotify) {
      const { unlisten } = await client.listen(channel, (payload) => onNotify(payload));
      return unlisten;
    },
    async withLock(key, fn) {
      const reserved = await client.reserve();
      try {
        await reserved`select pg_advisory_lock(${key})`;
        return await fn();
      } finally {
        await reserved`select pg_advisory_unlock(${key})`.catch(() => {});
        reserved.release();
      }
    },
    async close() {
      await Promise.all([...new Set([client, fixedPlanClient])].map((sql) => sql.end({ timeout: 5 })));
    },
  };
}

function connect(url: string, max: number, planCacheMode?: string): postgres.Sql {
  return postgres(url, {
    max,
    onnotice: () => {},
    connection: {
      application_name: "quickchat-bridge",
      ...(planCacheMode && { plan_cache_mode: planCacheMode }),
    },
  });
}

/** False with postgres.js's `?prepare=false` (or `disable`) on the URL. */
const preparesStatements = (url: string) => !/[?&]prepare=(false|disable)(&|$)/i.test(url);

/**
 * drizzle sends its queries as unnamed statements, which postgres.js runs in two round trips (parse and
 * describe, then bind and execute) and PostgreSQL parses every one. The service's statements are few and
 * fixed in text, so each connection prepares each one once and then runs it in one round trip (still planned
 * per run on `db`, once on `fixedPlans`: see openPostgres).
 * `?prepare=false` on DATABASE_URL (postgres.js's own option) turns this off, e.g. for PgBouncer in
 * transaction mode; queries without parameters keep the simple protocol either way.
 */
function withPreparedStatements(client: postgres.Sql): postgres.Sql {
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property !== "unsafe") return Reflect.get(target, property, receiver);
      return (query: string, parameters?: unknown[], options?: postgres.UnsafeQueryOptions) =>
        target.unsafe(query, parameters as postgres.ParameterOrJSON<never>[], {
          ...options,
          prepare: (parameters?.length ?? 0) > 0,
        });
    },
  });
}

async function openPglite(dataDir: string, log?: Logger): Promise<Database> {
  const onDisk = !dataDir.startsWith("memory://");
  if (onDisk) prepareDataDir(dataDir, log);
  const client = onDisk ? await PGlite.create(dataDir) : await openInMemory();
  if (onDisk) closeToOthers(dataDir);
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    db,
    // One in-process connection, with PostgreSQL's default plan caching.
    fixedPlans: db,
    kind: "pglite",
    async listen(channel, onNotify) {
      return client.listen(channel, (payload) => onNotify(payload));
    },
    // PGlite is one connection in this process: nothing else can run migrations concurrently.
    withLock: (_key, fn) => fn(),
    async close() {
      await client.close();
      if (onDisk) closeToOthers(dataDir);
    },
  };
}

/**
 * The files a new in-memory database starts from: a copy of a freshly initialised one. A fresh PGlite runs
 * initdb, 2-3 s of CPU; starting from a copy takes about 0.5 s. Tests open hundreds of in-memory databases.
 */
let memoryImage: Promise<Blob> | undefined;

/** Starts this process's in-memory databases from `image` (a `dumpDataDir` of a fresh, empty PGlite). */
export function startMemoryDatabasesFrom(image: Blob): void {
  memoryImage = Promise.resolve(image);
}

/** A fresh in-memory PGlite: from the image when there is one, else initialised, leaving its image. */
async function openInMemory(): Promise<PGlite> {
  if (memoryImage) return PGlite.create({ loadDataDir: await memoryImage });
  const fresh = await PGlite.create("memory://");
  if (!memoryImage) {
    const image = fresh.dumpDataDir("none");
    memoryImage = image;
    await image.catch(() => {
      if (memoryImage === image) memoryImage = undefined;
    });
  }
  return fresh;
}

/**
 * The embedded database's files hold every message: only this service's user may read them. DATA_DIR is
 * created 0700, which keeps other users out of everything in it; and so that its files are private on their
 * own too (a copied or loosened directory), their group and other bits are removed when the database opens
 * and when it closes: PGlite sets its files' modes itself (0666, whatever the umask), so a umask is not
 * enough. A DATA_DIR found open to others (an older version, a loose umask) is closed, with a warning.
 */
function prepareDataDir(dataDir: string, log?: Logger): void {
  process.umask(0o077); // for what else this process creates there (secret.key has its own 0600)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // Files left open inside a closed DATA_DIR (a crash before the close) were out of others' reach: no warning.
  const wasOpen = (lstatSync(dataDir).mode & 0o077) !== 0;
  const { closed, refused } = closeToOthers(dataDir);
  // Not fatal: e.g. a volume owned by root and shared through its group (Kubernetes fsGroup).
  if (refused > 0)
    log?.warn(
      { data_dir: dataDir, paths: refused },
      "DATA_DIR stays open to other users: this user may not change some of its modes; check its owner and permissions",
    );
  else if (wasOpen)
    log?.warn(
      { data_dir: dataDir, paths: closed },
      "DATA_DIR was open to other users; it is now readable by this service's user only",
    );
}

/** Removes group and other permissions from `dir` and everything in it: how many paths were closed, and refused. */
function closeToOthers(dir: string): { closed: number; refused: number } {
  let closed = 0;
  let refused = 0;
  for (const path of [dir, ...readdirSync(dir, { recursive: true }).map((p) => join(dir, String(p)))]) {
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (!stat || stat.isSymbolicLink() || (stat.mode & 0o077) === 0) continue;
    try {
      chmodSync(path, stat.mode & 0o700);
      closed++;
    } catch {
      refused++;
    }
  }
  return { closed, refused };
}

/** The rows of `db.execute`'s result on either driver: postgres.js returns them, PGlite wraps them. */
export const rowsOf = <T = Record<string, unknown>>(result: unknown): T[] =>
  Array.isArray(result) ? result : ((result as { rows?: T[] }).rows ?? []);

/** True when the database answers a trivial query. */
export async function ping(db: Db): Promise<boolean> {
  try {
    await db.execute(sql`select 1`);
    return true;
  } catch {
    return false;
  }
}
