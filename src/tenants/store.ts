import { eq, sql } from "drizzle-orm";
import { type TenantConfig, tenantId, tenantSchema } from "../config/schema.js";
import type { Database, Db } from "../db/client.js";
import { conversations, inboundMessages, tenants } from "../db/schema.js";
import { ConfigError, HttpError, notFound } from "../errors.js";
import { errorFields, type Logger } from "../log.js";
import { joinSecrets, splitSecrets } from "./fields.js";
import { type TenantRegistry, TenantUnreadableError } from "./registry.js";
import { openSecrets, sealSecrets } from "./sealed.js";
import type { SecretBox } from "./secrets.js";

const CHANGED = "bridge_tenants";

export type TenantSource = "config" | "api";

export interface TenantStoreOptions {
  database: Database;
  /** Tenants from the config file and the environment: read-only. */
  staticTenants: TenantConfig[];
  /** Encrypts secrets at rest; undefined when no key is available (storing secrets is then refused). */
  box?: SecretBox;
  log: Logger;
  /** Cached database tenants are re-read after this long even if a change notification was missed. */
  ttlMs?: number;
  /** How many ids found to be no tenant are remembered (the oldest is forgotten first); 10,000 by default. */
  maxUnknownIds?: number;
}

/**
 * Tenants from all sources behind one lookup. Database tenants are cached per process; a change made through
 * the admin API notifies every replica (LISTEN/NOTIFY) and a short TTL covers a missed notification.
 */
export class TenantStore implements TenantRegistry {
  private readonly fixed: Map<string, TenantConfig>;
  private readonly cache = new Map<string, { tenant: TenantConfig; at: number }>();
  /**
   * Ids looked up and found to be no tenant, with when. Anyone can send webhooks to any id, so this is
   * bounded (unlike `cache`, which holds only real tenants): a spray of random ids evicts its own oldest.
   */
  private readonly unknown = new Map<string, number>();
  /** Stored tenants whose secrets did not open, with when (as many as there are rows at most). */
  private readonly unreadable = new Map<string, number>();
  private unlisten: (() => Promise<void>) | undefined;
  private readonly ttlMs: number;
  private readonly maxUnknownIds: number;

  constructor(private readonly options: TenantStoreOptions) {
    this.fixed = new Map(options.staticTenants.map((t) => [t.id, t]));
    this.ttlMs = options.ttlMs ?? 5000;
    this.maxUnknownIds = options.maxUnknownIds ?? 10_000;
  }

  /** Ids whose lookup result is cached, known tenants and unknown ids alike. */
  get cachedIds(): number {
    return this.cache.size + this.unknown.size;
  }

  private get db(): Db {
    return this.options.database.db;
  }

  /** Checks that database tenants do not reuse a config tenant's id, and subscribes to changes. */
  async start(): Promise<void> {
    const stored = await this.db.select({ id: tenants.id }).from(tenants);
    const clashes = stored.filter((row) => this.fixed.has(row.id)).map((row) => row.id);
    if (clashes.length > 0) {
      throw new ConfigError(
        `tenant id(s) ${clashes.join(", ")} exist both in the configuration and in the database; remove one`,
      );
    }
    // The payload is the changed tenant's id; empty after a key rotation (everything changed).
    this.unlisten = await this.options.database.listen(CHANGED, (id) =>
      id ? this.forget(id) : this.forgetAll(),
    );
  }

  async stop(): Promise<void> {
    await this.unlisten?.().catch(() => {});
  }

  source(id: string): TenantSource | undefined {
    return this.fixed.has(id) ? "config" : undefined;
  }

  async get(id: string): Promise<TenantConfig | undefined> {
    const fixed = this.fixed.get(id);
    if (fixed) return fixed;
    // No tenant can have such an id; the database would reject some (NUL), and the cache need not hold them.
    if (!tenantId.safeParse(id).success) return undefined;
    const cached = this.cache.get(id);
    if (cached && Date.now() - cached.at < this.ttlMs) return cached.tenant;
    const missing = this.unknown.get(id);
    if (missing !== undefined && Date.now() - missing < this.ttlMs) return undefined;
    const failed = this.unreadable.get(id);
    if (failed !== undefined && Date.now() - failed < this.ttlMs) throw new TenantUnreadableError(id);
    const [row] = await this.db.select().from(tenants).where(eq(tenants.id, id));
    if (!row) {
      this.rememberUnknown(id);
      return undefined;
    }
    const tenant = this.decode(row);
    if (!tenant) {
      // Remembered as briefly as a tenant (a change to the row is notified and forgets it), so a burst of
      // webhooks costs one read and one log line.
      this.unreadable.set(id, Date.now());
      throw new TenantUnreadableError(id);
    }
    this.unreadable.delete(id);
    this.unknown.delete(id);
    this.cache.set(id, { tenant, at: Date.now() });
    return tenant;
  }

  private rememberUnknown(id: string): void {
    this.cache.delete(id);
    this.unknown.delete(id);
    this.unreadable.delete(id);
    if (this.unknown.size >= this.maxUnknownIds) this.unknown.delete(this.unknown.keys().next().value!);
    this.unknown.set(id, Date.now());
  }

  private forget(id: string): void {
    this.cache.delete(id);
    this.unknown.delete(id);
    this.unreadable.delete(id);
  }

  private forgetAll(): void {
    this.cache.clear();
    this.unknown.clear();
    this.unreadable.clear();
  }

