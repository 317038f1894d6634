/**
 * The bench's processes: fresh databases, the compiled service, the fakes child and its config file. Every
 * child is killed when the bench process exits, whichever way it ends; each database is dropped by its user.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { containerNodeFlags } from "./node-flags.js";
import { BENCH_IDS, type FakesReply, type FakesRequest } from "./shared.js";

export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const TENANT = "bench";
/** Compiled service; one level below the repository root, like dist/, so it finds drizzle/ and node_modules. */
export const BUILD_DIR = ".bench-dist";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
export const log = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------
// Processes, ports, databases

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Database {
  url: string;
  drop(): Promise<void>;
}

/** Databases created and not dropped yet: an interrupted run drops them before it exits. */
const undropped = new Set<string>();

async function administer(statement: string): Promise<void> {
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(statement);
  } finally {
    await admin.end();
  }
}

async function dropDatabase(name: string): Promise<void> {
  await administer(`drop database if exists ${name} with (force)`);
  undropped.delete(name);
}

export async function freshDatabase(): Promise<Database> {
  const name = `qb_bench_${randomBytes(5).toString("hex")}`;
  await administer(`create database ${name}`);
  undropped.add(name);
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => dropDatabase(name) };
}

export interface Service {
  child: ChildProcess;
  url: string;
  /** SIGTERM, and SIGKILL if it has not exited within 5 s. */
  stop(): Promise<void>;
  /** SIGKILL, for a child stuck in a slow request: it cannot run its SIGTERM handler. */
  kill(): Promise<void>;
}

/** Children still running: killed when the bench exits, so a failed run leaves none behind. */
const running = new Set<ChildProcess>();
const killChildren = () => {
  for (const child of running) child.kill("SIGKILL");
};
process.on("exit", killChildren);
// Interrupted (Ctrl-C, SIGTERM): no `finally` of a scenario runs, so the children and databases go here. The
// handler stays for a second signal (Ctrl-C reaches both tsx and this process, and tsx relays it again).
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    killChildren();
    void Promise.allSettled([...undropped].map(dropDatabase)).finally(() => process.exit(130));
  });

function spawnTracked(args: string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  const child = spawn(process.execPath, args, options);
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** Sends `signal`, then SIGKILL after `graceMs`, and waits for the exit. */
async function end(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (exited(child)) return;
  const exit = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exit;
  clearTimeout(timer);
}

async function waitHealthy(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited(child))
      throw new Error(`child exited (${child.exitCode ?? child.signalCode}) before it was healthy`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} not healthy after ${timeoutMs} ms`);
}

/** A node child serving HTTP on a free port, once its /healthz answers; killed if it never does. */
export async function startChild(args: string[], env: Record<string, string>): Promise<Service> {
  const port = await freePort();
  const child = spawnTracked(args, {
    env: { ...process.env, ...env, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, child);
  } catch (err) {
    await end(child, "SIGKILL", 0);
    throw err;
  }
  return { child, url, stop: () => end(child, "SIGTERM", 5000), kill: () => end(child, "SIGKILL", 0) };
}

// ---------------------------------------------------------------------------------------------------------
// Fakes child

export interface Fakes {
  urls: { quickchat: string; telegram: string; slack: string; twilio: string };
  ask<T extends FakesReply["type"]>(request: FakesRequest): Promise<Extract<FakesReply, { type: T }>>;
  stop(): void;
}

/** `BENCH_CPU_PROF=<dir>`: the service and the fakes write CPU profiles there when they exit. */
export const profileArgs = () =>
  process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];

export async function startFakes(): Promise<Fakes> {
  const child = spawnTracked([...profileArgs(), "--import", "tsx", "bench/fakes.ts"], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending = new Map<number, (reply: FakesReply) => void>();
  let seq = 0;
  const ready = new Promise<FakesReply>((resolve) => pending.set(0, resolve));
  child.on("message", (message: { seq: number; reply: FakesReply }) => {
    pending.get(message.seq)?.(message.reply);
    pending.delete(message.seq);
  });
  const first = await ready;
  if (first.type !== "ready") throw new Error("fakes did not start");
  return {
    urls: first.urls,
    ask<T extends FakesReply["type"]>(request: FakesRequest) {
      return new Promise<Extract<FakesReply, { type: T }>>((resolve) => {
        seq++;
        pending.set(seq, (reply) => resolve(reply as Extract<FakesReply, { type: T }>));
        child.send({ seq, request });
      });
    },
    stop: () => child.kill("SIGTERM"),
  };
}

export function writeConfig(fakes: Fakes): string {
  const dir = mkdtempSync(join(tmpdir(), "qb-bench-"));
  const path = join(dir, "bridge.json");
  const config = {
    public_url: BENCH_IDS.publicUrl,
    tenants: [
      {
        id: TENANT,
        quickchat: {
          scenario_id: BENCH_IDS.scenario,
          token: BENCH_IDS.quickchatToken,
          base_url: fakes.urls.quickchat,
        },
        telegram: {
          bot_token: BENCH_IDS.telegramToken,
          webhook_secret: BENCH_IDS.telegramSecret,
          api_root: fakes.urls.telegram,
        },
        slack: {
          signing_secret: BENCH_IDS.slackSigningSecret,
          bot_token: BENCH_IDS.slackBotToken,
          api_url: `${fakes.urls.slack}/api/`,
        },
        whatsapp: {
          account_sid: BENCH_IDS.twilioSid,
          auth_token: BENCH_IDS.twilioToken,
          from: BENCH_IDS.twilioFrom,
          api_base: fakes.urls.twilio,
        },
      },
    ],
  };
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

// ---------------------------------------------------------------------------------------------------------
// The service

/** Node's flags for the service, read from the container's ENTRYPOINT, so the figures hold for the container. */
const SERVICE_NODE_FLAGS = containerNodeFlags(readFileSync("docker/Dockerfile", "utf8"));

const BRIDGE_ENV = { LOG_LEVEL: "warn", SHUTDOWN_TIMEOUT_SECONDS: "2" };

/** The compiled service on `databaseUrl`, with the bench's config file. */
export function startService(
  configPath: string,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<Service> {
  return startChild([...profileArgs(), ...SERVICE_NODE_FLAGS, `${BUILD_DIR}/main.js`, "serve"], {
    ...BRIDGE_ENV,
    ...env,
    DATABASE_URL: databaseUrl,
    BRIDGE_CONFIG: configPath,
  });
}

/** The compiled service on a fresh database; stopping or killing it drops the database. */
export async function startBridge(configPath: string, env: Record<string, string>): Promise<Service> {
  const db = await freshDatabase();
  let bridge: Service;
  try {
    bridge = await startService(configPath, db.url, env);
  } catch (err) {
    await db.drop();
    throw err;
  }
  return {
    ...bridge,
    async stop() {
      await bridge.stop();
      await db.drop();
    },
    async kill() {
      await bridge.kill();
      await db.drop();
    },
  };
}

export async function withBridge<T>(
  configPath: string,
  env: Record<string, string>,
  fn: (bridge: Service) => Promise<T>,
): Promise<T> {
  const bridge = await startBridge(configPath, env);
  try {
    return await fn(bridge);
  } finally {
    await bridge.stop();
  }
}
