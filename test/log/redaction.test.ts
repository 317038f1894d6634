/**
 * The logger's safety net: a secret logged by mistake (a tenant's block, settings, a request's headers, an
 * SDK's error with its request config) is written as "[redacted]", at any depth, whatever the name's case or
 * separators. The names are written here from each channel's config, not read from the descriptors, so a
 * secret dropped from a descriptor fails; a test makes a new channel or secret be added here.
 */
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { descriptors } from "../../src/channels/registry.js";
import { createLogger } from "../../src/log.js";

/** Each channel's secret fields, from its tenant block (src/channels/<name>/config.ts). */
const CHANNEL_SECRETS: Record<string, string[]> = {
  telegram: ["bot_token", "webhook_secret"],
  slack: ["signing_secret", "bot_token"],
  whatsapp: ["auth_token"],
  whatsapp_cloud: ["app_secret", "access_token", "verify_token"],
};

/** Keys that are secrets wherever they appear: Quickchat's token and api_key, and the usual suspects. */
const GENERIC_SECRETS = ["token", "api_key", "authorization", "password"];

/** The headers the platforms sign or authenticate their webhooks with, as Node names them (lower case). */
const SECRET_HEADERS: Record<string, string> = {
  telegram: "x-telegram-bot-api-secret-token",
  slack: "x-slack-signature",
  whatsapp: "x-twilio-signature",
  whatsapp_cloud: "x-hub-signature-256",
};

const SECRET_KEYS = [...new Set([...GENERIC_SECRETS, ...Object.values(CHANNEL_SECRETS).flat()])];

/** A log object with `value` at `path`. */
const nested = (path: string[], value: string): object =>
  path.slice(0, -1).reduceRight<object>((inner, key) => ({ [key]: inner }), { [path.at(-1)!]: value });

/** How else code names the same secrets: camelCase, environment variables, headers as they are written. */
const OTHER_SPELLINGS = [
  "botToken",
  "signingSecret",
  "accessToken",
  "QUICKCHAT_TOKEN",
  "ADMIN_TOKEN",
  "TWILIO_AUTH_TOKEN",
  "BRIDGE_SECRET_KEY",
  "DATABASE_URL",
  "Authorization",
  "Proxy-Authorization",
  "Cookie",
  "Set-Cookie",
  "X-Telegram-Bot-Api-Secret-Token",
  "X-Slack-Signature",
  "X-Twilio-Signature",
  "X-Hub-Signature-256",
];

/** Where a secret may sit: the last name is the secret's key, the ones before it any other keys. */
const PLACES = [
  ...SECRET_KEYS.flatMap((key) => [[key], ["config", key], ["tenant", "config", key]]),
  ...Object.values(SECRET_HEADERS).map((header) => ["req", "headers", header]),
  ...OTHER_SPELLINGS.map((name) => ["error", "config", "headers", name]),
  ["a", "b", "c", "d", "e", "f", "bot_token"],
];

function createLines() {
  const lines: string[] = [];
  return { lines, log: createLogger("info", { write: (line: string) => void lines.push(line) }) };
}

