import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { type RunningBridge, startBridge } from "./bridge.js";
import { getTelegramWebhookInfo, setTelegramWebhook, TelegramCallError } from "./channels/telegram/index.js";
import { checkConfig } from "./cli/check-config.js";
import { type AppConfig, loadConfig } from "./config/index.js";
import { openDatabase } from "./db/client.js";
import { migrate } from "./db/migrate.js";
import { ConfigError } from "./errors.js";
import { createLogger, errorFields, type Logger, logDestination, stackFrames } from "./log.js";
import { loadSecretKeys, SecretBox } from "./tenants/secrets.js";
import { rotateKey } from "./tenants/store.js";

/**
 * Exit codes: 2 when the command line or the configuration is wrong (nothing was attempted), 1 when
 * something failed while running (a platform refused, the database is unreachable).
 */
const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

/**
 * Ends the process for an error, in one line on stderr: a configuration error with its message, anything
 * else with its safe message (errorFields: a failed statement's message would carry its parameters). The
 * stack frames follow only at LOG_LEVEL=debug or trace; frames, never messages, which may quote secrets.
 */
function fail(err: unknown): never {
  // Commander has already said what was wrong (or printed the help or version asked for).
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  if (err instanceof ConfigError) {
    process.stderr.write(`bridge: ${err.message}\n`);
    process.exit(EXIT_USAGE);
  }
  process.stderr.write(`bridge: ${errorFields(err).err}\n`);
  if (["debug", "trace"].includes(process.env.LOG_LEVEL ?? "")) process.stderr.write(`${traces(err)}\n`);
  process.exit(EXIT_RUNTIME);
}

/** The stack frames of an error and of the errors it wraps (`cause`, grammY's `error`), names only. */
function traces(err: unknown): string {
  const parts: string[] = [];
  let current = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    parts.push(`${depth > 0 ? `caused by ${current.name}\n` : ""}${stackFrames(current) ?? ""}`);
    current = current.cause ?? (current as { error?: unknown }).error;
  }
  return parts.join("\n");
}

/**
 * Commander's usage errors as one line: "bridge: unknown command 'chek-config' (did you mean
 * check-config?)" rather than "error: unknown command 'chek-config'" and the suggestion on a line of its own.
 */
function usageError(text: string): string {
  const message = text
    .trim()
    .replace(/^error: /, "")
    .replace(/\n\(Did you mean (.+)\?\)$/, " (did you mean $1?)");
  return `bridge: ${message}\n`;
}

const VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

function setup(): { config: AppConfig; log: Logger } {
  const config = loadConfig(process.env);
  const { LOG_LEVEL, LOG_FORMAT } = config.settings;
  return { config, log: createLogger(LOG_LEVEL, logDestination(LOG_FORMAT)) };
}

async function run(http: boolean): Promise<void> {
  const { config, log } = setup();
  // Listening before starting: a SIGTERM during startup (a rollout, an orchestrator's quick stop) stops the
  // service once it is up, instead of killing it mid-migration or mid-listen with the default action.
  let signalled: string | undefined;
  let bridge: RunningBridge | undefined;
  const stop = (running: RunningBridge, signal: string) => {
    log.info({ signal }, "shutting down");
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error(errorFields(err), "shutdown failed");
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: string) => {
    if (signalled) return;
    signalled = signal;
    if (bridge) stop(bridge, signal);
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  bridge = await startBridge({ config, log, http, worker: true });
  if (signalled) stop(bridge, signalled);
}

/** The `telegram` block of a tenant of the configuration (the CLI does not read the admin API's tenants). */
function telegramConfig(config: AppConfig, tenantId: string) {
  const tenant = config.tenants.find((t) => t.id === tenantId);
  if (!tenant) {
    const known = config.tenants.map((t) => t.id).join(", ") || "none";
    throw new ConfigError(
      `tenant ${tenantId} is not in the configuration (its tenants: ${known}); the CLI reads the config file ` +
        "and the environment, not tenants added through the admin API",
    );
  }
  if (!tenant.telegram) throw new ConfigError(`tenant ${tenantId} has no telegram channel`);
  return tenant.telegram;
}

/** `run` for a tenant's Telegram call, whose failure is named by the tenant. */
async function forTenant<T>(tenantId: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof TelegramCallError) {
      throw new TelegramCallError(`tenant ${tenantId}: Telegram ${err.message}`, { cause: err });
    }
    throw err;
  }
}

