import type { TenantConfig } from "../config/schema.js";

/** Where the app and the worker look tenants up (implemented by TenantStore). */
export interface TenantRegistry {
  get(id: string): Promise<TenantConfig | undefined>;
  list(): Promise<TenantConfig[]>;
}
