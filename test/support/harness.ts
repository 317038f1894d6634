import { Writable } from "node:stream";
import { type RunningBridge, startBridge } from "../../src/bridge.js";
import type { AdapterMap } from "../../src/channels/types.js";
import { readSettings } from "../../src/config/env.js";
import { type TenantInput, tenantSchema } from "../../src/config/schema.js";
import type { Database } from "../../src/db/client.js";
import { createLogger } from "../../src/log.js";
import { borrowMemoryDatabase, giveBackMemoryDatabase } from "./memory-databases.js";

export interface TestBridgeOptions {
  tenants: TenantInput[];
  /** postgres URL; PGlite in memory when undefined. */
  databaseUrl?: string;
  /** An open database to use instead (left open on stop): how bridges share one PGlite (see startBridges). */
  database?: Database;
  /** Channel adapters; the real ones by default. */
  adapters?: AdapterMap;
  http?: boolean;
  worker?: boolean;
  publicUrl?: string;
  /** Extra environment settings (fast retries are the default here). */
  env?: Record<string, string>;
}

export interface TestBridge extends RunningBridge {
  url: string;
  /** Every log line the bridge wrote (JSON strings), for assertions and secret searches. */
  logs: string[];
  /** POSTs a webhook body to `path` on the bridge. */
  post(path: string, body: string | Buffer, headers?: Record<string, string>): Promise<Response>;
}

/**
 * Starts the real service in this process (HTTP on a loopback port, worker pool, database), with fast
 * retry settings. The same composition `bridge serve` uses.
 */
export async function startTestBridge(options: TestBridgeOptions): Promise<TestBridge> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  const settings = readSettings({
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: "memory://",
    LOG_LEVEL: "debug",
    RETRY_BASE_MS: "100",
    RETRY_MAX_DELAY_SECONDS: "2",
    POLL_INTERVAL_MS: "200",
    SHUTDOWN_TIMEOUT_SECONDS: "5",
    ...(options.databaseUrl && { DATABASE_URL: options.databaseUrl }),
    ...options.env,
  });
  // An in-memory database is borrowed from the test process's idle ones and given back, emptied, on stop.
  const inMemory = !options.database && !settings.DATABASE_URL && settings.DATA_DIR.startsWith("memory://");
  const borrowed = inMemory ? await borrowMemoryDatabase() : undefined;
  const database = options.database ?? borrowed;
  const bridge = await startBridge({
    config: {
      settings,
      tenants: options.tenants.map((t) => tenantSchema.parse(t)),
      ...(options.publicUrl && { publicUrl: options.publicUrl }),
    },
    log: createLogger(settings.LOG_LEVEL, sink),
    http: options.http ?? true,
    worker: options.worker ?? true,
    ...(options.adapters && { adapters: options.adapters }),
    ...(database && { database }),
  }).catch(async (error: unknown) => {
    if (borrowed) await giveBackMemoryDatabase(borrowed);
    throw error;
  });
  const url = bridge.url ?? "";
  return {
    ...bridge,
    async stop() {
      await bridge.stop();
      if (borrowed) await giveBackMemoryDatabase(borrowed);
    },
    url,
    logs,
    post: (path, body, headers = {}) =>
      fetch(`${url}${path}`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...headers },
      }),
  };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
