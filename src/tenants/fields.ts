import type { TenantConfig } from "../config/schema.js";

/** Every secret field of a tenant, as [block, key]: stored encrypted, never returned by the API. */
export const SECRET_FIELDS = [
  ["quickchat", "token"],
  ["quickchat", "api_key"],
  ["telegram", "bot_token"],
  ["telegram", "webhook_secret"],
  ["slack", "signing_secret"],
  ["slack", "bot_token"],
  ["whatsapp", "auth_token"],
] as const;

type Json = Record<string, unknown>;
type Blocks = Record<string, Json | undefined>;

const copy = (tenant: unknown): Blocks => structuredClone(tenant) as Blocks;

/** Splits a tenant into its non-secret settings and its secrets (`"block.key" → value`). */
export function splitSecrets(tenant: TenantConfig): { settings: Json; secrets: Record<string, string> } {
  const settings = copy(tenant);
  const secrets: Record<string, string> = {};
  for (const [block, key] of SECRET_FIELDS) {
    const value = settings[block]?.[key];
    if (typeof value === "string") {
      secrets[`${block}.${key}`] = value;
      delete settings[block]?.[key];
    }
  }
  return { settings, secrets };
}

/** The inverse of splitSecrets. */
export function joinSecrets(settings: Json, secrets: Record<string, string>): unknown {
  const tenant = copy(settings);
  for (const [path, value] of Object.entries(secrets)) {
    const [block, key] = path.split(".") as [string, string];
    const target = tenant[block];
    if (target) target[key] = value;
  }
  return tenant;
}

/** Shows at most the last 4 characters, and only of secrets long enough that this reveals little. */
export function mask(secret: string): string {
  return secret.length >= 16 ? `****${secret.slice(-4)}` : "****";
}

const MASKED = /^\*{4}/;

/** Mutually exclusive credentials: sending one must not bring the stored other one back. */
const ALTERNATIVES: Record<string, string> = { "quickchat.token": "api_key", "quickchat.api_key": "token" };

/** The tenant as the admin API shows it: every secret masked. */
export function maskTenant(tenant: TenantConfig): Json {
  const shown = copy(tenant);
  for (const [block, key] of SECRET_FIELDS) {
    const value = shown[block]?.[key];
    if (typeof value === "string") (shown[block] as Json)[key] = mask(value);
  }
  return shown as Json;
}

/**
 * For updates: a secret field that is omitted, or sent back masked as the API showed it, keeps its stored
 * value, so a client can GET, edit and PUT a tenant without knowing its secrets.
 */
export function keepUnchangedSecrets(input: unknown, stored: TenantConfig | undefined): unknown {
  if (!stored || !input || typeof input !== "object") return input;
  // Shallow copies of the request and its blocks: a deep clone of an arbitrarily nested body can overflow
  // the stack, and only the blocks' own secret fields change.
  const merged: Blocks = { ...(input as Blocks) };
  const previous = copy(stored);
  for (const [block, key] of SECRET_FIELDS) {
    if (merged[block] && typeof merged[block] === "object" && !Array.isArray(merged[block])) {
      merged[block] = { ...merged[block] };
    }
    const target = merged[block];
    const old = previous[block]?.[key];
    if (!target || typeof target !== "object" || Array.isArray(target) || typeof old !== "string") continue;
    const alternative = ALTERNATIVES[`${block}.${key}`];
    if (alternative && target[alternative] !== undefined && target[key] === undefined) continue;
    const sent = target[key];
    if (sent === undefined || (typeof sent === "string" && MASKED.test(sent))) target[key] = old;
  }
  return merged;
}
