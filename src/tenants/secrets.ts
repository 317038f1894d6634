import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.js";

const VERSION = "v1";

/**
 * AES-256-GCM with a random 96-bit nonce per value and the tenant id as associated data, so a ciphertext
 * copied into another tenant's row fails authentication instead of decrypting.
 * Format: `v1.<nonce b64>.<ciphertext b64>.<tag b64>`.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new ConfigError("BRIDGE_SECRET_KEY must be 32 bytes, base64-encoded");
  }

  seal(tenantId: string, plaintext: string): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    cipher.setAAD(Buffer.from(tenantId, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return [VERSION, nonce, body, cipher.getAuthTag()]
      .map((x) => (typeof x === "string" ? x : x.toString("base64")))
      .join(".");
  }

  /** Throws when the value was sealed for another tenant, with another key, or was tampered with. */
  open(tenantId: string, sealed: string): string {
    const [version, nonce, body, tag] = sealed.split(".");
    if (version !== VERSION || !nonce || body === undefined || !tag)
      throw new Error("unrecognised secret format");
    const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(nonce, "base64"));
    decipher.setAAD(Buffer.from(tenantId, "utf8"));
    decipher.setAuthTag(Buffer.from(tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(body, "base64")), decipher.final()]).toString("utf8");
  }
}

export function parseKey(base64: string): Buffer {
  const key = Buffer.from(base64, "base64");
  if (key.length !== 32)
    throw new ConfigError("BRIDGE_SECRET_KEY must be 32 bytes, base64-encoded (openssl rand -base64 32)");
  return key;
}

/**
 * The key that encrypts tenant secrets: BRIDGE_SECRET_KEY when set; with the embedded database, a key
 * generated once into DATA_DIR (0600); with PostgreSQL and no key, none (storing secrets is refused).
 */
export function loadSecretKey(options: {
  configured?: string;
  embedded: boolean;
  dataDir: string;
}): Buffer | undefined {
  if (options.configured) return parseKey(options.configured);
  if (!options.embedded) return undefined;
  // An in-memory database (tests) lives no longer than the process: so does its key.
  if (options.dataDir.startsWith("memory://")) return randomBytes(32);
  const file = join(options.dataDir, "secret.key");
  if (existsSync(file)) return parseKey(readFileSync(file, "utf8").trim());
  mkdirSync(options.dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString("base64")}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return key;
}
