import type { TenantConfig } from "../config/schema.js";
import { HttpError } from "../errors.js";

/** Where the app and the worker look tenants up (implemented by TenantStore). */
export interface TenantRegistry {
  /** Undefined for no such tenant; throws TenantUnreadableError for one that exists but cannot be read now. */
  get(id: string): Promise<TenantConfig | undefined>;
  list(): Promise<TenantConfig[]>;
}

/**
 * A stored tenant whose secrets this process cannot open (a key it does not have yet, mid-rotation). It
 * exists, so webhooks get 503 (Telegram and Slack redeliver) rather than 404, and messages wait, not fail.
 */
export class TenantUnreadableError extends HttpError {
  constructor(id: string) {
    super(
      503,
      "TENANT_UNAVAILABLE",
      `tenant ${id} cannot be read with this process's BRIDGE_SECRET_KEY; retry later`,
    );
  }
}
