import { Command } from "commander";
import { startBridge } from "./bridge.js";
import { channelsOf } from "./channels/registry.js";
import { getTelegramWebhookInfo, setTelegramWebhook } from "./channels/telegram/index.js";
import { type AppConfig, loadConfig } from "./config/index.js";
import { openDatabase } from "./db/client.js";
import { migrate } from "./db/migrate.js";
import { ConfigError } from "./errors.js";
import { createLogger, errorFields, type Logger, stackFrames } from "./log.js";
import { loadSecretKeys, SecretBox } from "./tenants/secrets.js";
import { rotateKey } from "./tenants/store.js";

/** Config errors end the process with their message and exit code 2; anything else is a crash (1). */
function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`bridge: ${err.message}\n`);
    process.exit(2);
  }
  // errorFields: a failed statement's message would carry its parameters.
  process.stderr.write(`bridge: ${errorFields(err).err}\n${stackFrames(err) ?? ""}\n`);
  process.exit(1);
}

function setup(): { config: AppConfig; log: Logger } {
  const config = loadConfig(process.env);
  return { config, log: createLogger(config.settings.LOG_LEVEL) };
}

async function run(http: boolean): Promise<void> {
  const { config, log } = setup();
  const bridge = await startBridge({ config, log, http, worker: true });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    bridge.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error(errorFields(err), "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

function webhookUrls(config: AppConfig): string[] {
  const base = config.publicUrl ?? "<PUBLIC_URL>";
  return config.tenants.flatMap((tenant) => [
    `tenant ${tenant.id} (${channelsOf(tenant).join(", ") || "no channels"})`,
    ...channelsOf(tenant).map((channel) => `  ${channel}: ${base}/webhooks/${tenant.id}/${channel}`),
  ]);
}

function telegramConfig(config: AppConfig, tenantId: string) {
  const tenant = config.tenants.find((t) => t.id === tenantId);
  if (!tenant) throw new ConfigError(`unknown tenant ${tenantId}`);
  if (!tenant.telegram) throw new ConfigError(`tenant ${tenantId} has no telegram channel`);
  return tenant.telegram;
}

const program = new Command("bridge").description(
  "Relay Telegram, Slack and WhatsApp messages to Quickchat AI",
);

program
  .command("serve", { isDefault: true })
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
  .description("validate the configuration and print each tenant's webhook URLs")
  .action(() => {
    const config = loadConfig(process.env);
    process.stdout.write(`configuration OK: ${config.tenants.length} tenant(s)\n`);
    for (const line of webhookUrls(config)) process.stdout.write(`${line}\n`);
    if (!config.publicUrl)
      process.stdout.write("PUBLIC_URL is not set: replace <PUBLIC_URL> with your public base URL\n");
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
    await setTelegramWebhook(telegramConfig(config, opts.tenant), url);
    process.stdout.write(`webhook set: ${url}\n`);
  });
telegram
  .command("webhook-info")
  .requiredOption("--tenant <id>", "tenant id")
  .description("print Telegram's getWebhookInfo for the tenant's bot")
  .action(async (opts: { tenant: string }) => {
    const info = await getTelegramWebhookInfo(telegramConfig(loadConfig(process.env), opts.tenant));
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
  });

program.parseAsync(process.argv).catch(fail);