  async list(): Promise<TenantConfig[]> {
    const rows = await this.db.select().from(tenants).orderBy(tenants.id);
    const stored = rows.map((row) => this.decode(row)).filter((t): t is TenantConfig => t !== undefined);
    return [...this.fixed.values(), ...stored];
  }

  /** Adds a database tenant; 409 when the id is taken in any source. */
  async create(tenant: TenantConfig): Promise<void> {
    if (this.fixed.has(tenant.id)) throw conflict(`tenant ${tenant.id} exists in the configuration`);
    const row = this.encode(tenant);
    await this.db.transaction(async (tx) => {
      const inserted = await tx
        .insert(tenants)
        .values(row)
        .onConflictDoNothing()
        .returning({ id: tenants.id });
      if (inserted.length === 0) throw conflict(`tenant ${tenant.id} already exists`);
      await tx.execute(sql`select pg_notify(${CHANGED}, ${tenant.id})`);
    });
    this.forget(tenant.id);
  }

  async replace(tenant: TenantConfig): Promise<void> {
    this.assertWritable(tenant.id);
    const row = this.encode(tenant);
    await this.db.transaction(async (tx) => {
      const updated = await tx
        .update(tenants)
        .set({ settings: row.settings, secretsEncrypted: row.secretsEncrypted, updatedAt: sql`now()` })
        .where(eq(tenants.id, tenant.id))
        .returning({ id: tenants.id });
      if (updated.length === 0) throw notFound(`unknown tenant ${tenant.id}`);
      await tx.execute(sql`select pg_notify(${CHANGED}, ${tenant.id})`);
    });
    this.forget(tenant.id);
  }

  /**
   * Deletes a database tenant with its conversations and messages (their text is the tenant's data, and
   * nothing can answer them any more). Takes effect at once here, within a notification elsewhere.
   */
  async remove(id: string): Promise<void> {
    this.assertWritable(id);
    if (!tenantId.safeParse(id).success) throw notFound(`unknown tenant ${id}`);
    await this.db.transaction(async (tx) => {
      const deleted = await tx.delete(tenants).where(eq(tenants.id, id)).returning({ id: tenants.id });
      if (deleted.length === 0) throw notFound(`unknown tenant ${id}`);
      await tx.delete(conversations).where(eq(conversations.tenantId, id));
      await tx.delete(inboundMessages).where(eq(inboundMessages.tenantId, id));
      await tx.execute(sql`select pg_notify(${CHANGED}, ${id})`);
    });
    this.rememberUnknown(id);
  }

  private assertWritable(id: string): void {
    if (this.fixed.has(id)) throw conflict(`tenant ${id} comes from the configuration and is read-only here`);
  }

  private encode(tenant: TenantConfig) {
    const { settings, secrets } = splitSecrets(tenant);
    const { box } = this.options;
    if (!box && Object.keys(secrets).length > 0) {
      throw new HttpError(
        409,
        "SECRET_KEY_REQUIRED",
        "BRIDGE_SECRET_KEY is not set: tenant secrets cannot be stored in PostgreSQL without it",
      );
    }
    return {
      id: tenant.id,
      settings,
      secretsEncrypted: box ? sealSecrets(box, tenant.id, settings, secrets) : null,
      source: "api",
    };
  }

  /** A stored tenant; undefined (logged) when its secrets do not decrypt for this id with this key. */
  private decode(row: typeof tenants.$inferSelect): TenantConfig | undefined {
    try {
      const secrets = row.secretsEncrypted
        ? openSecrets(this.requireBox(), row.id, row.settings, row.secretsEncrypted)
        : {};
      return tenantSchema.parse(joinSecrets(row.settings, secrets));
    } catch (err) {
      this.options.log.error({ tenant: row.id, ...errorFields(err) }, "stored tenant cannot be read");
      return undefined;
    }
  }

  private requireBox(): SecretBox {
    if (!this.options.box) throw new Error("tenant secrets are encrypted but BRIDGE_SECRET_KEY is not set");
    return this.options.box;
  }
}

const conflict = (message: string) => new HttpError(409, "CONFLICT", message);

/**
 * Re-encrypts every stored tenant's secrets with the ring's current (first) key, in one transaction
 * (`bridge rotate-key`); first-format (`v1`) values come out in the current format. Run it only once every
 * process has the current key in its ring (docs/operations.md), else those still without it cannot read
 * the tenants until they get it. Throws, changing nothing, when a row does not open with any key.
 */
export async function rotateKey(db: Db, box: SecretBox): Promise<number> {
  return db.transaction(async (tx) => {
    const rows = await tx.select().from(tenants).for("update");
    let rewritten = 0;
    for (const row of rows) {
      if (!row.secretsEncrypted) continue;
      let secrets: Record<string, string>;
      try {
        secrets = openSecrets(box, row.id, row.settings, row.secretsEncrypted);
      } catch (err) {
        // The transaction rolls back: no row is left sealed with a key the ring may not be meant to keep.
        throw new ConfigError(
          `tenant ${row.id} cannot be read with BRIDGE_SECRET_KEY (key ids ${box.keyIds.join(", ")}): ` +
            `${(err as Error).message}. Nothing was re-encrypted: the ring must also hold the key that ` +
            "sealed it (BRIDGE_SECRET_KEY=<new>,<old>)",
        );
      }
      await tx
        .update(tenants)
        .set({ secretsEncrypted: sealSecrets(box, row.id, row.settings, secrets), updatedAt: sql`now()` })
        .where(eq(tenants.id, row.id));
      rewritten++;
    }
    await tx.execute(sql`select pg_notify(${CHANGED}, '')`);
    return rewritten;
  });
}
