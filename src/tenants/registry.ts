import type { TenantConfig } from "../config/schema.js";

/** Where the app and the worker look tenants up. */
export interface TenantRegistry {
  get(id: string): Promise<TenantConfig | undefined>;
  list(): Promise<TenantConfig[]>;
}

/** Tenants from the config file and the environment shorthand: fixed for the life of the process. */
export function staticRegistry(tenants: TenantConfig[]): TenantRegistry {
  const byId = new Map(tenants.map((t) => [t.id, t]));
  return {
    get: async (id) => byId.get(id),
    list: async () => [...byId.values()],
  };
}
