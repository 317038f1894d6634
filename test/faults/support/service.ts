/**
 * The fault suite's world: the real service as child processes (`bin/bridge.js serve`) on one PostgreSQL
 * database, and the loopback fakes of Quickchat, Telegram, Slack and Twilio in this process, so the suite
 * can break them on purpose and count every call they receive.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { QuickchatFake } from "../../fakes/quickchat.js";
import { type RunningFake, startFake } from "../../fakes/server.js";
import { createSlackFake, type FakeSlack } from "../../fakes/slack.js";
import { createTelegramFake, type TelegramFake } from "../../fakes/telegram.js";
import { createTwilioFake, type TwilioFake } from "../../fakes/twilio.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../../support/db.js";
import { listeningUrl } from "../../support/listening.js";
import { bridgeBin } from "../../support/service-build.js";
import { BOT } from "../../telegram/updates.js";

/** `npm run test:faults` sets FAULTS_FULL=1 for the sizes the issue names; `npm test` runs bounded ones. */
export const FULL = process.env.FAULTS_FULL === "1";
export const size = (bounded: number, full: number) => (FULL ? full : bounded);

/** Every credential the fault tenant uses: the secret search looks for each of them. */
export const IDS = {
  scenario: "fault-scenario",
  quickchatToken: "qc-fault-token-5f0c9d2e7a1b",
  telegramToken: "7012345678:AAFaultTelegramToken_9c1d2e3f4a5b6c7d8e",
  telegramSecret: "tg-fault-webhook-secret-77aa",
  slackSigningSecret: "slack-fault-signing-secret-0d9e8f7a6b5c",
  slackBotToken: "xoxb-fault-slack-bot-token-31b2c3d4",
  slackTeam: "T0FAULT",
  twilioSid: "AC0fa0170000000000000000000000beef",
  twilioToken: "twilio-fault-auth-token-4c5d6e7f8a9b",
  twilioFrom: "whatsapp:+14155238886",
  adminToken: "admin-fault-token-0123456789abcdef",
  secretKey: Buffer.from("fault-suite-key-32-bytes-long!!!").toString("base64"),
  /** Twilio signs the public URL; the service is told this one, whatever port it listens on. */
  publicUrl: "http://bridge.fault.test",
};

export const SECRETS = [
  IDS.quickchatToken,
  IDS.telegramToken,
  IDS.telegramSecret,
  IDS.slackSigningSecret,
  IDS.slackBotToken,
  IDS.twilioToken,
  IDS.adminToken,
  IDS.secretKey,
];

export interface Fakes {
  quickchat: QuickchatFake;
  telegram: TelegramFake;
  slack: FakeSlack;
  twilio: TwilioFake;
  urls: { quickchat: string; telegram: string; slack: string; twilio: string };
  close(): Promise<void>;
}

export async function startFakes(): Promise<Fakes> {
  const quickchat = await new QuickchatFake({ scenarios: { [IDS.scenario]: IDS.quickchatToken } }).start();
  const telegram = createTelegramFake({ [IDS.telegramToken]: BOT });
  const slack = createSlackFake({
    bots: [{ token: IDS.slackBotToken, teamId: IDS.slackTeam, userId: "UBOTFAKE", botId: "BBOTFAKE" }],
    users: [{ id: "U0FAULTUSER", name: "fault", realName: "Fault User" }],
  });
  const twilio = createTwilioFake({ [IDS.twilioSid]: IDS.twilioToken });
  const servers: RunningFake[] = await Promise.all([
    startFake(telegram.app),
    startFake(slack.app),
    startFake(twilio.app),
  ]);
  const [telegramServer, slackServer, twilioServer] = servers as [RunningFake, RunningFake, RunningFake];
  return {
    quickchat,
    telegram,
    slack,
    twilio,
    urls: {
      quickchat: quickchat.url,
      telegram: telegramServer.url,
      slack: slackServer.url,
      twilio: twilioServer.url,
    },
    async close() {
      await Promise.all([...servers.map((s) => s.close()), quickchat.close()]);
    },
  };
}

