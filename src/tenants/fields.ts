import { descriptors } from "../channels/registry.js";
import {
  DEFAULT_QUICKCHAT_BASE_URL,
  LEGACY_QUICKCHAT_BASE_URL,
  type TenantConfig,
} from "../config/schema.js";
import { HttpError } from "../errors.js";

/** Every secret field of a tenant, as [block, key]: stored encrypted, never returned by the API. */
export const SECRET_FIELDS: readonly (readonly [block: string, key: string])[] = [
  ["quickchat", "token"],
  ["quickchat", "api_key"],
  ...descriptors.flatMap((channel) => channel.secrets.map((key) => [channel.name, key] as const)),
];

/**
 * The setting of each block that decides where the block's requests (and so its secrets) go. A block's
 * stored secrets are bound to it: changing it needs the block's secrets again (`keepUnchangedSecrets`), and
 * the ciphertext names it in its associated data (`sealed.ts`), so a changed database row cannot reuse them.
 */
export const DESTINATION_SETTINGS: Readonly<Record<string, string>> = {
  quickchat: "base_url",
  ...Object.fromEntries(descriptors.map((channel) => [channel.name, channel.destination.field])),
};
const DEFAULT_DESTINATIONS: Readonly<Record<string, string>> = Object.fromEntries(
  descriptors.map((channel) => [channel.name, channel.destination.default]),
);

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

/** Where a block's requests go, its default included; undefined for a missing block. */
function destination(block: string, config: unknown, storedConfig?: Json): string | undefined {
  if (!config || typeof config !== "object" || Array.isArray(config)) return undefined;
  const setting = DESTINATION_SETTINGS[block];
  const set = setting === undefined ? undefined : (config as Json)[setting];
  let url: string;
  if (typeof set === "string") url = set;
  else if (block === "quickchat") {
    // The legacy api_key has its own default host; a request that sends neither credential keeps the stored one.
    const q = config as Json;
    const credentials = q.token !== undefined || q.api_key !== undefined ? q : (storedConfig ?? q);
    const legacy = credentials.api_key !== undefined && credentials.token === undefined;
    url = legacy ? LEGACY_QUICKCHAT_BASE_URL : DEFAULT_QUICKCHAT_BASE_URL;
  } else {
    url = DEFAULT_DESTINATIONS[block] ?? "";
  }
  try {
    return new URL(url).href;
  } catch {
    return url;
  }
}

/**
 * For updates: a secret field that is omitted, or sent back masked as the API showed it, keeps its stored
 * value, so a client can GET, edit and PUT a tenant without knowing its secrets. Not when the block's
 * destination changes: the admin API must not be a way to send stored secrets to another host, so such a
 * request has to carry the block's secrets itself (422 naming each one missing). Nor when nothing is stored
 * (a new tenant, one this process cannot decrypt): a masked value is then refused, never stored.
 */
export function keepUnchangedSecrets(input: unknown, stored: TenantConfig | undefined): unknown {
  if (!input || typeof input !== "object") return input;
  // Shallow copies of the request and its blocks: a deep clone of an arbitrarily nested body can overflow
  // the stack, and only the blocks' own secret fields change.
  const merged: Blocks = { ...(input as Blocks) };
  const previous = stored ? copy(stored) : {};
  const missing: { message: string; code: string; path: string }[] = [];
  for (const [block, key] of SECRET_FIELDS) {
    if (merged[block] && typeof merged[block] === "object" && !Array.isArray(merged[block])) {
      merged[block] = { ...merged[block] };
    }
    const target = merged[block];
    if (!target || typeof target !== "object" || Array.isArray(target)) continue;
    const old = previous[block]?.[key];
    if (typeof old !== "string") {
      // Nothing stored to keep (a new tenant, or one this process cannot decrypt): a masked value would be
      // stored as the secret itself.
      const sent = target[key];
      if (typeof sent === "string" && MASKED.test(sent)) {
        missing.push({
          message: `${block}.${key}: a masked value cannot be kept, as no secret is known here; send the secret itself`,
          code: "SECRET_REQUIRED",
          path: `${block}.${key}`,
        });
      }
      continue;
    }
    const alternative = ALTERNATIVES[`${block}.${key}`];
    if (alternative && target[alternative] !== undefined && target[key] === undefined) continue;
    const sent = target[key];
    if (sent !== undefined && !(typeof sent === "string" && MASKED.test(sent))) continue;
    const before = destination(block, previous[block]);
    if (before === destination(block, target, previous[block])) {
      target[key] = old;
      continue;
    }
    const setting = `${block}.${DESTINATION_SETTINGS[block]}`;
    missing.push({
      message: `${block}.${key}: must be sent again because ${setting} changes (stored secrets stay with their destination)`,
      code: "SECRET_REQUIRED",
      path: `${block}.${key}`,
    });
  }
  if (missing.length > 0) {
    throw new HttpError(
      422,
      "SECRET_REQUIRED",
      "send these secrets themselves: a stored one is not kept here",
      missing,
    );
  }
  return merged;
}
