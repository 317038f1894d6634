import { createCipheriv, randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { type TenantConfig, tenantSchema } from "../../src/config/schema.js";
import { type Database, openDatabase } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { tenants } from "../../src/db/schema.js";
import { HttpError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { keepUnchangedSecrets, maskTenant, splitSecrets } from "../../src/tenants/fields.js";
import { TenantUnreadableError } from "../../src/tenants/registry.js";
import { keyId, parseKeyRing, SecretBox } from "../../src/tenants/secrets.js";
import { rotateKey, TenantStore } from "../../src/tenants/store.js";

const tenant = tenantSchema.parse({
  id: "acme",
  quickchat: { scenario_id: "sc", token: "quickchat-token-0123456789" },
  telegram: { bot_token: "123:telegram-bot-token-xyz", webhook_secret: "telegram_webhook_secret_42" },
});

/** A value in the first stored format (`v1.<nonce>.<ciphertext>.<tag>`, AAD = tenant id), as deployed
 * databases hold them; `tagBytes` shortens the tag the way a forger would. */
function sealV1(key: Buffer, tenantId: string, plaintext: string, tagBytes = 16): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(tenantId, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  const tag = cipher.getAuthTag().subarray(0, tagBytes);
  return ["v1", nonce.toString("base64"), body.toString("base64"), tag.toString("base64")].join(".");
}

describe("SecretBox", () => {
  const box = new SecretBox(randomBytes(32));

  it("round-trips and uses a fresh nonce per value", () => {
    const a = box.seal("acme", "s3cret");
    expect(box.open("acme", a)).toBe("s3cret");
    expect(box.seal("acme", "s3cret")).not.toBe(a);
    expect(a).not.toContain("s3cret");
  });

  it("refuses a ciphertext moved to other associated data, another key, or tampered with", () => {
    const sealed = box.seal("acme", "s3cret");
    expect(() => box.open("other", sealed)).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open("acme", sealed)).toThrow();
    const [v, kid, n, body, tag] = sealed.split(".");
    const flipped = Buffer.from(body!, "base64");
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(() => box.open("acme", [v, kid, n, flipped.toString("base64"), tag].join("."))).toThrow();
  });

  it("names its key in every ciphertext; a ring opens any of its keys' values and seals with the first", () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    const old = new SecretBox(k1);
    const reading = new SecretBox([k1, k2]);
    const writing = new SecretBox([k2, k1]);
    const byOld = old.seal("acme", "one");
    expect(byOld.startsWith(`v2.${keyId(k1)}.`)).toBe(true);
    const byNew = writing.seal("acme", "two");
    expect(byNew.startsWith(`v2.${keyId(k2)}.`)).toBe(true);
    expect(reading.open("acme", byNew)).toBe("two");
    expect(writing.open("acme", byOld)).toBe("one");
    expect(reading.seal("acme", "x").startsWith(`v2.${keyId(k1)}.`)).toBe(true);
    expect(() => old.open("acme", byNew)).toThrow(/not among this process's keys/);
    expect(keyId(k1)).toMatch(/^[A-Za-z0-9_-]{8}$/);
  });

  it("reads the first format (v1) with any key of its ring", () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    const legacy = sealV1(k1, "acme", "s3cret");
    expect(new SecretBox([k2, k1]).open("acme", legacy)).toBe("s3cret");
    expect(() => new SecretBox(k2).open("acme", legacy)).toThrow();
    expect(() => new SecretBox(k1).open("other", legacy)).toThrow();
  });

  // GCM accepts tags of 4 to 16 bytes unless told the length: a 4-byte tag could be forged in 2^32 tries.
  it("refuses a truncated GCM tag, in either format", () => {
    const key = randomBytes(32);
    const box = new SecretBox(key);
    for (const bytes of [4, 8, 12, 15]) {
      expect(() => box.open("acme", sealV1(key, "acme", "s3cret", bytes)), `v1, ${bytes} bytes`).toThrow();
      const [v, kid, n, body, tag] = box.seal("acme", "s3cret").split(".");
      const short = Buffer.from(tag!, "base64").subarray(0, bytes).toString("base64");
      expect(() => box.open("acme", [v, kid, n, body, short].join(".")), `v2, ${bytes} bytes`).toThrow();
    }
  });

  it("BRIDGE_SECRET_KEY takes a comma-separated ring, each key 32 bytes", () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    expect(parseKeyRing(`${k1.toString("base64")}, ${k2.toString("base64")}`)).toEqual([k1, k2]);
    expect(() => parseKeyRing(`${k1.toString("base64")},c2hvcnQ=`)).toThrow(/32 bytes/);
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

  describe("a changed destination needs the block's secrets again", () => {
    const custom = tenantSchema.parse({
      ...tenant,
      quickchat: { ...tenant.quickchat, base_url: "https://qc.example.com" },
    });
    const refused = (input: unknown, stored: TenantConfig) => {
      try {
        keepUnchangedSecrets(input, stored);
      } catch (err) {
        expect(err).toBeInstanceOf(HttpError);
        expect(err).toMatchObject({ status: 422, code: "SECRET_REQUIRED" });
        return (err as HttpError).details?.map((d) => d.path);
      }
      return expect.fail("accepted");
    };
    const shown = maskTenant(tenant) as typeof tenant;

    it.each([
      [
        "quickchat.base_url",
        { quickchat: { ...shown.quickchat, base_url: "https://evil.example" } },
        ["quickchat.token"],
      ],
      [
        "telegram.api_root",
        { telegram: { ...shown.telegram, api_root: "https://evil.example" } },
        ["telegram.bot_token", "telegram.webhook_secret"],
      ],
      [
        "telegram.api_root, secrets omitted",
        { telegram: { api_root: "https://evil.example" } },
        ["telegram.bot_token", "telegram.webhook_secret"],
      ],
    ])("%s", (_name, change, paths) => {
      expect(refused({ ...shown, ...change }, tenant)).toEqual(paths);
    });

    it("omitting a custom base_url is a change too (its default is another host)", () => {
      const { base_url: _dropped, ...quickchat } = maskTenant(custom).quickchat as Record<string, unknown>;
      expect(refused({ ...maskTenant(custom), quickchat }, custom)).toEqual(["quickchat.token"]);
      // Sending the default explicitly where it was implied is no change.
      const explicit = { ...shown, telegram: { ...shown.telegram, api_root: "https://api.telegram.org/" } };
      expect(tenantSchema.parse(keepUnchangedSecrets(explicit, tenant)).telegram?.bot_token).toBe(
        tenant.telegram?.bot_token,
      );
    });

    it("is accepted with the block's secrets in the request; other blocks keep theirs", () => {
      const input = {
        ...shown,
        telegram: {
          bot_token: "123:another-bot-token",
          webhook_secret: "another_secret",
          api_root: "https://tg.example.com",
        },
      };
      const merged = tenantSchema.parse(keepUnchangedSecrets(input, tenant));
      expect(merged.telegram).toEqual(input.telegram);
      expect(merged.quickchat.token).toBe(tenant.quickchat.token);
    });
  });

  it("with nothing stored (a new tenant, one this process cannot decrypt), masked values are refused", () => {
    try {
      keepUnchangedSecrets(maskTenant(tenant), undefined);
      expect.fail("accepted");
    } catch (err) {
      expect(err).toMatchObject({ status: 422, code: "SECRET_REQUIRED" });
      expect((err as HttpError).details?.map((d) => d.path).sort()).toEqual(
        ["quickchat.token", "telegram.bot_token", "telegram.webhook_secret"].sort(),
      );
    }
    expect(keepUnchangedSecrets(tenant, undefined)).toEqual(tenant);
  });
});

describe("tenant rows", () => {
  let database: Database | undefined;
  afterEach(async () => {
    await database?.close();
    database = undefined;
  });
  const log = createLogger("silent");

  async function storeWith(box: SecretBox) {
    database ??= await openDatabase({ dataDir: "memory://" });
    await migrate(database);
    return new TenantStore({ database, staticTenants: [], box, log });
  }

  it("seal each block for its tenant, block and destination: a row edited in the database does not open", async () => {
    const box = new SecretBox(randomBytes(32));
    const store = await storeWith(box);
    await store.create(tenant);
    const fresh = () => new TenantStore({ database: database!, staticTenants: [], box, log }).get("acme");
    expect(await fresh()).toEqual(tenant);
    const [raw] = await database!.db.select().from(tenants);
    const sealed = JSON.parse(raw!.secretsEncrypted!) as Record<string, string>;
    expect(Object.keys(sealed).sort()).toEqual(["quickchat", "telegram"]);
    for (const value of Object.values(sealed)) expect(value).toMatch(/^v2\.[A-Za-z0-9_-]{8}\./);

    // The Bot API root pointed elsewhere, in the database only.
    const settings = raw!.settings as {
      telegram: Record<string, unknown>;
      quickchat: Record<string, unknown>;
    };
    const moved = { ...settings, telegram: { ...settings.telegram, api_root: "https://evil.example" } };
    await database!.db.update(tenants).set({ settings: moved }).where(eq(tenants.id, "acme"));
    await expect(fresh()).rejects.toBeInstanceOf(TenantUnreadableError);
    // A base_url added where the default was implied.
    const added = { ...settings, quickchat: { ...settings.quickchat, base_url: "https://evil.example" } };
    await database!.db.update(tenants).set({ settings: added }).where(eq(tenants.id, "acme"));
    await expect(fresh()).rejects.toBeInstanceOf(TenantUnreadableError);
    // Blocks swapped between fields.
    const swapped = JSON.stringify({ quickchat: sealed.telegram, telegram: sealed.quickchat });
    await database!.db
      .update(tenants)
      .set({ settings, secretsEncrypted: swapped })
      .where(eq(tenants.id, "acme"));
    await expect(fresh()).rejects.toBeInstanceOf(TenantUnreadableError);
    await database!.db
      .update(tenants)
      .set({ secretsEncrypted: raw!.secretsEncrypted })
      .where(eq(tenants.id, "acme"));
    expect(await fresh()).toEqual(tenant);
  });

  it("rotate-key re-encrypts every tenant with the ring's first key, v1 rows included", async () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    const store = await storeWith(new SecretBox(k1));
    await store.create(tenant);
    // A row as a deployed database holds it: the first format, sealed with the old key.
    const { settings, secrets } = splitSecrets({ ...tenant, id: "legacy" });
    await database!.db.insert(tenants).values({
      id: "legacy",
      settings,
      secretsEncrypted: sealV1(k1, "legacy", JSON.stringify(secrets)),
    });
    const [raw] = await database!.db.select().from(tenants).where(eq(tenants.id, "acme"));
    expect(JSON.stringify(raw)).not.toMatch(/quickchat-token|telegram-bot-token|telegram_webhook_secret/);
    const read = (box: SecretBox, id: string) =>
      new TenantStore({ database: database!, staticTenants: [], box, log }).get(id);
    expect(await read(new SecretBox([k2, k1]), "legacy")).toEqual({ ...tenant, id: "legacy" });

    expect(await rotateKey(database!.db, new SecretBox([k2, k1]))).toBe(2);
    const rows = await database!.db.select().from(tenants);
    for (const row of rows) {
      for (const value of Object.values(JSON.parse(row.secretsEncrypted!) as Record<string, string>))
        expect(value.startsWith(`v2.${keyId(k2)}.`)).toBe(true);
    }
    expect(await read(new SecretBox(k2), "acme")).toEqual(tenant);
    expect(await read(new SecretBox(k2), "legacy")).toEqual({ ...tenant, id: "legacy" });
    await expect(read(new SecretBox(k1), "acme")).rejects.toBeInstanceOf(TenantUnreadableError);
  });

  it("rotate-key changes nothing when a row does not open with the ring", async () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    const store = await storeWith(new SecretBox(k1));
    await store.create(tenant);
    const before = await database!.db.select().from(tenants);
    await expect(rotateKey(database!.db, new SecretBox(k2))).rejects.toThrow(/tenant acme cannot be read/);
    expect(await database!.db.select().from(tenants)).toEqual(before);
  });
});