/** The single-tenant shorthand for the fault tenant (id `default`), all three channels on the fakes. */
export function serviceEnv(fakes: Fakes, databaseUrl: string): Record<string, string> {
  return {
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "info",
    DATABASE_URL: databaseUrl,
    PUBLIC_URL: IDS.publicUrl,
    ADMIN_TOKEN: IDS.adminToken,
    BRIDGE_SECRET_KEY: IDS.secretKey,
    RETRY_BASE_MS: "100",
    RETRY_MAX_DELAY_SECONDS: "1",
    POLL_INTERVAL_MS: "200",
    SHUTDOWN_TIMEOUT_SECONDS: "2",
    QUICKCHAT_SCENARIO_ID: IDS.scenario,
    QUICKCHAT_TOKEN: IDS.quickchatToken,
    QUICKCHAT_BASE_URL: fakes.urls.quickchat,
    TELEGRAM_BOT_TOKEN: IDS.telegramToken,
    TELEGRAM_WEBHOOK_SECRET: IDS.telegramSecret,
    TELEGRAM_API_ROOT: fakes.urls.telegram,
    SLACK_SIGNING_SECRET: IDS.slackSigningSecret,
    SLACK_BOT_TOKEN: IDS.slackBotToken,
    SLACK_API_URL: `${fakes.urls.slack}/api/`,
    TWILIO_ACCOUNT_SID: IDS.twilioSid,
    TWILIO_AUTH_TOKEN: IDS.twilioToken,
    TWILIO_WHATSAPP_FROM: IDS.twilioFrom,
    TWILIO_API_BASE: fakes.urls.twilio,
  };
}

/** Service environment for `ServiceProcess.retainedMb`: preloads the collect-and-report signal handler. */
export const RETAINED_MEMORY_ENV = {
  NODE_OPTIONS:
    `${process.env.NODE_OPTIONS ?? ""} --require ${new URL("./gc-on-signal.cjs", import.meta.url).pathname}`.trim(),
};

/** Children still running; killed if the test process exits without stopping them (a timed-out run). */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export interface ServiceOptions {
  /** The process's umask, e.g. "022" (by default the test runner's). */
  umask?: string;
}

