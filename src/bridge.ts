import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import { createAdminRoutes } from "./admin/routes.js";
import { createApp } from "./app.js";
import { channelsOf, createAdapters } from "./channels/registry.js";
import type { AdapterMap } from "./channels/types.js";
import type { AppConfig } from "./config/index.js";
import { type Database, openDatabase } from "./db/client.js";
import { queueStats } from "./db/inbox.js";
import { migrate } from "./db/migrate.js";
import type { Logger } from "./log.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { createQuickchatClient, type QuickchatClient } from "./quickchat/client.js";
import { Heartbeat } from "./relay/heartbeat.js";
import { WorkerPool } from "./relay/pool.js";
import { startRetention } from "./relay/retention.js";
import { loadSecretKeys, SecretBox } from "./tenants/secrets.js";
import { TenantStore } from "./tenants/store.js";

export interface BridgeOptions {
  config: AppConfig;
  log: Logger;
  /** Serve HTTP (`serve`); false for `worker`. */
  http: boolean;
  /** Run the relay worker pool in this process. */
  worker: boolean;
  /** Overrides for tests: channel adapters, Quickchat client. */
  adapters?: AdapterMap;
  quickchat?: QuickchatClient;
  /** An open database instead of DATABASE_URL or DATA_DIR's, for tests: several bridges on one embedded
   * database (one connection, which only this process can share). Left open on stop. */
  database?: Database;
}

export interface RunningBridge {
  /** http://host:port when serving HTTP. */
  url?: string;
  database: Database;
  worker?: WorkerPool;
  tenants: TenantStore;
  metrics: Metrics;
  /** Graceful stop: 503 for new webhooks, finish or return claimed messages, close the database. */
  stop(): Promise<void>;
}

/** Wires configuration, database, adapters, relay and HTTP together: the whole service. */
export async function startBridge(options: BridgeOptions): Promise<RunningBridge> {
  const { config, log } = options;
  const { settings } = config;
  const database =
    options.database ?? (await openDatabase({ url: settings.DATABASE_URL, dataDir: settings.DATA_DIR, log }));
  await migrate(database);
  log.info({ database: database.kind }, "database ready, migrations applied");

  const keys = loadSecretKeys({
    configured: settings.BRIDGE_SECRET_KEY,
    embedded: database.kind === "pglite",
    dataDir: settings.DATA_DIR,
  });
  const tenants = new TenantStore({
    database,
    staticTenants: config.tenants,
    ...(keys && { box: new SecretBox(keys) }),
    log,
  });
  await tenants.start();
  for (const tenant of config.tenants) {
    log.info({ tenant: tenant.id, channels: channelsOf(tenant) }, "tenant configured");
  }
  if ((await tenants.list()).length === 0) {
    log.warn(
      "no tenants configured: set QUICKCHAT_* variables, BRIDGE_CONFIG, or add tenants via the admin API",
    );
  }

  const adapters = options.adapters ?? createAdapters({ log });
  const metrics = createMetrics(() => queueStats(database.db));
  // A worker's leases name its process, whose heartbeat lets the others take them over if it dies.
  const heartbeat = options.worker
    ? new Heartbeat({ database, log, takeoverMs: settings.TAKEOVER_SECONDS * 1000 })
    : undefined;
  await heartbeat?.start();
  const worker = heartbeat
    ? new WorkerPool({
        processId: heartbeat.processId,
        database,
        tenants,
        adapters,
        quickchat:
          options.quickchat ??
          createQuickchatClient({ timeoutMs: settings.QUICKCHAT_TIMEOUT_SECONDS * 1000 }),
        log,
        metrics,
        options: {
          concurrency: settings.WORKER_CONCURRENCY,
          tenantConcurrency: Math.min(settings.TENANT_CONCURRENCY, settings.WORKER_CONCURRENCY),
          leaseMs: settings.LEASE_SECONDS * 1000,
          pollIntervalMs: settings.POLL_INTERVAL_MS,
          maxRetryMs: settings.QUICKCHAT_MAX_RETRY_SECONDS * 1000,
          backoff: { baseMs: settings.RETRY_BASE_MS, maxMs: settings.RETRY_MAX_DELAY_SECONDS * 1000 },
        },
      })
    : undefined;
  await worker?.start();
  const stopRetention = options.worker
    ? startRetention(
        database.db,
        {
          messageDays: settings.RETENTION_DAYS,
          conversationDays: settings.CONVERSATION_IDLE_DAYS,
          batchSize: 500,
        },
        settings.RETENTION_INTERVAL_MINUTES * 60_000,
        log,
      )
    : () => {};

  let draining = false;
  let server: ServerType | undefined;
  let url: string | undefined;
  if (options.http) {
    const app = createApp({
      database,
      tenants,
      adapters,
      log,
      metrics,
      ...(settings.ADMIN_TOKEN && {
        admin: createAdminRoutes({
          token: settings.ADMIN_TOKEN,
          db: database.db,
          tenants,
          wake: () => worker?.wake(),
        }),
      }),
      ...(config.publicUrl && { publicUrl: config.publicUrl }),
      ...(worker && { handoff: worker }),
      isDraining: () => draining,
    });
    // Slow or stalled clients are cut off instead of holding sockets: node answers 408 and closes the
    // connection when the headers, or the whole request, have not arrived in time. It checks every
    // connectionsCheckingInterval (30 s by default, too coarse for these timeouts).
    const requestTimeout = settings.HTTP_REQUEST_TIMEOUT_SECONDS * 1000;
    const serverOptions = {
      requestTimeout,
      headersTimeout: Math.min(settings.HTTP_HEADERS_TIMEOUT_SECONDS * 1000, requestTimeout),
      connectionsCheckingInterval: Math.min(1000, requestTimeout / 2),
    };
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: settings.HOST, port: settings.PORT, serverOptions }, () =>
        resolve(s),
      );
    });
    const address = server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${address.port}`;
    log.info({ url }, "listening");
  }

  return {
    ...(url && { url }),
    database,
    ...(worker && { worker }),
    tenants,
    metrics,
    async stop() {
      draining = true;
      stopRetention();
      await worker?.stop(settings.SHUTDOWN_TIMEOUT_SECONDS * 1000);
      await heartbeat?.stop();
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          if ("closeIdleConnections" in s) s.closeIdleConnections();
        });
      }
      await tenants.stop();
      if (!options.database) await database.close();
      log.info("stopped");
    },
  };
}
