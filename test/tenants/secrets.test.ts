import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { tenantSchema } from "../../src/config/schema.js";
import { type Database, openDatabase } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { tenants } from "../../src/db/schema.js";
import { createLogger } from "../../src/log.js";
import { keepUnchangedSecrets, maskTenant } from "../../src/tenants/fields.js";
import { SecretBox } from "../../src/tenants/secrets.js";
import { rotateKey, TenantStore } from "../../src/tenants/store.js";

const tenant = tenantSchema.parse({
  id: "acme",
  quickchat: { scenario_id: "sc", token: "quickchat-token-0123456789" },
  telegram: { bot_token: "123:telegram-bot-token-xyz", webhook_secret: "telegram_webhook_secret_42" },
});

describe("SecretBox", () => {
  const box = new SecretBox(randomBytes(32));

  it("round-trips and uses a fresh nonce per value", () => {
    const a = box.seal("acme", "s3cret");
    expect(box.open("acme", a)).toBe("s3cret");
    expect(box.seal("acme", "s3cret")).not.toBe(a);
    expect(a).not.toContain("s3cret");
  });

  it("refuses a ciphertext moved to another tenant, another key, or tampered with", () => {
    const sealed = box.seal("acme", "s3cret");
    expect(() => box.open("other", sealed)).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open("acme", sealed)).toThrow();
    const [v, n, body, tag] = sealed.split(".");
    const flipped = Buffer.from(body!, "base64");
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(() => box.open("acme", [v, n, flipped.toString("base64"), tag].join("."))).toThrow();
  });
});

describe("secret fields", () => {
  it("masks every secret and keeps stored secrets when a client sends them back masked or omits them", () => {
    const shown = maskTenant(tenant) as typeof tenant;
    expect(JSON.stringify(shown)).not.toMatch(/quickchat-token|telegram-bot-token|telegram_webhook_secret/);
    expect(shown.quickchat.token).toBe("****6789");
    const { bot_token: _omitted, ...telegram } = shown.telegram!;
    const merged = keepUnchangedSecrets({ ...shown, telegram }, tenant);
    expect(tenantSchema.parse(merged)).toEqual(tenant);
  });

  it("lets a client switch from a Bearer token to a legacy api_key", () => {
    const input = { ...tenant, quickchat: { scenario_id: "sc", api_key: "legacy-key" } };
    const merged = tenantSchema.parse(keepUnchangedSecrets(input, tenant));
    expect(merged.quickchat).toEqual({ scenario_id: "sc", api_key: "legacy-key" });
  });

  it("handles an arbitrarily deep PUT body without overflowing the stack, and leaves the input alone", () => {
    // Found by the fault suite's bad-input run: a deep clone of the request body answered 500.
    const deep = JSON.parse(`${"[".repeat(100_000)}${"]".repeat(100_000)}`);
    const input = { texts: deep, quickchat: { scenario_id: "sc" }, telegram: [] };
    const merged = keepUnchangedSecrets(input, tenant) as Record<string, Record<string, unknown>>;
    expect(merged.texts).toBe(deep);
    expect(merged.quickchat).toEqual({ scenario_id: "sc", token: tenant.quickchat.token });
    expect(input.quickchat).toEqual({ scenario_id: "sc" });
    expect(merged.telegram).toEqual([]);
  });
});

describe("key rotation", () => {
  let database: Database | undefined;
  afterEach(async () => database?.close());

  it("re-encrypts every tenant so only the new key reads them", async () => {
    database = await openDatabase({ dataDir: "memory://" });
    await migrate(database);
    const log = createLogger("silent");
    const [oldKey, newKey] = [new SecretBox(randomBytes(32)), new SecretBox(randomBytes(32))];
    const store = new TenantStore({ database, staticTenants: [], box: oldKey, log });
    await store.create(tenant);
    const [raw] = await database.db.select().from(tenants);
    expect(JSON.stringify(raw)).not.toMatch(/quickchat-token|telegram-bot-token|telegram_webhook_secret/);

    expect(await rotateKey(database.db, oldKey, newKey)).toBe(1);
    expect(await new TenantStore({ database, staticTenants: [], box: newKey, log }).get("acme")).toEqual(
      tenant,
    );
    expect(
      await new TenantStore({ database, staticTenants: [], box: oldKey, log }).get("acme"),
    ).toBeUndefined();
  });
});
