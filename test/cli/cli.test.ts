/**
 * The `bridge` command as an operator runs it: the real CLI in a child process, against loopback fakes and
 * an embedded database in a temporary folder.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { tenantSchema } from "../../src/config/schema.js";
import { openDatabase } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { tenants } from "../../src/db/schema.js";
import { createLogger } from "../../src/log.js";
import { keyId, SecretBox } from "../../src/tenants/secrets.js";
import { TenantStore } from "../../src/tenants/store.js";
import { startFake } from "../fakes/server.js";
import { createTelegramFake } from "../fakes/telegram.js";
import { listeningUrl } from "../support/listening.js";
import { bridgeBin } from "../support/service-build.js";
import { BOT } from "../telegram/updates.js";

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

/** The test runner's environment without anything the bridge reads as configuration. */
const cleanEnv = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) =>
        !/^(DATABASE_URL|DATA_DIR|PUBLIC_URL|ADMIN_TOKEN|LOG_LEVEL|QUICKCHAT_|TELEGRAM_|SLACK_|TWILIO_|WHATSAPP_|BRIDGE_)/.test(
          k,
        ),
    ),
  );

const tempDirs: string[] = [];
function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), "qb-cli-"));
  tempDirs.push(dir);
  return dir;
}

/** An embedded database initialised and migrated once per file (beforeAll), for folderWithDatabase to copy. */
let templateDataDir = "";

beforeAll(async () => {
  templateDataDir = join(mkdtempSync(join(tmpdir(), "qb-cli-template-")), "data");
  const database = await openDatabase({ dataDir: templateDataDir });
  await migrate(database);
  await database.close();
});

afterAll(() => {
  if (templateDataDir) rmSync(dirname(templateDataDir), { recursive: true, force: true });
});

/**
 * A new folder whose `data` is a copy of that database. Initialising one costs seconds of CPU, and only the
 * tests about a new DATA_DIR are about that.
 */
function folderWithDatabase(): string {
  const dir = tempDir();
  cpSync(templateDataDir, join(dir, "data"), { recursive: true });
  return dir;
}

const TOKEN = "7012345678:AAHcliTestTokenForTheFake_0123456789";
const WRONG_TOKEN = "7012345678:AAHwrongTokenTheFakeDoesNotKnow_0123";
const WEBHOOK_SECRET = "cli-webhook-secret";
const key = () => randomBytes(32).toString("base64");