function logged(path: string[], secret: string): string {
  const lines: string[] = [];
  const log = createLogger("info", { write: (line: string) => void lines.push(line) });
  log.info(nested(path, secret), "a line with a secret in it");
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe("log redaction", () => {
  it.each(PLACES.map((path) => [path.join("."), path] as const))("redacts %s", (_, path) => {
    const secret = `s3cret-${path.join("-")}-value`;
    const line = logged(path, secret);
    expect(line).not.toContain(secret);
    const entry = JSON.parse(line) as Record<string, unknown>;
    const value = path.reduce<unknown>((object, key) => (object as Record<string, unknown>)?.[key], entry);
    expect(value).toBe("[redacted]");
  });

  it("keeps the values that are not secrets", () => {
    const line = logged(["tenant", "telegram", "api_root"], "https://api.telegram.org");
    expect(line).toContain("https://api.telegram.org");
    for (const name of ["token_count", "secretKeyId", "signatureValid", "tenant", "thread", "status"])
      expect(JSON.parse(logged([name], "kept"))[name]).toBe("kept");
    // A flag or a count under a secret's name says whether there is one, not what it is.
    const flags = createLines();
    flags.log.info({ has_token: true, tokens: 2, signature: false }, "flags");
    expect(JSON.parse(flags.lines[0]!)).toMatchObject({ has_token: true, tokens: 2, signature: false });
  });

  it("takes a plural for the name it ends in: a list of tokens is redacted whole", () => {
    const { log, lines } = createLines();
    log.info({ bot_tokens: ["123:s3cret-a", "456:s3cret-b"], cookies: { session: "s3cret-c" } }, "plural");
    expect(lines[0]).not.toContain("s3cret");
    expect(JSON.parse(lines[0]!)).toMatchObject({ bot_tokens: "[redacted]", cookies: "[redacted]" });
  });

  it("writes a secret's name with no value (null, undefined) as it is: nothing was set", () => {
    const lines: string[] = [];
    createLogger("info", { write: (line: string) => void lines.push(line) }).info(
      { slack: { bot_token: null, signing_secret: undefined } },
      "unset",
    );
    expect(JSON.parse(lines[0]!).slack).toEqual({ bot_token: null });
  });

  it("redacts in arrays and in a child logger's bindings, and leaves the logged object as it was", () => {
    const lines: string[] = [];
    const log = createLogger("info", { write: (line: string) => void lines.push(line) });
    const tenants = [{ id: "acme", telegram: { bot_token: "123:s3cret-in-array" } }];
    log
      .child({ tenant: { id: "acme", quickchat: { token: "s3cret-in-binding" } } })
      .info({ tenants }, "loaded");
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/s3cret/);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      tenant: { id: "acme", quickchat: { token: "[redacted]" } },
      tenants: [{ id: "acme", telegram: { bot_token: "[redacted]" } }],
    });
    expect(tenants[0]!.telegram.bot_token).toBe("123:s3cret-in-array");
  });

  it("writes an error anywhere in the object as its message, not its fields (an SDK's request config)", () => {
    const failure = Object.assign(new Error("Request failed with status code 401"), {
      config: { url: "https://api.example.test", data: "s3cret-in-error-body" },
    });
    const line = logged(["outcome", "cause"], failure as unknown as string);
    expect(line).not.toContain("s3cret");
    expect(JSON.parse(line).outcome.cause).toBe("Request failed with status code 401");
  });

  it("writes what is deeper than eight levels as [too deep]", () => {
    const line = logged(["a", "b", "c", "d", "e", "f", "g", "h", "note"], "s3cret-too-deep");
    expect(line).not.toContain("s3cret");
    expect(JSON.parse(line).a.b.c.d.e.f.g.h).toBe("[too deep]");
  });

  it("redacts an object met twice both times, and shows one inside itself as [circular]", () => {
    const config = { id: "acme", token: "s3cret-shared" };
    const loop: Record<string, unknown> = { name: "loop", config };
    loop.self = loop;
    const line = logged(["outcome"], { first: config, second: config, loop } as unknown as string);
    expect(line).not.toContain("s3cret");
    const { outcome } = JSON.parse(line);
    expect(outcome.first).toEqual({ id: "acme", token: "[redacted]" });
    expect(outcome.second).toEqual(outcome.first);
    expect(outcome.loop).toEqual({ name: "loop", config: outcome.first, self: "[circular]" });
  });

  it("looks at an object with toJSON as JSON.stringify writes it: what toJSON gives is shown, redacted", () => {
    class Amount {
      readonly cents = 1250;
      toJSON() {
        return "12.50 EUR";
      }
    }
    class Settings {
      toJSON() {
        return { region: "eu", apiKey: "s3cret-in-toJSON" };
      }
    }
    const line = logged(["order"], { total: new Amount(), settings: new Settings() } as unknown as string);
    expect(line).not.toContain("s3cret");
    expect(JSON.parse(line).order).toEqual({
      total: "12.50 EUR",
      settings: { region: "eu", apiKey: "[redacted]" },
    });
  });

  it("a getter that throws costs the line its object, never the caller an exception", () => {
    const { log, lines } = createLines();
    const hostile = {
      id: 7,
      get token(): string {
        throw new Error("no");
      },
    };
    expect(() => log.info({ hostile }, "odd object")).not.toThrow();
    expect(JSON.parse(lines[0]!)).toMatchObject({
      msg: "odd object",
      log_error: "the logged object could not be read",
    });
  });

  it("reads each value once: a getter runs once", () => {
    let reads = 0;
    const counted = {
      get note() {
        reads++;
        return "hello";
      },
    };
    expect(JSON.parse(logged(["outcome"], counted as unknown as string)).outcome).toEqual({ note: "hello" });
    expect(reads).toBe(1);
  });

  it("writes a buffer as JSON.stringify does", () => {
    const body = Buffer.from("hi");
    expect(JSON.parse(logged(["request", "body"], body as unknown as string)).request.body).toEqual({
      type: "Buffer",
      data: [104, 105],
    });
  });

  it("redacts printf-style arguments too", () => {
    const { log, lines } = createLines();
    log.info("loaded %j", { tenant: "acme", token: "s3cret-printf" });
    expect(lines[0]).not.toContain("s3cret");
    expect(JSON.parse(lines[0]!).msg).toBe('loaded {"tenant":"acme","token":"[redacted]"}');
  });

  it("writes an error logged on its own as its safe message, in err and as the line's message", () => {
    const { log, lines } = createLines();
    const failed = Object.assign(new Error('invalid input syntax for type integer: "s3cret-value"'), {
      code: "22P02",
      severity: "ERROR",
    });
    log.error(failed);
    log.error(failed, "storing failed");
    expect(lines.join("")).not.toContain("s3cret");
    expect(lines.map((line) => JSON.parse(line))).toMatchObject([
      {
        err: 'invalid input syntax for type integer: "…"',
        msg: 'invalid input syntax for type integer: "…"',
      },
      { err: 'invalid input syntax for type integer: "…"', msg: "storing failed" },
    ]);
  });

  it("writes an error from another realm, or an error-like object under err, as its message alone", () => {
    const { log, lines } = createLines();
    const foreign = runInNewContext(
      'Object.assign(new Error("refused"), { config: { data: "s3cret-body" } })',
    );
    log.warn({ cause: foreign }, "foreign");
    log.warn({ err: { message: "Failed query", detail: "Failing row contains (s3cret-row)" } }, "error-like");
    expect(lines.join("")).not.toContain("s3cret");
    expect(JSON.parse(lines[0]!).cause).toBe("refused");
  });

  it("a child's own formatters or bindings set later do not get past the net", () => {
    const { log, lines } = createLines();
    const child = log.child({ channel: "slack" }, { formatters: { log: (object) => object } });
    child.setBindings({ workspace: { bot_token: "xoxb-s3cret-later" } });
    child.info({ token: "s3cret-formatter" }, "child");
    expect(lines[0]).not.toContain("s3cret");
    expect(JSON.parse(lines[0]!)).toMatchObject({
      workspace: { bot_token: "[redacted]" },
      token: "[redacted]",
    });
  });

  it("redacts the bindings of a child logger, and of its children", () => {
    const lines: string[] = [];
    const log = createLogger("info", { write: (line: string) => void lines.push(line) });
    log
      .child({ channel: "slack" })
      .child({ workspace: { bot_token: "xoxb-s3cret" } })
      .info("ready");
    expect(lines[0]).not.toContain("s3cret");
    expect(JSON.parse(lines[0]!)).toMatchObject({ channel: "slack", workspace: { bot_token: "[redacted]" } });
  });

  it("knows every channel's secrets and secret headers", () => {
    const declared = (pick: (d: (typeof descriptors)[number]) => readonly string[]) =>
      Object.fromEntries(descriptors.map((d) => [d.name, [...pick(d)].sort()]));
    const sorted = (record: Record<string, string[]>) =>
      Object.fromEntries(Object.entries(record).map(([name, keys]) => [name, [...keys].sort()]));
    expect(sorted(CHANNEL_SECRETS)).toEqual(declared((d) => d.secrets));
    expect(Object.fromEntries(Object.entries(SECRET_HEADERS).map(([name, h]) => [name, [h]]))).toEqual(
      declared((d) => d.secretHeaders),
    );
  });
});