const program = new Command("bridge")
  .description("Relay Telegram, Slack and WhatsApp messages to Quickchat AI (no command: serve)")
  .version(VERSION)
  // Before the commands: they inherit these settings.
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(usageError(text)) });

program
  .command("serve")
  .description("serve webhooks over HTTP and run the relay worker")
  .action(() => run(true));
program
  .command("worker")
  .description("run the relay worker only (no HTTP)")
  .action(() => run(false));
program
  .command("migrate")
  .description("apply database migrations and exit")
  .action(async () => {
    const { config, log } = setup();
    const database = await openDatabase({
      url: config.settings.DATABASE_URL,
      dataDir: config.settings.DATA_DIR,
    });
    await migrate(database);
    await database.close();
    log.info({ database: database.kind }, "migrations applied");
  });
program
  .command("check-config")
  .description(
    "validate the configuration without the network: each tenant's origin and webhook URLs, and warnings",
  )
  .action(() => {
    const { lines } = checkConfig(loadConfig(process.env));
    process.stdout.write(`${lines.join("\n")}\n`);
  });

program
  .command("rotate-key")
  .description(
    "re-encrypt every stored tenant's secrets with the first key of BRIDGE_SECRET_KEY (run once every process has it)",
  )
  .action(async () => {
    const { config, log } = setup();
    const { settings } = config;
    if (process.env.NEW_BRIDGE_SECRET_KEY) {
      throw new ConfigError(
        "NEW_BRIDGE_SECRET_KEY is no longer read: put the new key first in BRIDGE_SECRET_KEY=<new>,<old> " +
          "once every process has it (docs/operations.md, Secret key rotation)",
      );
    }
    const database = await openDatabase({ url: settings.DATABASE_URL, dataDir: settings.DATA_DIR });
    try {
      const keys = loadSecretKeys({
        configured: settings.BRIDGE_SECRET_KEY,
        embedded: database.kind === "pglite",
        dataDir: settings.DATA_DIR,
      });
      if (!keys) throw new ConfigError("set BRIDGE_SECRET_KEY to <new key>,<old key>");
      const box = new SecretBox(keys);
      const count = await rotateKey(database.db, box);
      log.info(
        { tenants: count, key_id: box.currentKeyId },
        "tenant secrets re-encrypted with the first key: the others can now be removed from BRIDGE_SECRET_KEY",
      );
    } finally {
      await database.close();
    }
  });

const telegram = program.command("telegram").description("Telegram webhook management");
telegram
  .command("set-webhook")
  .requiredOption("--tenant <id>", "tenant id")
  .description("register <public_url>/webhooks/<tenant>/telegram with the tenant's secret token")
  .action(async (opts: { tenant: string }) => {
    const config = loadConfig(process.env);
    if (!config.publicUrl) throw new ConfigError("PUBLIC_URL (or public_url in the config file) is required");
    const url = `${config.publicUrl}/webhooks/${opts.tenant}/telegram`;
    const telegramBlock = telegramConfig(config, opts.tenant);
    await forTenant(opts.tenant, () => setTelegramWebhook(telegramBlock, url));
    process.stdout.write(`webhook set for tenant ${opts.tenant}: ${url}\n`);
  });
telegram
  .command("webhook-info")
  .requiredOption("--tenant <id>", "tenant id")
  .description("print Telegram's getWebhookInfo for the tenant's bot")
  .action(async (opts: { tenant: string }) => {
    const telegramBlock = telegramConfig(loadConfig(process.env), opts.tenant);
    const info = await forTenant(opts.tenant, () => getTelegramWebhookInfo(telegramBlock));
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
  });

// No command is `serve` (the container's default). Not commander's default command: that one would take
// a mistyped command for serve's arguments ("too many arguments for 'serve'").
const args = process.argv.slice(2);
program.parseAsync(args.length > 0 ? args : ["serve"], { from: "user" }).catch(fail);
