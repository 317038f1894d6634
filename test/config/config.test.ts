import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { slack } from "../../src/channels/slack/index.js";
import { telegram } from "../../src/channels/telegram/index.js";
import { whatsapp } from "../../src/channels/whatsapp/index.js";
import { loadConfig } from "../../src/config/index.js";
import { ConfigError } from "../../src/errors.js";

function configFile(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "qb-config-")), "bridge.yaml");
  onTestFinished(() => rmSync(dirname(path), { recursive: true, force: true }));
  writeFileSync(path, content);
  return path;
}

const tenantYaml = `
tenants:
  - id: acme
    quickchat:
      scenario_id: "abc123"
      token: \${ACME_TOKEN}
    telegram:
      bot_token: "123:abc"
      webhook_secret: s3cret
`;

describe("configuration", () => {
  it("reads a YAML file with $-brace variable interpolation and applies defaults", () => {
    const config = loadConfig({
      BRIDGE_CONFIG: configFile(tenantYaml),
      ACME_TOKEN: "tok: with # yaml chars",
    });
    const [tenant] = config.tenants;
    expect(tenant?.quickchat.token).toBe("tok: with # yaml chars");
    expect(tenant?.telegram?.api_root).toBe("https://api.telegram.org");
    expect(tenant?.texts.reset).toBe("Okay, let's start over.");
    expect(config.settings.PORT).toBe(3000);
    expect(config.settings.WORKER_CONCURRENCY).toBeGreaterThanOrEqual(256);
  });

  it("names a missing variable and the key that uses it", () => {
    expect(() => loadConfig({ BRIDGE_CONFIG: configFile(tenantYaml) })).toThrow(
      /tenants\.0\.quickchat\.token: environment variable ACME_TOKEN is not set/,
    );
  });

  it("rejects unknown keys, naming their path", () => {
    const path = configFile(tenantYaml.replace("bot_token:", "bot_tokn:"));
    expect(() => loadConfig({ BRIDGE_CONFIG: path, ACME_TOKEN: "x" })).toThrow(
      /unknown key tenants\.0\.telegram\.bot_tokn/,
    );
  });

  it("rejects bad values with their path", () => {
    const path = configFile(tenantYaml.replace("id: acme", "id: Acme Corp"));
    expect(() => loadConfig({ BRIDGE_CONFIG: path, ACME_TOKEN: "x" })).toThrow(/tenants\.0\.id: must match/);
  });

  it("builds the default tenant from the environment shorthand", () => {
    const config = loadConfig({
      QUICKCHAT_SCENARIO_ID: "sc",
      QUICKCHAT_TOKEN: "tok",
      SLACK_SIGNING_SECRET: "sign",
      SLACK_BOT_TOKEN: "xoxb-1",
    });
    expect(config.tenants).toHaveLength(1);
    expect(config.tenants[0]).toMatchObject({ id: "default", slack: { bot_token: "xoxb-1" } });
    expect(config.tenants[0]?.telegram).toBeUndefined();
  });

  it("names the environment variable a shorthand tenant is missing", () => {
    expect(() =>
      loadConfig({ QUICKCHAT_SCENARIO_ID: "sc", QUICKCHAT_TOKEN: "tok", TELEGRAM_BOT_TOKEN: "1:a" }),
    ).toThrow(/TELEGRAM_WEBHOOK_SECRET/);
  });

  it("refuses duplicate tenant ids across the file and the environment", () => {
    const path = configFile(tenantYaml.replace("id: acme", "id: default"));
    expect(() =>
      loadConfig({ BRIDGE_CONFIG: path, ACME_TOKEN: "x", QUICKCHAT_SCENARIO_ID: "sc", QUICKCHAT_TOKEN: "t" }),
    ).toThrow(/"default" is defined more than once/);
  });

  it("rejects bad environment settings naming the variable", () => {
    expect(() => loadConfig({ PORT: "eighty" })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: "eighty" })).toThrow(/PORT/);
  });

  it("presumes a silent process dead after TAKEOVER_SECONDS: 5 by default, at least 1", () => {
    expect(loadConfig({}).settings.TAKEOVER_SECONDS).toBe(5);
    expect(loadConfig({ TAKEOVER_SECONDS: "8" }).settings.TAKEOVER_SECONDS).toBe(8);
    expect(() => loadConfig({ TAKEOVER_SECONDS: "0" })).toThrow(/TAKEOVER_SECONDS/);
    expect(() => loadConfig({ TAKEOVER_SECONDS: "soon" })).toThrow(/TAKEOVER_SECONDS/);
  });

  it("requires exactly one Quickchat credential", () => {
    const path = configFile(tenantYaml.replace(/token: \$\{ACME_TOKEN\}/, "token: a\n      api_key: b"));
    expect(() => loadConfig({ BRIDGE_CONFIG: path })).toThrow(/exactly one of token/);
  });
});

