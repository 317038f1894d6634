import fc from "fast-check";
import twilio from "twilio";
import { describe, expect, it } from "vitest";
import type { WebhookRequest } from "../../src/channels/types.js";
import {
  precheckTwilioRequest,
  twilioCalledUrl,
  verifyTwilioSignature,
} from "../../src/channels/whatsapp/verify.js";
import { createLogger } from "../../src/log.js";
import { inboundText, signTwilioRequest, type TwilioParams, toFormBody } from "../fakes/twilio.js";

const TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed";
const ACCOUNT = "AC0123456789abcdef0123456789abcdef";
const CONFIG = { account_sid: ACCOUNT, auth_token: TOKEN };
const PUBLIC = "https://bridge.example.com";
const PATH = "/webhooks/acme/whatsapp";

function capturingLogger() {
  const lines: string[] = [];
  return { log: createLogger("info", { write: (line: string) => void lines.push(line) }), lines };
}

/** A request as the app sees it after a proxy: internal address and scheme, whatever headers the proxy set. */
function request(
  params: TwilioParams,
  options: {
    signature?: string;
    headers?: Record<string, string>;
    url?: string;
    publicUrl?: string;
    body?: string;
  },
): WebhookRequest {
  const headers = new Headers({
    "content-type": "application/x-www-form-urlencoded; charset=utf-8",
    host: "10.0.0.5:3000",
    ...options.headers,
  });
  if (options.signature) headers.set("x-twilio-signature", options.signature);
  return {
    rawBody: Buffer.from(options.body ?? toFormBody(params)),
    headers,
    url: new URL(options.url ?? `http://10.0.0.5:3000${PATH}`),
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
  };
}

/** What `call` threw; undefined when it returned. */
function errorOf(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  return undefined;
}

function verify(req: WebhookRequest, config = CONFIG) {
  const { log, lines } = capturingLogger();
  const error = errorOf(() => verifyTwilioSignature(req, config, log, "acme"));
  return { error, lines };
}

const INVALID = { status: 403, message: "invalid X-Twilio-Signature" };

const params = inboundText("Grüße 👋", { profileName: "Zoë", accountSid: ACCOUNT });

describe("twilioCalledUrl", () => {
  it.each<[string, Parameters<typeof request>[1], string]>([
    [
      "public URL + path + query",
      { publicUrl: PUBLIC, url: `http://10.0.0.5:3000${PATH}?a=1&b=2` },
      `${PUBLIC}${PATH}?a=1&b=2`,
    ],
    ["public URL with a trailing slash", { publicUrl: `${PUBLIC}/` }, `${PUBLIC}${PATH}`],
    ["public URL with trailing slashes", { publicUrl: `${PUBLIC}//` }, `${PUBLIC}${PATH}`],
    ["public URL with a path prefix", { publicUrl: `${PUBLIC}/bridge` }, `${PUBLIC}/bridge${PATH}`],
    [
      "forwarded proto and host",
      { headers: { "x-forwarded-proto": "https", "x-forwarded-host": "bridge.example.com" } },
      `https://bridge.example.com${PATH}`,
    ],
    [
      "first of chained forwarded values",
      {
        headers: {
          "x-forwarded-proto": "https, http",
          "x-forwarded-host": "bridge.example.com, lb.internal:8080",
        },
      },
      `https://bridge.example.com${PATH}`,
    ],
    [
      "first of chained forwarded values, spaces around the commas",
      {
        headers: {
          "x-forwarded-proto": "https , http",
          "x-forwarded-host": "[2001:db8::1]:8443 , lb.internal:8080",
        },
      },
      `https://[2001:db8::1]:8443${PATH}`,
    ],
    [
      "forwarded proto with the Host header",
      { headers: { "x-forwarded-proto": "https" } },
      `https://10.0.0.5:3000${PATH}`,
    ],
    ["Host header and the request's scheme", {}, `http://10.0.0.5:3000${PATH}`],
  ])("%s", (_name, options, expected) => {
    expect(twilioCalledUrl(request(params, options)).url).toBe(expected);
  });
});

