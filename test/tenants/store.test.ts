import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { eq, sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { tenantSchema } from "../../src/config/schema.js";
import { type Database, openDatabase } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { tenants } from "../../src/db/schema.js";
import { createLogger } from "../../src/log.js";
import { TenantUnreadableError } from "../../src/tenants/registry.js";
import { SecretBox } from "../../src/tenants/secrets.js";
import { TenantStore } from "../../src/tenants/store.js";

const tenant = (id: string) =>
  tenantSchema.parse({ id, quickchat: { scenario_id: "sc", token: "quickchat-token-0123456789" } });

describe("tenant cache", () => {
  let database: Database | undefined;
  afterEach(async () => database?.close());

  // Found by the fault suite's bad-input run: every well-formed unknown id stayed cached for good, so
  // webhooks to random tenant ids grew the process's memory without bound.
  it("remembers a bounded number of unknown ids, without evicting known tenants", async () => {
    database = await openDatabase({ dataDir: "memory://" });
    await migrate(database);
    const options = {
      database,
      staticTenants: [],
      box: new SecretBox(randomBytes(32)),
      log: createLogger("silent"),
    };
    const store = new TenantStore({ ...options, maxUnknownIds: 10 });
    // Another replica, whose changes this store does not hear of (it did not start listening).
    const elsewhere = new TenantStore(options);
    await store.create(tenant("acme"));
    expect(await store.get("acme")).toEqual(tenant("acme"));

    for (let i = 0; i < 40; i++) expect(await store.get(`nobody-${i}`)).toBeUndefined();
    expect(store.cachedIds).toBeLessThanOrEqual(11);

    // Within the TTL both answers still come from the cache: the known tenant despite the spray...
    await database.db.delete(tenants).where(eq(tenants.id, "acme"));
    expect(await store.get("acme")).toEqual(tenant("acme"));
    // ...and a recent unknown id, now created elsewhere.
    await elsewhere.create(tenant("nobody-39"));
    expect(await store.get("nobody-39")).toBeUndefined();
    // The oldest unknown ids were forgotten, so they are looked up again.
    await elsewhere.create(tenant("nobody-0"));
    expect(await store.get("nobody-0")).toEqual(tenant("nobody-0"));
  });

  it("an unreadable stored tenant is read and logged once per TTL, and again after its row changes", async () => {
    database = await openDatabase({ dataDir: "memory://" });
    await migrate(database);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const writer = new TenantStore({
      database,
      staticTenants: [],
      box: new SecretBox(randomBytes(32)),
      log: createLogger("silent"),
    });
    await writer.create(tenant("acme"));
    const key = randomBytes(32);
    const reader = new TenantStore({
      database,
      staticTenants: [],
      box: new SecretBox(key),
      log: createLogger("error", sink),
    });
    for (let i = 0; i < 5; i++)
      await expect(reader.get("acme")).rejects.toBeInstanceOf(TenantUnreadableError);
    expect(lines.filter((l) => l.includes("stored tenant cannot be read"))).toHaveLength(1);

    // Re-sealed with this reader's key and notified (what an admin write elsewhere does): readable at once.
    await new TenantStore({
      database,
      staticTenants: [],
      box: new SecretBox(key),
      log: createLogger("silent"),
    }).replace(tenant("acme"));
    await reader.start();
    await database.db.execute(sql`select pg_notify('bridge_tenants', 'acme')`);
    await expect
      .poll(() => reader.get("acme").catch(() => undefined), { timeout: 5_000 })
      .toEqual(tenant("acme"));
    await reader.stop();
  });
});