describe("credential shapes", () => {
  const telegramBlock = (bot_token: string) => telegram.schema.safeParse({ bot_token, webhook_secret: "s" });
  const twilioBlock = (account_sid: string) =>
    whatsapp.schema.safeParse({
      account_sid,
      auth_token: "0123456789abcdef0123456789abcdef",
      from: "whatsapp:+1",
    });

  it("accepts the shapes the platforms document, without a warning", () => {
    // Telegram's docs (core.telegram.org/bots/api#authorizing-your-bot and the BotFather walkthrough).
    for (const token of [
      "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
      "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    ]) {
      const parsed = telegramBlock(token);
      expect(parsed.success, token).toBe(true);
      expect(
        telegram.warnings!(parsed.data!, new URL("https://bridge.example.com:8443/webhooks/a/telegram")),
      ).toEqual([]);
    }
    // A plain bot token and one of an app that rotates its tokens.
    for (const bot_token of ["xoxb-0000000000-0000000000-FakeTokenForTests000", "xoxe.xoxb-1-MS0yLTQyNjc3"]) {
      const block = slack.schema.parse({ bot_token, signing_secret: "8f742231b10e8888abcd99ed4bc985a5" });
      expect(slack.warnings!(block, undefined), bot_token).toEqual([]);
    }
    for (const sid of ["AC0123456789abcdef0123456789abcdef", "ACDEADBEEF0123456789DEADBEEF012345"]) {
      const parsed = twilioBlock(sid);
      expect(parsed.success, sid).toBe(true);
      expect(whatsapp.warnings!(parsed.data!, undefined)).toEqual([]);
    }
  });

  it("refuses what the Bot API server refuses, and Twilio SIDs of another shape", () => {
    for (const token of [
      "not-a-telegram-token",
      "0123:abc",
      "123:",
      "123:a/b",
      "123:abc\n",
      `1:${"a".repeat(79)}`,
    ])
      expect(telegramBlock(token).success, JSON.stringify(token)).toBe(false);
    for (const sid of [
      "XYZ",
      "SK0123456789abcdef0123456789abcdef",
      "AC0123456789abcdef0123456789abcde",
      "ACfuzz",
    ])
      expect(twilioBlock(sid).success, sid).toBe(false);
  });

  it("refuses a BRIDGE_SECRET_KEY ring with a key that is not 32 bytes, naming which", () => {
    const good = Buffer.alloc(32, 7);
    // Node decodes both base64 alphabets; the URL-safe one is accepted as the service reads it.
    expect(
      loadConfig({ BRIDGE_SECRET_KEY: `${good.toString("base64url")},${good.toString("base64")}` }).settings
        .BRIDGE_SECRET_KEY,
    ).toBeDefined();
    expect(() => loadConfig({ BRIDGE_SECRET_KEY: `${good.toString("base64")},c2hvcnQ=` })).toThrow(
      /BRIDGE_SECRET_KEY: key 2 of 2 decodes to 5 bytes/,
    );
    expect(() => loadConfig({ BRIDGE_SECRET_KEY: " , " })).toThrow(/BRIDGE_SECRET_KEY: holds no key/);
  });
});