/** One `bridge serve` child process. Its output lines go to the shared `logs`, for the secret search. */
export class ServiceProcess {
  url = "";
  private exitCode?: number | null;
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    logs: string[],
  ) {
    const collect = (chunk: Buffer) => logs.push(...chunk.toString().split("\n").filter(Boolean));
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    this.exited = new Promise((resolve) =>
      child.once("exit", (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  static async start(
    env: Record<string, string>,
    logs: string[],
    options: ServiceOptions = {},
  ): Promise<ServiceProcess> {
    // With a umask, a shell sets it and then becomes node (same pid).
    const [command, args] = options.umask
      ? [
          "/bin/sh",
          ["-c", `umask ${options.umask} && exec "$0" "$@"`, process.execPath, bridgeBin(), "serve"],
        ]
      : [process.execPath, [bridgeBin(), "serve"]];
    const child = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    child.once("exit", () => running.delete(child));
    const service = new ServiceProcess(child, logs);
    service.url = await listeningUrl(child);
    return service;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resident memory in MB, read from /proc. */
  rssMb(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    return Number(status.match(/VmRSS:\s+(\d+)\s+kB/)?.[1]) / 1024;
  }

  /**
   * Memory in MB that survives full garbage collections: heap and external (buffers). Needs the service
   * started with `RETAINED_MEMORY_ENV`.
   */
  async retainedMb(): Promise<{ heap: number; external: number; rss: number }> {
    let answered = false;
    const line = new Promise<string>((resolve) => {
      let output = "";
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = output.match(/\{"retained":\{[^}]*\}\}/);
        if (!match) return;
        this.child.stderr!.off("data", onData);
        answered = true;
        resolve(match[0]);
      };
      this.child.stderr!.on("data", onData);
    });
    this.child.kill("SIGUSR2");
    const exited = this.exited.then((code) => {
      if (answered) return "";
      throw new Error(`service exited with ${code} on SIGUSR2: started without RETAINED_MEMORY_ENV?`);
    });
    const { retained } = JSON.parse(await Promise.race([line, exited])) as {
      retained: Record<string, number>;
    };
    const mb = (bytes: number | undefined) => (bytes ?? 0) / 1024 / 1024;
    return { heap: mb(retained.heapUsed), external: mb(retained.external), rss: mb(retained.rss) };
  }

  /** SIGKILL: no drain, no lease release; the process simply stops. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM, then the exit code. */
  async stop(): Promise<number | null> {
    if (!this.running) return this.exitCode ?? null;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Worlds not closed yet: when a test fails, their services' logs say what the processes saw. */
const openWorlds = new Set<FaultWorld>();
/** The levels worth showing when a test fails; a line with none (a crash's stack, a broken chunk) too. */
const NOT_WORTH_SHOWING = /"level":"(trace|debug|info)"/;
const LAST_LINES = 50;

afterEach((context) => {
  if (context.task.result?.state !== "fail") return;
  for (const world of openWorlds) {
    // Lines without a pino level (a crash's stack, a chunk's broken line) are shown too.
    const warnings = world.logs.filter((line) => !NOT_WORTH_SHOWING.test(line));
    console.error(
      `services' warnings and errors (${warnings.length}):\n${warnings.join("\n")}\n` +
        `services' last ${LAST_LINES} log lines:\n${world.logs.slice(-LAST_LINES).join("\n")}`,
    );
  }
});

/** The embedded database in `dataDir` (not created yet), inside a temporary directory removed by `drop`. */
export interface EmbeddedDatabase extends TestDatabase {
  dataDir: string;
}

function embeddedDatabase(): EmbeddedDatabase {
  const parent = mkdtempSync(join(tmpdir(), "qb-faults-"));
  return {
    dataDir: join(parent, "data"),
    drop: async () => rmSync(parent, { recursive: true, force: true }),
  };
}

/** A fresh database, the fakes, and any number of service processes sharing both. */
export class FaultWorld {
  readonly logs: string[] = [];
  readonly services: ServiceProcess[] = [];

  private constructor(
    readonly fakes: Fakes,
    readonly database: TestDatabase | EmbeddedDatabase,
    readonly env: Record<string, string>,
  ) {}

  /**
   * On PostgreSQL by default; `database: "pglite"` gives the service the embedded database in a temporary
   * DATA_DIR (one service process at a time).
   */
  static async create(
    extraEnv: Record<string, string> = {},
    { database: kind = "postgres" }: { database?: "postgres" | "pglite" } = {},
  ): Promise<FaultWorld> {
    if (kind === "postgres" && !POSTGRES_URL)
      throw new Error("the fault suite needs PostgreSQL: set DATABASE_URL");
    const fakes = await startFakes();
    const database: TestDatabase | EmbeddedDatabase =
      kind === "postgres" ? await createPostgresDatabase() : embeddedDatabase();
    const { dataDir } = database as Partial<EmbeddedDatabase>;
    const where: Record<string, string> = dataDir ? { DATABASE_URL: "", DATA_DIR: dataDir } : {};
    const env = { ...serviceEnv(fakes, database.url ?? ""), ...where, ...extraEnv };
    const world = new FaultWorld(fakes, database, env);
    openWorlds.add(world);
    return world;
  }

  async startService(
    extraEnv: Record<string, string> = {},
    options: ServiceOptions = {},
  ): Promise<ServiceProcess> {
    const service = await ServiceProcess.start({ ...this.env, ...extraEnv }, this.logs, options);
    this.services.push(service);
    return service;
  }

  async close(): Promise<void> {
    openWorlds.delete(this);
    await Promise.all(this.services.map((s) => s.stop()));
    await this.fakes.close();
    await this.database.drop();
  }
}

/** Only PostgreSQL runs the fault suite: `describe.runIf(POSTGRES_AVAILABLE)`. */
export const POSTGRES_AVAILABLE = POSTGRES_URL !== undefined;
