import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.js";

const LEGACY = "v1";
const VERSION = "v2";
/** GCM's full tag: a shorter one would let a forger try 2^32 or fewer guesses per value. */
const TAG_BYTES = 16;
const NONCE_BYTES = 12;

/**
 * A key's id: a short fingerprint (the first 6 bytes of a domain-separated SHA-256, base64url), written
 * into every ciphertext so a process knows which of its keys opens it. It reveals nothing usable about
 * the key; two different keys sharing one is a 1 in 2^48 event, refused at start-up anyway.
 */
export function keyId(key: Buffer): string {
  return createHash("sha256")
    .update("quickchat-bridge key id\0")
    .update(key)
    .digest()
    .subarray(0, 6)
    .toString("base64url");
}

/**
 * AES-256-GCM under a key ring: the first key encrypts, every key decrypts, so processes on
 * `new,old` and on `old,new` read each other's writes while a key is rotated.
 * Format: `v2.<key id>.<nonce b64>.<ciphertext b64>.<tag b64>`, with caller-given associated data (the
 * store binds each value to its tenant, block and destination: copied elsewhere, it fails authentication).
 * Values of the first format, `v1.<nonce>.<ciphertext>.<tag>` (no key id), are still opened, by trying
 * every key of the ring.
 */
export class SecretBox {
  private readonly keys: Map<string, Buffer>;
  readonly currentKeyId: string;

  /** `keys`: one key, or a ring whose first key encrypts. */
  constructor(keys: Buffer | Buffer[]) {
    const ring = Array.isArray(keys) ? keys : [keys];
    if (ring.length === 0) throw new ConfigError("BRIDGE_SECRET_KEY holds no key");
    this.keys = new Map();
    for (const key of ring) {
      if (key.length !== 32) throw new ConfigError("BRIDGE_SECRET_KEY must be 32 bytes, base64-encoded");
      const id = keyId(key);
      const known = this.keys.get(id);
      if (known && !known.equals(key)) throw new ConfigError("two keys of BRIDGE_SECRET_KEY share a key id");
      this.keys.set(id, key);
    }
    this.currentKeyId = keyId(ring[0]!);
  }

  /** The ids of every key this box can decrypt with, current first. */
  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  seal(associatedData: string, plaintext: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.keys.get(this.currentKeyId)!, nonce, {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(Buffer.from(associatedData, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    const parts = [nonce, body, cipher.getAuthTag()].map((x) => x.toString("base64"));
    return [VERSION, this.currentKeyId, ...parts].join(".");
  }

  /**
   * Throws when the value was sealed for other associated data, with a key this box lacks, or was tampered
   * with (a shortened tag included).
   */
  open(associatedData: string, sealed: string): string {
    const fields = sealed.split(".");
    if (fields[0] === VERSION && fields.length === 5) {
      const [, id, nonce, body, tag] = fields as [string, string, string, string, string];
      const key = this.keys.get(id);
      if (!key) throw new Error(`sealed with key ${id}, which is not among this process's keys`);
      return decrypt(key, associatedData, nonce, body, tag);
    }
    if (fields[0] === LEGACY && fields.length === 4) {
      const [, nonce, body, tag] = fields as [string, string, string, string];
      for (const key of this.keys.values()) {
        try {
          return decrypt(key, associatedData, nonce, body, tag);
        } catch {}
      }
      throw new Error("sealed (v1) with none of this process's keys, or tampered with");
    }
    throw new Error("unrecognised secret format");
  }
}

function decrypt(key: Buffer, associatedData: string, nonce: string, body: string, tag: string): string {
  const tagBytes = Buffer.from(tag, "base64");
  const nonceBytes = Buffer.from(nonce, "base64");
  if (tagBytes.length !== TAG_BYTES || nonceBytes.length !== NONCE_BYTES) throw new Error("malformed secret");
  const decipher = createDecipheriv("aes-256-gcm", key, nonceBytes, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(associatedData, "utf8"));
  decipher.setAuthTag(tagBytes);
  return Buffer.concat([decipher.update(Buffer.from(body, "base64")), decipher.final()]).toString("utf8");
}

/** A base64 key as Node decodes it: standard or URL-safe alphabet, surrounding whitespace ignored. */
const decodeKey = (base64: string) => Buffer.from(base64.trim(), "base64");

const KEY_ADVICE = "32 bytes, base64-encoded (openssl rand -base64 32)";

export function parseKey(base64: string, name = "BRIDGE_SECRET_KEY"): Buffer {
  const key = decodeKey(base64);
  if (key.length !== 32) throw new ConfigError(`${name} must be ${KEY_ADVICE}`);
  return key;
}

const ringEntries = (value: string) => value.split(",").filter((k) => k.trim() !== "");

/**
 * Why `BRIDGE_SECRET_KEY` is not a usable key ring, or undefined: each key must decode to 32 bytes. Checked
 * with the other settings, so that every command (check-config included) refuses a wrong key before use.
 */
export function keyRingProblem(value: string): string | undefined {
  const keys = ringEntries(value);
  if (keys.length === 0) return "holds no key";
  for (const [index, key] of keys.entries()) {
    const bytes = decodeKey(key).length;
    const which = keys.length > 1 ? `key ${index + 1} of ${keys.length}` : "the key";
    if (bytes !== 32) return `${which} decodes to ${bytes} bytes: each key must be ${KEY_ADVICE}`;
  }
  return undefined;
}

/** `BRIDGE_SECRET_KEY`: one key, or several separated by commas (the first encrypts, all decrypt). */
export function parseKeyRing(value: string): Buffer[] {
  const problem = keyRingProblem(value);
  if (problem) throw new ConfigError(`BRIDGE_SECRET_KEY: ${problem}`);
  return ringEntries(value).map(decodeKey);
}

/**
 * The keys that encrypt tenant secrets: BRIDGE_SECRET_KEY when set; with the embedded database, a key
 * generated once into DATA_DIR (0600); with PostgreSQL and no key, none (storing secrets is refused).
 */
export function loadSecretKeys(options: {
  configured?: string;
  embedded: boolean;
  dataDir: string;
}): Buffer[] | undefined {
  if (options.configured) return parseKeyRing(options.configured);
  if (!options.embedded) return undefined;
  // An in-memory database (tests) lives no longer than the process: so does its key.
  if (options.dataDir.startsWith("memory://")) return [randomBytes(32)];
  const file = join(options.dataDir, "secret.key");
  if (existsSync(file)) return [parseKey(readFileSync(file, "utf8"), file)];
  mkdirSync(options.dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString("base64")}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return [key];
}
