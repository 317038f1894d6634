/**
 * The logger's safety net: a secret logged by mistake (a tenant's block, a request's headers) is written as
 * "[redacted]", at the top of a log object and one and two levels down. The names are written here from each
 * channel's config, not read from the descriptors, so a secret dropped from a descriptor fails; the last test
 * makes a new channel or secret be added here.
 */
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

/** Where a secret may sit: the last name is the secret's key, the ones before it any other keys. */
const PLACES = SECRET_KEYS.flatMap((key) => [[key], ["config", key], ["tenant", "config", key]]).concat(
  Object.values(SECRET_HEADERS).map((header) => ["req", "headers", header]),
);

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