/** A tenant in the environment shorthand: Quickchat and Telegram. */
const telegramTenant = (telegram: Record<string, string>) => ({
  QUICKCHAT_SCENARIO_ID: "sc",
  QUICKCHAT_TOKEN: "qc-token-value",
  TELEGRAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
  ...telegram,
});

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe("bridge CLI", () => {
  let child: ChildProcess | undefined;
  afterEach(async () => {
    // The child ends before its folder goes: it may still be writing its database there.
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    }
    child = undefined;
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Runs `bridge <args>` to its end, in a folder whose `./data` holds a migrated embedded database unless
   * `cwd` is given. Asynchronously: a loopback fake the command calls is served by this process.
   */
  async function bridge(
    args: string[],
    env: Record<string, string> = {},
    cwd = folderWithDatabase(),
  ): Promise<Result> {
    child = spawn(process.execPath, [bridgeBin(), ...args], { env: { ...cleanEnv(), ...env }, cwd });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [status] = (await once(child, "close")) as [number | null];
    return { status, stdout, stderr };
  }

  it("serves /healthz on embedded PGlite with nothing configured but a tenant, and logs it", async () => {
    const dir = tempDir();
    child = spawn(process.execPath, [bridgeBin(), "serve"], {
      env: {
        ...cleanEnv(),
        PORT: "0",
        HOST: "127.0.0.1",
        DATA_DIR: join(dir, "data"),
        QUICKCHAT_SCENARIO_ID: "sc",
        QUICKCHAT_TOKEN: "qc-token-value",
        TELEGRAM_BOT_TOKEN: "123:tg-token-value",
        TELEGRAM_WEBHOOK_SECRET: "tg-secret-value",
      },
      cwd: dir,
    });
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const url = await listeningUrl(child);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(output).toMatch(/"tenant":"default","channels":\["telegram"\]/);
    expect(output).not.toMatch(/qc-token-value|tg-token-value|tg-secret-value/);

    const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });

  it("prints readable lines with LOG_FORMAT=pretty, JSON lines when stdout is not a terminal", async () => {
    const dir = folderWithDatabase();
    const env = { DATA_DIR: join(dir, "data") };
    const pretty = await bridge(["migrate"], { ...env, LOG_FORMAT: "pretty" }, dir);
    expect(pretty.status).toBe(0);
    expect(pretty.stdout).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: migrations applied$/m);
    expect(pretty.stdout).not.toContain("{");
    const json = await bridge(["migrate"], env, dir);
    expect(JSON.parse(json.stdout.trim().split("\n").at(-1)!)).toMatchObject({
      level: "info",
      msg: "migrations applied",
    });
  });

  describe("command line", () => {
    it("names an unknown command and the one meant, instead of taking it for serve's argument", async () => {
      const result = await bridge(["chek-config"]);
      expect(result.stderr).toBe("bridge: unknown command 'chek-config' (did you mean check-config?)\n");
      expect(result.status).toBe(2);
      expect(result.stdout).toBe("");
    });

    it("--version prints package.json's version", async () => {
      const result = await bridge(["--version"]);
      expect(result).toEqual({ status: 0, stdout: `${VERSION}\n`, stderr: "" });
    });
  });

  describe("check-config", () => {
    it("exits 2 naming a wrong key", async () => {
      const dir = tempDir();
      const file = join(dir, "bridge.yaml");
      writeFileSync(
        file,
        "tenants:\n  - id: acme\n    quickchat: { scenario_id: s, token: t }\n    telegarm: {}\n",
      );
      const result = await bridge(["check-config"], { BRIDGE_CONFIG: file });
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/unknown key tenants\.0\.telegarm/);
    });

    it("prints each tenant with where it comes from and every webhook URL, status callbacks included", async () => {
      const dir = tempDir();
      const file = join(dir, "bridge.yaml");
      writeFileSync(
        file,
        [
          "tenants:",
          "  - id: acme",
          "    quickchat: { scenario_id: s, token: t }",
          "    whatsapp:",
          "      account_sid: AC0123456789abcdef0123456789abcdef",
          "      auth_token: 0123456789abcdef0123456789abcdef",
          "      from: whatsapp:+14155238886",
          "    whatsapp_cloud:",
          "      app_secret: meta-app-secret",
          "      access_token: meta-access-token",
          "      verify_token: meta-verify-token",
          '      phone_number_id: "106540352242922"',
          "",
        ].join("\n"),
      );
      const result = await bridge(["check-config"], {
        BRIDGE_CONFIG: file,
        PUBLIC_URL: "https://bridge.example.com/",
        QUICKCHAT_SCENARIO_ID: "sc",
        QUICKCHAT_TOKEN: "t",
        SLACK_SIGNING_SECRET: "8f742231b10e8888abcd99ed4bc985a5",
        SLACK_BOT_TOKEN: "xoxb-1234-5678-abcdef",
      });
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      expect(result.stdout.split("\n")).toEqual([
        "configuration OK: 2 tenants, 0 warnings",
        `tenant acme (from ${file}): whatsapp, whatsapp_cloud`,
        "  whatsapp: https://bridge.example.com/webhooks/acme/whatsapp",
        "  whatsapp delivery reports: https://bridge.example.com/webhooks/acme/whatsapp/status",
        "  whatsapp_cloud: https://bridge.example.com/webhooks/acme/whatsapp_cloud (GET and POST)",
        "tenant default (from the environment): slack",
        "  slack: https://bridge.example.com/webhooks/default/slack",
        "",
      ]);
    });

    it("says so when no tenant is configured", async () => {
      const result = await bridge(["check-config"]);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain("configuration OK: 0 tenants");
      expect(result.stdout).toContain("no tenant is configured");
      expect(result.stdout).toMatch(/warning: ADMIN_TOKEN is not set either/);
    });

    it("refuses a Telegram token, a Twilio account SID and a secret key that cannot be right, naming each", async () => {
      const BAD_TOKEN = "not-a-telegram-token";
      const values = {
        ...telegramTenant({ TELEGRAM_BOT_TOKEN: BAD_TOKEN }),
        TWILIO_ACCOUNT_SID: "XYZ",
        TWILIO_AUTH_TOKEN: "0123456789abcdef0123456789abcdef",
        TWILIO_WHATSAPP_FROM: "whatsapp:+14155238886",
        BRIDGE_SECRET_KEY: randomBytes(16).toString("base64"),
      };
      const result = await bridge(["check-config"], values);
      expect(result.status).toBe(2);
      expect(result.stdout).toBe("");
      const lines = result.stderr.trimEnd().split("\n");
      expect(lines[0]).toBe("bridge: invalid configuration:");
      expect(lines.slice(1).sort()).toEqual([
        "  environment (tenant default): TELEGRAM_BOT_TOKEN: must look like <bot id>:<secret>, the token @BotFather gave (no spaces or line breaks)",
        "  environment (tenant default): TWILIO_ACCOUNT_SID: must be AC followed by 32 hexadecimal characters",
        "  environment: BRIDGE_SECRET_KEY: the key decodes to 16 bytes: each key must be 32 bytes, base64-encoded (openssl rand -base64 32)",
      ]);
      for (const value of [BAD_TOKEN, values.TWILIO_ACCOUNT_SID, values.BRIDGE_SECRET_KEY])
        expect(result.stderr).not.toContain(value);

      // serve refuses the same configuration before it opens anything.
      const served = await bridge(["serve"], { ...values, DATA_DIR: join(tempDir(), "data"), PORT: "0" });
      expect(served.status).toBe(2);
      expect(served.stderr).toBe(result.stderr);
    });

    it("warns about shapes that are probably wrong but not certainly, and about what a platform would not call", async () => {
      const ring = `${key()},${key()}`;
      const result = await bridge(["check-config"], {
        ...telegramTenant({ TELEGRAM_BOT_TOKEN: "123:short" }),
        SLACK_BOT_TOKEN: "oops",
        SLACK_SIGNING_SECRET: "not-hex",
        TWILIO_ACCOUNT_SID: "AC0123456789abcdef0123456789abcdef",
        TWILIO_AUTH_TOKEN: "twilio-auth-token",
        TWILIO_WHATSAPP_FROM: "whatsapp:+14155238886",
        PUBLIC_URL: "http://bridge.example.com:3000",
        BRIDGE_SECRET_KEY: ring,
      });
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      const warnings = result.stdout.split("\n").filter((line) => line.includes("warning:"));
      expect(warnings).toEqual([
        "  warning: TELEGRAM_BOT_TOKEN (telegram.bot_token): @BotFather's tokens have about 35 characters of A-Z, a-z, 0-9, _ and - after the colon",
        "  warning: telegram: Telegram delivers webhooks only to https URLs: PUBLIC_URL is not https",
        "  warning: telegram: Telegram delivers webhooks only to ports 443, 80, 88 and 8443, not 3000 (PUBLIC_URL)",
        "  warning: SLACK_BOT_TOKEN (slack.bot_token): bot tokens start with xoxb- (OAuth & Permissions > Bot User OAuth Token)",
        "  warning: SLACK_SIGNING_SECRET (slack.signing_secret): signing secrets are 32 hexadecimal characters (Basic Information > App Credentials)",
        "  warning: TWILIO_AUTH_TOKEN (whatsapp.auth_token): auth tokens are 32 hexadecimal characters (Console > Account Info)",
      ]);
      expect(result.stdout).toMatch(/^configuration OK: 1 tenant, 6 warnings\n/);
      const [first, second] = ring.split(",").map((k) => keyId(Buffer.from(k, "base64")));
      expect(result.stdout).toContain(
        `BRIDGE_SECRET_KEY: 2 key(s), ids ${first}, ${second}; ${first} encrypts`,
      );
      for (const secret of ["123:short", "oops", "not-hex", "twilio-auth-token", ...ring.split(",")])
        expect(result.stdout).not.toContain(secret);
    });
  });

  describe("telegram set-webhook and webhook-info", () => {
    async function withTelegramFake<T>(test: (apiRoot: string) => Promise<T>): Promise<T> {
      const server = await startFake(createTelegramFake({ [TOKEN]: BOT }).app);
      try {
        return await test(server.url);
      } finally {
        await server.close();
      }
    }

    it("registers the tenant's webhook URL and secret", async () => {
      const fake = createTelegramFake({ [TOKEN]: BOT });
      const server = await startFake(fake.app);
      try {
        const env = {
          ...telegramTenant({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: server.url }),
          PUBLIC_URL: "https://bridge.example.com",
        };
        const result = await bridge(["telegram", "set-webhook", "--tenant", "default"], env);
        expect(result).toEqual({
          status: 0,
          stdout: "webhook set for tenant default: https://bridge.example.com/webhooks/default/telegram\n",
          stderr: "",
        });
        expect(fake.webhookOf(TOKEN)).toMatchObject({
          url: "https://bridge.example.com/webhooks/default/telegram",
          secret_token: WEBHOOK_SECRET,
        });
      } finally {
        await server.close();
      }
    });

    it("a token Telegram rejects is one line naming the tenant, the URL and the 401, without the token", async () => {
      await withTelegramFake(async (apiRoot) => {
        const env = {
          ...telegramTenant({ TELEGRAM_BOT_TOKEN: WRONG_TOKEN, TELEGRAM_API_ROOT: apiRoot }),
          PUBLIC_URL: "https://bridge.example.com",
        };
        const result = await bridge(["telegram", "set-webhook", "--tenant", "default"], env);
        expect(result.status).toBe(1);
        expect(result.stdout).toBe("");
        expect(result.stderr).toBe(
          `bridge: tenant default: Telegram setWebhook at ${apiRoot}/bot<token>/setWebhook answered 401 ` +
            "Unauthorized (the bot token was rejected: check bot_token)\n",
        );

        // At debug level the stack frames follow, still without the token.
        const debug = await bridge(["telegram", "webhook-info", "--tenant", "default"], {
          ...env,
          LOG_LEVEL: "debug",
        });
        expect(debug.status).toBe(1);
        const [line, ...frames] = debug.stderr.trimEnd().split("\n");
        expect(line).toBe(
          `bridge: tenant default: Telegram getWebhookInfo at ${apiRoot}/bot<token>/getWebhookInfo answered ` +
            "401 Unauthorized (the bot token was rejected: check bot_token)",
        );
        expect(frames.filter((frame) => frame.startsWith("    at ")).length).toBeGreaterThan(3);
        expect(frames.join("\n")).toContain("caused by GrammyError");
        for (const output of [result, debug]) expect(output.stderr).not.toContain(WRONG_TOKEN.split(":")[1]);
      });
    });

    it("an API root that refuses connections is one line saying so, without the token", async () => {
      const server = await startFake(createTelegramFake().app);
      await server.refuseConnections();
      const env = {
        ...telegramTenant({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: server.url }),
        PUBLIC_URL: "https://bridge.example.com",
      };
      for (const command of ["set-webhook", "webhook-info"]) {
        const result = await bridge(["telegram", command, "--tenant", "default"], env);
        const method = command === "set-webhook" ? "setWebhook" : "getWebhookInfo";
        expect(result.status).toBe(1);
        expect(result.stderr).toBe(
          `bridge: tenant default: Telegram ${method} at ${server.url}/bot<token>/${method}: ` +
            "connection refused (ECONNREFUSED)\n",
        );
      }
      await server.close();
    });

    it("an unknown tenant is a configuration error naming the tenants there are", async () => {
      const result = await bridge(
        ["telegram", "webhook-info", "--tenant", "acme"],
        telegramTenant({ TELEGRAM_BOT_TOKEN: TOKEN }),
      );
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(
        /^bridge: tenant acme is not in the configuration \(its tenants: default\)/,
      );
    });
  });

  describe("rotate-key", () => {
    it("names the rolling procedure when given the old single-shot NEW_BRIDGE_SECRET_KEY", async () => {
      const result = await bridge(["rotate-key"], {
        DATA_DIR: join(tempDir(), "data"),
        BRIDGE_SECRET_KEY: key(),
        NEW_BRIDGE_SECRET_KEY: key(),
      });
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/BRIDGE_SECRET_KEY=<new>,<old>/);
    });

    it("with a key ring that opens no stored tenant: one line naming the tenant and the keys, nothing changed", async () => {
      const dataDir = join(folderWithDatabase(), "data");
      const [sealedWith, wrong] = [randomBytes(32), randomBytes(32)];
      const storedRows = async () => {
        const database = await openDatabase({ dataDir });
        try {
          return await database.db.select().from(tenants);
        } finally {
          await database.close();
        }
      };
      const database = await openDatabase({ dataDir });
      try {
        await migrate(database);
        const store = new TenantStore({
          database,
          staticTenants: [],
          box: new SecretBox(sealedWith),
          log: createLogger("silent"),
        });
        await store.create(
          tenantSchema.parse({ id: "acme", quickchat: { scenario_id: "sc", token: "qc-token-0123456789" } }),
        );
      } finally {
        await database.close();
      }
      const before = await storedRows();

      const result = await bridge(["rotate-key"], {
        DATA_DIR: dataDir,
        BRIDGE_SECRET_KEY: wrong.toString("base64"),
      });
      expect(result.status).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toBe(
        `bridge: tenant acme cannot be read with BRIDGE_SECRET_KEY (key ids ${keyId(wrong)}): sealed with key ` +
          `${keyId(sealedWith)}, which is not among this process's keys. Nothing was re-encrypted: the ring ` +
          "must also hold the key that sealed it (BRIDGE_SECRET_KEY=<new>,<old>)\n",
      );
      expect(await storedRows()).toEqual(before);
    }, 120_000);
  });
});