describe("verifyTwilioSignature", () => {
  it("accepts a signature for the public URL on an internal address", () => {
    const signature = signTwilioRequest(TOKEN, `${PUBLIC}${PATH}?tenant=1`, params);
    const req = request(params, {
      signature,
      publicUrl: PUBLIC,
      url: `http://127.0.0.1:3000${PATH}?tenant=1`,
    });
    expect(verify(req).error).toBeUndefined();
  });

  it("accepts a signature for the public URL behind a proxy that changed host and scheme", () => {
    const signature = signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, params);
    const req = request(params, {
      signature,
      headers: { "x-forwarded-proto": "https", "x-forwarded-host": "bridge.example.com" },
    });
    expect(verify(req).error).toBeUndefined();
  });

  it("accepts a signature over a standard port Twilio kept (SDK port variants)", () => {
    const signature = signTwilioRequest(TOKEN, `https://bridge.example.com:443${PATH}`, params);
    expect(verify(request(params, { signature, publicUrl: PUBLIC })).error).toBeUndefined();
  });

  it("accepts a signature over the lower-case URL when PUBLIC_URL or the proxy spells it in capitals", () => {
    const signature = signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, params);
    expect(
      verify(request(params, { signature, publicUrl: "https://Bridge.Example.COM" })).error,
    ).toBeUndefined();
    const proxied = request(params, {
      signature,
      headers: { "x-forwarded-proto": "HTTPS", "x-forwarded-host": "BRIDGE.example.com" },
    });
    expect(verify(proxied).error).toBeUndefined();
  });

  it("rejects a signature for another URL with 403 and logs the URL it checked, never the secrets", () => {
    const signature = signTwilioRequest(TOKEN, `https://old-host.example.com${PATH}`, params);
    const { error, lines } = verify(request(params, { signature, publicUrl: PUBLIC }));
    expect(error).toMatchObject({ ...INVALID, code: "PERMISSION_DENIED" });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      level: "warn",
      tenant: "acme",
      url: `${PUBLIC}${PATH}`,
      msg: "Twilio signature does not match; check PUBLIC_URL and proxy headers",
    });
    expect(lines[0]).not.toContain(TOKEN);
    expect(lines[0]).not.toContain(signature);
  });

  it("rejects a tampered parameter", () => {
    const signature = signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, params);
    const req = request(params, {
      signature,
      publicUrl: PUBLIC,
      body: toFormBody({ ...params, Body: "Grüße 👋!" }),
    });
    expect(verify(req).error).toMatchObject(INVALID);
  });

  it("rejects an extra parameter the signature did not cover", () => {
    const signature = signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, params);
    const req = request(params, { signature, publicUrl: PUBLIC, body: `${toFormBody(params)}&Injected=1` });
    expect(verify(req).error).toMatchObject(INVALID);
  });

  it("accepts a repeated parameter signed as the SDK signs it: its distinct values sorted", () => {
    const body = `${toFormBody(params)}&Tag=b&Tag=a&Tag=b`;
    const signature = twilio.getExpectedTwilioSignature(TOKEN, `${PUBLIC}${PATH}`, {
      ...params,
      Tag: ["b", "a", "b"],
    });
    expect(verify(request(params, { signature, publicUrl: PUBLIC, body })).error).toBeUndefined();
    // The distinct values in the order posted, run together as "TagbTaga": not what Twilio signs.
    const unsorted = signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, { ...params, Tag: "bTaga" });
    expect(verify(request(params, { signature: unsorted, publicUrl: PUBLIC, body })).error).toMatchObject(
      INVALID,
    );
  });

  const MALFORMED = "X-Twilio-Signature is not a base64 HMAC-SHA1 (28 characters)";
  it.each<[string, (valid: string) => string]>([
    ["a character short", (valid) => valid.slice(1)],
    ["without its padding", (valid) => valid.slice(0, -1)],
    ["after other text", (valid) => `x${valid}`],
    ["followed by other text", (valid) => `${valid}x`],
    ["twice", (valid) => `${valid},${valid}`],
    ["an HMAC-SHA256", () => signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, params, "sha256")],
  ])("rejects a signature %s with 403 from the headers alone", (_, malformed) => {
    const signature = malformed(signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, params));
    const req = request(params, { signature, publicUrl: PUBLIC });
    const expected = { status: 403, message: MALFORMED };
    expect(errorOf(() => precheckTwilioRequest(req.headers))).toMatchObject(expected);
    expect(verify(req).error).toMatchObject(expected);
  });

  it("rejects a missing header with 403", () => {
    expect(verify(request(params, { publicUrl: PUBLIC })).error).toMatchObject({
      status: 403,
      message: "missing X-Twilio-Signature header",
    });
  });

  it("rejects a body that is not a form with 400", () => {
    const signature = signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, params);
    const req = request(params, {
      signature,
      publicUrl: PUBLIC,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(params),
    });
    expect(verify(req).error).toMatchObject({
      status: 400,
      message: "expected application/x-www-form-urlencoded, got application/json",
    });
  });

  it("rejects an undecodable form body with 400", () => {
    const req = request(params, {
      signature: signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, params),
      publicUrl: PUBLIC,
      body: "Body=%E0%A4%A",
    });
    expect(verify(req).error).toMatchObject({ status: 400 });
  });
});

