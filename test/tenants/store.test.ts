import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { tenantSchema } from "../../src/config/schema.js";
import { type Database, openDatabase } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { tenants } from "../../src/db/schema.js";
import { createLogger } from "../../src/log.js";
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
});
