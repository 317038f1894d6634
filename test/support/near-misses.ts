/**
 * Near misses of a correct signature or secret: values one small step from the exact one, each of which a
 * verifier must refuse. A miss that keeps the value's format (alphabet and length) gets past every shape
 * check and can only be refused by comparing all of it; one that breaks the format shows the shape checks
 * work.
 */

export interface NearMiss {
  name: string;
  value: string;
  /** Same alphabet and length as the exact value: only a full comparison can tell them apart. */
  keepsShape: boolean;
}

const HEX = "0123456789abcdef";
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** The characters of Telegram's secret_token: "A-Z, a-z, 0-9, _ and -". */
export const TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/** `text` with the character at `index` replaced by the next one of `alphabet`. */
export function replaceAt(text: string, index: number, alphabet: string): string {
  const position = alphabet.indexOf(text[index] ?? "");
  if (position < 0) throw new Error(`${JSON.stringify(text[index])} at ${index} is not in the alphabet`);
  const other = alphabet[(position + 1) % alphabet.length];
  return text.slice(0, index) + other + text.slice(index + 1);
}

/**
 * Misses of a digest written in hex or base64: one digit changed in each half (a comparison of a prefix
 * lets the second through), one bit flipped, one byte short.
 */
export function digestNearMisses(encoded: string, encoding: "hex" | "base64"): NearMiss[] {
  const digest = Buffer.from(encoded, encoding);
  if (digest.toString(encoding) !== encoded)
    throw new Error(`not a canonical ${encoding} digest: ${encoded}`);
  const alphabet = encoding === "hex" ? HEX : BASE64;
  // Base64's last digit before the padding also holds padding bits: change one that is all digest.
  const digits = encoding === "hex" ? encoded.length : Math.floor((digest.length * 8) / 6);
  const flipped = Buffer.from(digest);
  flipped[flipped.length - 1]! ^= 0x01;
  return [
    { name: "one digit changed in the first half", value: replaceAt(encoded, 1, alphabet), keepsShape: true },
    {
      name: "one digit changed in the second half",
      value: replaceAt(encoded, digits - 2, alphabet),
      keepsShape: true,
    },
    { name: "one bit flipped", value: flipped.toString(encoding), keepsShape: true },
    { name: "one byte short", value: digest.subarray(0, -1).toString(encoding), keepsShape: false },
  ];
}

/** Misses of a shared secret sent as is: one character changed, cut short, one more, other case, empty. */
export function secretNearMisses(secret: string, alphabet = TOKEN_ALPHABET): NearMiss[] {
  const letter = secret.search(/[a-zA-Z]/);
  if (letter < 0) throw new Error("the secret needs a letter to change its case");
  const char = secret[letter]!;
  const otherCase = char === char.toLowerCase() ? char.toUpperCase() : char.toLowerCase();
  return [
    {
      name: "one character changed",
      value: replaceAt(secret, secret.length >> 1, alphabet),
      keepsShape: true,
    },
    { name: "the last character missing", value: secret.slice(0, -1), keepsShape: false },
    { name: "one character more", value: `${secret}${secret[0]}`, keepsShape: false },
    {
      name: "one letter in the other case",
      value: secret.slice(0, letter) + otherCase + secret.slice(letter + 1),
      keepsShape: true,
    },
    { name: "an empty value", value: "", keepsShape: false },
  ];
}