describe("verifyTwilioSignature: the URLs a signature may be for, as the Twilio SDK's validator tries them", () => {
  // Without and with a port: the one in the URL, else the scheme's default.
  it.each<[string, string, boolean]>([
    ["https://bridge.example.com:8443", "https://bridge.example.com:8443", true],
    ["https://bridge.example.com:8443", "https://bridge.example.com", true],
    ["https://bridge.example.com:8443", "https://bridge.example.com:443", false],
    ["https://bridge.example.com", "https://bridge.example.com:80", false],
    ["http://bridge.example.com", "http://bridge.example.com:80", true],
    ["http://bridge.example.com", "http://bridge.example.com:443", false],
    ["HTTP://bridge.example.com", "http://bridge.example.com:80", true],
    ["https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443", true],
    ["https://[2001:db8::1]:8443", "https://[2001:db8::1]", true],
    ["https://[2001:db8::]", "https://[2001:db8::]:443", true],
    ["https://[2001:db8::]:8443", "https://[2001:db8::]", true],
    ["https://[2001:db8::]:8443", "https://[2001:db8:", false],
  ])("PUBLIC_URL %s, signed for %s: accepted %s", (publicUrl, signedUrl, accepted) => {
    const signature = signTwilioRequest(TOKEN, `${signedUrl}${PATH}`, params);
    expect(twilio.validateRequest(TOKEN, signature, `${publicUrl}${PATH}`, params)).toBe(accepted);
    const { error } = verify(request(params, { signature, publicUrl }));
    if (accepted) expect(error).toBeUndefined();
    else expect(error).toMatchObject(INVALID);
  });

  it("accepts a signature without the port a proxy forwarded with an IPv6 host", () => {
    const signature = signTwilioRequest(TOKEN, `https://[2001:db8::1]${PATH}`, params);
    const headers = { "x-forwarded-proto": "https", "x-forwarded-host": "[2001:db8::1]:8443, 10.0.0.1" };
    expect(verify(request(params, { signature, headers })).error).toBeUndefined();
  });

  it("tries a URL that does not start with a scheme (a proxy's odd X-Forwarded-Proto) only as it is", () => {
    const headers = { "x-forwarded-proto": "_https", "x-forwarded-host": "bridge.example.com" };
    const signedFor = (url: string) =>
      request(params, { signature: signTwilioRequest(TOKEN, url, params), headers });
    expect(verify(signedFor(`_https://bridge.example.com${PATH}`)).error).toBeUndefined();
    expect(verify(signedFor(`https://bridge.example.com${PATH}`)).error).toMatchObject(INVALID);
    expect(verify(signedFor(`_https://bridge.example.com:443${PATH}`)).error).toMatchObject(INVALID);
  });
});

