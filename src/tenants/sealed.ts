import { DESTINATION_SETTINGS } from "./fields.js";
import type { SecretBox } from "./secrets.js";

type Settings = Record<string, unknown>;

/**
 * What a block's ciphertext is bound to: the tenant, the block, and the block's destination setting as
 * stored (absent counts as a value too). A ciphertext moved to another tenant or block, or left in place
 * while the destination in the row is changed, fails authentication instead of sending its secrets there.
 */
function associatedData(tenantId: string, block: string, settings: Settings): string {
  const config = settings[block] as Settings | undefined;
  const setting = DESTINATION_SETTINGS[block];
  const value = setting && config ? config[setting] : undefined;
  return JSON.stringify([tenantId, block, typeof value === "string" ? value : null]);
}

/**
 * A tenant's secrets (`"block.key" → value`) as stored in `tenants.secrets_encrypted`: one ciphertext per
 * block, `{"telegram":"v2.<key id>.…",…}`.
 */
export function sealSecrets(
  box: SecretBox,
  tenantId: string,
  settings: Settings,
  secrets: Record<string, string>,
): string {
  const blocks: Record<string, Record<string, string>> = {};
  for (const [path, value] of Object.entries(secrets)) {
    const [block, key] = path.split(".") as [string, string];
    blocks[block] = { ...blocks[block], [key]: value };
  }
  const sealed = Object.entries(blocks).map(([block, values]) => [
    block,
    box.seal(associatedData(tenantId, block, settings), JSON.stringify(values)),
  ]);
  return JSON.stringify(Object.fromEntries(sealed));
}

/**
 * The inverse of sealSecrets; also reads the first format (`v1.…`: every secret in one ciphertext bound to
 * the tenant id only), which deployed databases hold until `bridge rotate-key` rewrites them.
 * Throws when any block does not open.
 */
export function openSecrets(
  box: SecretBox,
  tenantId: string,
  settings: Settings,
  stored: string,
): Record<string, string> {
  if (stored.startsWith("v1.")) return JSON.parse(box.open(tenantId, stored)) as Record<string, string>;
  const sealed = JSON.parse(stored) as Record<string, unknown>;
  const secrets: Record<string, string> = {};
  for (const [block, value] of Object.entries(sealed)) {
    if (!Object.hasOwn(DESTINATION_SETTINGS, block) || typeof value !== "string")
      throw new Error("malformed secrets");
    const values = JSON.parse(box.open(associatedData(tenantId, block, settings), value)) as Record<
      string,
      string
    >;
    for (const [key, secret] of Object.entries(values)) secrets[`${block}.${key}`] = secret;
  }
  return secrets;
}
