import { verifySlackRequest } from "@slack/bolt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { verifySlackSignature } from "../../src/channels/slack/verify.js";
import type { WebhookRequest } from "../../src/channels/types.js";
import { HttpError } from "../../src/errors.js";
import { signSlackRequest, slackEventHeaders } from "../fakes/slack.js";

// Published worked example (api.slack.com/docs/verifying-requests-from-slack).
const DOCS_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const DOCS_TIMESTAMP = 1531420618;
const DOCS_BODY =
  "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const DOCS_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
// The docs' app_mention example as compact JSON, same secret and timestamp (computed vector, 2.1).
const JSON_BODY =
  '{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"app_mention","user":"U061F7AUR","text":"<@U0LAN0Z89> is it everything a river should be?","ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522000016"},"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522}';
const JSON_SIGNATURE = "v0=d1bc4a6d8863856cbf319e814d30979202824d74e27e631d5ae7c4d53c6f83e8";

const AT_DOCS_TIME = DOCS_TIMESTAMP * 1000;
const STALE = "X-Slack-Request-Timestamp is more than 5 minutes off: stale or replayed request";

function request(body: string, headers: Record<string, string>): WebhookRequest {
  return {
    rawBody: Buffer.from(body),
    headers: new Headers(headers),
    url: new URL("http://bridge.test/webhooks/acme/slack"),
  };
}

function signed(body: string, signature: string, timestamp: number | string = DOCS_TIMESTAMP) {
  return request(body, { "x-slack-signature": signature, "x-slack-request-timestamp": String(timestamp) });
}

function rejection(fn: () => void): HttpError {
  try {
    fn();
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("test signer", () => {
  it("reproduces the published example and the JSON vector", () => {
    expect(signSlackRequest(DOCS_SECRET, DOCS_BODY, DOCS_TIMESTAMP)).toBe(DOCS_SIGNATURE);
    expect(signSlackRequest(DOCS_SECRET, JSON_BODY, DOCS_TIMESTAMP)).toBe(JSON_SIGNATURE);
  });
});

describe("verifySlackSignature", () => {
  it("accepts the published example and the JSON vector", () => {
    expect(() =>
      verifySlackSignature(signed(DOCS_BODY, DOCS_SIGNATURE), DOCS_SECRET, AT_DOCS_TIME),
    ).not.toThrow();
    expect(() =>
      verifySlackSignature(signed(JSON_BODY, JSON_SIGNATURE), DOCS_SECRET, AT_DOCS_TIME),
    ).not.toThrow();
  });

  it("verifies the raw bytes, including non-ASCII text", () => {
    const body = JSON.stringify({ type: "event_callback", event: { type: "message", text: "Grüße 👋" } });
    const req = request(body, slackEventHeaders("s3cret", body, { timestamp: DOCS_TIMESTAMP }));
    expect(() => verifySlackSignature(req, "s3cret", AT_DOCS_TIME)).not.toThrow();
  });

  const MISMATCH = "X-Slack-Signature does not match";
  const NOT_V0 = "X-Slack-Signature does not match: not v0= and 64 hex digits";
  const MISSING = "missing X-Slack-Signature or X-Slack-Request-Timestamp header";
  it.each([
    ["a tampered body", signed(`${JSON_BODY} `, JSON_SIGNATURE), MISMATCH],
    ["a bare hex signature", signed(JSON_BODY, JSON_SIGNATURE.slice(3)), NOT_V0],
    ["a signature with a byte more", signed(JSON_BODY, `${JSON_SIGNATURE}00`), NOT_V0],
    ["the right signature after other text", signed(JSON_BODY, `v1=0,${JSON_SIGNATURE}`), NOT_V0],
    [
      "the signature in upper case (Bolt compares exactly)",
      signed(JSON_BODY, `v0=${JSON_SIGNATURE.slice(3).toUpperCase()}`),
      NOT_V0,
    ],
    [
      "a non-numeric timestamp",
      signed(JSON_BODY, JSON_SIGNATURE, "1531420618.5"),
      "X-Slack-Request-Timestamp is not a Unix time",
    ],
    ["no signature", request(JSON_BODY, { "x-slack-request-timestamp": String(DOCS_TIMESTAMP) }), MISSING],
    ["no timestamp", request(JSON_BODY, { "x-slack-signature": JSON_SIGNATURE }), MISSING],
    ["no headers at all", request(JSON_BODY, {}), MISSING],
    // Near misses of the signature (a digit, a bit, a byte, v1=, another timestamp or secret):
    // test/channels/signatures.test.ts.
  ])("rejects %s with 401", (_, req, message) => {
    const error = rejection(() => verifySlackSignature(req, DOCS_SECRET, AT_DOCS_TIME));
    expect(error.status).toBe(401);
    expect(error.message).toBe(message);
  });

  it("rejects a correctly signed request older than 5 minutes", () => {
    const error = rejection(() =>
      verifySlackSignature(signed(JSON_BODY, JSON_SIGNATURE), DOCS_SECRET, AT_DOCS_TIME + 301_000),
    );
    expect(error.status).toBe(401);
    expect(error.message).toBe(STALE);
    expect(() =>
      verifySlackSignature(signed(JSON_BODY, JSON_SIGNATURE), DOCS_SECRET, AT_DOCS_TIME + 299_000),
    ).not.toThrow();
  });

  it("rejects a timestamp more than 5 minutes in the future (Bolt accepts it)", () => {
    const error = rejection(() =>
      verifySlackSignature(signed(JSON_BODY, JSON_SIGNATURE), DOCS_SECRET, AT_DOCS_TIME - 301_000),
    );
    expect(error.status).toBe(401);
    expect(error.message).toBe(STALE);
  });

  it("accepts a timestamp exactly 5 minutes off either way, and refuses one a millisecond further", () => {
    const at = (offsetMs: number) => () =>
      verifySlackSignature(signed(JSON_BODY, JSON_SIGNATURE), DOCS_SECRET, AT_DOCS_TIME + offsetMs);
    expect(at(300_000)).not.toThrow();
    expect(at(-300_000)).not.toThrow();
    expect(rejection(at(300_001)).message).toBe(STALE);
    expect(rejection(at(-300_001)).message).toBe(STALE);
  });

  it("agrees with Bolt's verifySlackRequest within the time window (right and wrong secrets and bodies)", () => {
    const secret = fc.string({ minLength: 1, maxLength: 40 });
    const body = fc.string({ maxLength: 300, unit: "grapheme" });
    const age = fc.integer({ min: 0, max: 290 });
    fc.assert(
      fc.property(
        secret,
        fc.option(secret),
        body,
        age,
        fc.boolean(),
        (signingSecret, otherSecret, text, ageSeconds, tamper) => {
          const now = AT_DOCS_TIME + ageSeconds * 1000;
          const signature = signSlackRequest(otherSecret ?? signingSecret, text, DOCS_TIMESTAMP);
          const received = tamper ? `${text}x` : text;
          const ours = accepts(() => verifySlackSignature(signed(received, signature), signingSecret, now));
          const bolts = accepts(() =>
            verifySlackRequest({
              signingSecret,
              body: received,
              headers: { "x-slack-signature": signature, "x-slack-request-timestamp": DOCS_TIMESTAMP },
              nowMilliseconds: now,
            }),
          );
          expect(ours).toBe(bolts);
        },
      ),
    );
  });
});

function accepts(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}