describe("verifyTwilioSignature: what a signature does not cover", () => {
  const signedFor = (p: TwilioParams) => signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, p);
  const NOT_A_MESSAGE_SID = "MessageSid is not a Twilio message SID (SM or MM and 32 hex digits)";

  it("refuses a form of more than 256 parameters before computing any signature (no mismatch logged)", () => {
    const body = "a&".repeat(40_000);
    const { error, lines } = verify(
      request(params, { signature: signedFor(params), publicUrl: PUBLIC, body }),
    );
    expect(error).toMatchObject({ status: 400, code: "TOO_MANY_PARAMETERS" });
    expect(lines).toEqual([]);
  });

  it("accepts 256 parameters", () => {
    const many: TwilioParams = { ...params };
    for (let i = Object.keys(many).length; i < 256; i++) many[`X${i}`] = String(i);
    expect(Object.keys(many)).toHaveLength(256);
    expect(verify(request(many, { signature: signedFor(many), publicUrl: PUBLIC })).error).toBeUndefined();
  });

  // The signature covers names and values run together: moving the next parameter into MessageSid's value
  // keeps it valid while the message id, the dedupe key, changes. A captured request replayed that way
  // would be a new message.
  it("refuses a captured request whose MessageSid absorbed the next parameter (same signature)", () => {
    const { MessageType, ...rest } = params;
    const moved = { ...rest, MessageSid: `${params.MessageSid}MessageType${MessageType}` };
    const signature = signedFor(params);
    expect(signedFor(moved)).toBe(signature);
    const { error } = verify(request(moved, { signature, publicUrl: PUBLIC }));
    expect(error).toMatchObject({ status: 400, message: NOT_A_MESSAGE_SID });
  });

  it.each<[string, string | undefined, boolean]>([
    ["an SM sid", `SM${"0a".repeat(16)}`, true],
    ["an MM sid in upper-case hex", `MM${"0A".repeat(16)}`, true],
    ["a sid after other text", `IDSM${"0a".repeat(16)}`, false],
    ["a sid followed by other text", `SM${"0a".repeat(16)}0`, false],
    ["a sid a digit short", `SM${"0a".repeat(16)}`.slice(0, -1), false],
    ["another kind of sid", `ME${"0a".repeat(16)}`, false],
    ["no MessageSid", undefined, false],
  ])("checks a signed MessageSid's shape: %s", (_, messageSid, accepted) => {
    const { MessageSid, ...rest } = params;
    const form = messageSid === undefined ? rest : { ...rest, MessageSid: messageSid };
    const { error } = verify(request(form, { signature: signedFor(form), publicUrl: PUBLIC }));
    if (accepted) expect(error).toBeUndefined();
    else expect(error).toMatchObject({ status: 400, message: NOT_A_MESSAGE_SID });
  });

  it("refuses a correctly signed request for another account, and a repeated MessageSid", () => {
    const other = { ...params, AccountSid: `AC${"9".repeat(32)}` };
    expect(verify(request(other, { signature: signedFor(other), publicUrl: PUBLIC })).error).toMatchObject({
      status: 403,
      message: "AccountSid is not this tenant's Twilio account",
    });
    const body = `${toFormBody(params)}&MessageSid=${params.MessageSid}`;
    const repeated = request(params, { publicUrl: PUBLIC, body });
    repeated.headers.set(
      "x-twilio-signature",
      twilio.getExpectedTwilioSignature(TOKEN, `${PUBLIC}${PATH}`, { ...params }),
    );
    expect(verify(repeated).error).toMatchObject({ status: 400, message: NOT_A_MESSAGE_SID });
  });

  it("agrees with the Twilio SDK's validateRequest on signed, re-signed and tampered forms", () => {
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,12}$/);
    const value = fc.string({ maxLength: 20, unit: "grapheme" });
    const urls = [
      `${PUBLIC}${PATH}`,
      `https://bridge.example.com:443${PATH}`,
      `https://bridge.example.com:8443${PATH}`,
      `https://other.example.com${PATH}`,
    ];
    fc.assert(
      fc.property(
        fc.dictionary(name, value, { maxKeys: 12 }),
        fc.constantFrom(...urls),
        fc.boolean(),
        (extra, signedUrl, tamper) => {
          const form: TwilioParams = { ...params, ...extra, AccountSid: ACCOUNT };
          const signature = signTwilioRequest(TOKEN, signedUrl, form);
          const received = tamper ? { ...form, Body: `${form.Body}!` } : form;
          const ours = verify(request(received, { signature, publicUrl: PUBLIC })).error === undefined;
          const sdk = twilio.validateRequest(TOKEN, signature, `${PUBLIC}${PATH}`, received);
          expect(ours).toBe(sdk);
        },
      ),
      { numRuns: 300 },
    );
  });
});
