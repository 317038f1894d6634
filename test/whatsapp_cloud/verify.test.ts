import { describe, expect, it } from "vitest";
import {
  checkSubscription,
  precheckSignatureHeader,
  verifySignature,
} from "../../src/channels/whatsapp_cloud/verify.js";
import { HttpError } from "../../src/errors.js";
import { inboundText, metaJson, signCloudRequest } from "../fakes/whatsapp-cloud.js";

const APP_SECRET = "6c1f0a9e3b2d4c5f8e7a9b0c1d2e3f40";
const VERIFY_TOKEN = "a-token-the-operator-chose";
const CALLBACK = "https://bridge.example.com/webhooks/acme/whatsapp_cloud";

/** The error a call threw; fails the test when it returned. */
function thrown(call: () => unknown): HttpError {
  try {
    call();
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("expected an HttpError");
}

function handshake(params: Record<string, string>): URL {
  const url = new URL(CALLBACK);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url;
}

describe("checkSubscription: the GET handshake", () => {
  const config = { verify_token: VERIFY_TOKEN };

  it("returns the challenge when the mode is subscribe and the token matches", () => {
    const url = handshake({
      "hub.mode": "subscribe",
      "hub.challenge": "1158201444",
      "hub.verify_token": VERIFY_TOKEN,
    });
    expect(checkSubscription(url, config)).toBe("1158201444");
  });

  it("reads the parameters as Meta encodes them in the query", () => {
    const token = "tøken with spaces & symbols=";
    const url = new URL(
      `${CALLBACK}?hub.mode=subscribe&hub.challenge=42&hub.verify_token=${encodeURIComponent(token)}`,
    );
    expect(checkSubscription(url, { verify_token: token })).toBe("42");
  });

  const WRONG_TOKEN = "wrong hub.verify_token";
  const NOT_SUBSCRIBE = "hub.mode is not subscribe";
  it.each<[string, Record<string, string>, string]>([
    [
      "a wrong token",
      { "hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "guess" },
      WRONG_TOKEN,
    ],
    [
      "the token with different case",
      { "hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN.toUpperCase() },
      WRONG_TOKEN,
    ],
    ["no token", { "hub.mode": "subscribe", "hub.challenge": "1" }, WRONG_TOKEN],
    [
      "another mode",
      { "hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN },
      NOT_SUBSCRIBE,
    ],
    ["no mode", { "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN }, NOT_SUBSCRIBE],
    ["a wrong token and no challenge", { "hub.mode": "subscribe", "hub.verify_token": "guess" }, WRONG_TOKEN],
  ])("refuses %s with 403", (_, params, message) => {
    const error = thrown(() => checkSubscription(handshake(params), config));
    expect(error.status).toBe(403);
    expect(error.message).toBe(message);
  });

  const MISSING_CHALLENGE = "missing hub.challenge";
  const UNUSABLE_CHALLENGE = "hub.challenge is not 1-256 printable characters";
  it.each<[string, Record<string, string>, string]>([
    ["no challenge", { "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN }, MISSING_CHALLENGE],
    [
      "an empty challenge",
      { "hub.mode": "subscribe", "hub.challenge": "", "hub.verify_token": VERIFY_TOKEN },
      MISSING_CHALLENGE,
    ],
    [
      "a challenge that is markup",
      {
        "hub.mode": "subscribe",
        "hub.challenge": "<script>alert(1)</script> x",
        "hub.verify_token": VERIFY_TOKEN,
      },
      UNUSABLE_CHALLENGE,
    ],
    [
      "a challenge too long to be Meta's",
      { "hub.mode": "subscribe", "hub.challenge": "9".repeat(257), "hub.verify_token": VERIFY_TOKEN },
      UNUSABLE_CHALLENGE,
    ],
  ])("answers 400 to the right token with %s", (_, params, message) => {
    const error = thrown(() => checkSubscription(handshake(params), config));
    expect(error.status).toBe(400);
    expect(error.message).toBe(message);
  });
});

describe("X-Hub-Signature-256", () => {
  // Meta's bytes: escaped slashes and non-ASCII (an emoji and an accented name).
  const body = Buffer.from(metaJson(inboundText("Café? 😀 see https://example.com/a", {})));
  const signature = signCloudRequest(body, APP_SECRET);
  const headers = (value?: string) =>
    new Headers(
      value === undefined ? {} : { "x-hub-signature-256": value, "content-type": "application/json" },
    );

  it("accepts Meta's signature of the bytes as received", () => {
    expect(body.toString()).toContain("\\/");
    expect(body.toString()).toContain("\\ud83d\\ude00");
    expect(() => verifySignature(body, headers(signature), APP_SECRET)).not.toThrow();
  });

  it("accepts the hex digits in upper case", () => {
    const upper = `sha256=${signature.slice("sha256=".length).toUpperCase()}`;
    expect(() => verifySignature(body, headers(upper), APP_SECRET)).not.toThrow();
  });

  it("refuses the same JSON re-serialised: the signature is over the bytes, not the value", () => {
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(body.toString())));
    expect(reserialised.equals(body)).toBe(false);
    const error = thrown(() => verifySignature(reserialised, headers(signature), APP_SECRET));
    expect(error).toMatchObject({ status: 401, message: "invalid X-Hub-Signature-256" });
  });

  it("refuses a body with one byte changed", () => {
    const changed = Buffer.from(body);
    const at = changed.indexOf("Caf");
    changed[at] = "K".charCodeAt(0);
    expect(thrown(() => verifySignature(changed, headers(signature), APP_SECRET)).status).toBe(401);
  });

  it("refuses a body with one byte added or removed", () => {
    const longer = Buffer.concat([body, Buffer.from(" ")]);
    const shorter = body.subarray(0, body.length - 1);
    expect(thrown(() => verifySignature(longer, headers(signature), APP_SECRET)).status).toBe(401);
    expect(thrown(() => verifySignature(shorter, headers(signature), APP_SECRET)).status).toBe(401);
  });

  const MALFORMED = "X-Hub-Signature-256 is not sha256= and 64 hex digits";
  it.each<[string, string | undefined, string]>([
    ["missing", undefined, "missing X-Hub-Signature-256 header"],
    ["empty", "", MALFORMED],
    ["one digit too many", `${signature}0`, MALFORMED],
    ["without its prefix", signature.slice("sha256=".length), MALFORMED],
    ["an X-Hub-Signature (SHA-1) value", `sha1=${"0".repeat(40)}`, MALFORMED],
    ["not hex", `sha256=${"z".repeat(64)}`, MALFORMED],
    ["two signatures", `${signature},${signature}`, MALFORMED],
    // Near misses (a digit, a bit, a byte short, sha1=, another secret): test/channels/signatures.test.ts.
  ])("refuses a header that is %s with 401, from the headers alone", (_, value, message) => {
    const expected = { status: 401, message };
    expect(thrown(() => precheckSignatureHeader(headers(value)))).toMatchObject(expected);
    expect(thrown(() => verifySignature(body, headers(value), APP_SECRET))).toMatchObject(expected);
  });

  it("lets a well-formed header through the precheck, whatever the body", () => {
    expect(() => precheckSignatureHeader(headers(signature))).not.toThrow();
  });
});
