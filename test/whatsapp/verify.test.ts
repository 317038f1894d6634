import fc from "fast-check";
import twilio from "twilio";
import { describe, expect, it } from "vitest";
import type { WebhookRequest } from "../../src/channels/types.js";
import { twilioCalledUrl, verifyTwilioSignature } from "../../src/channels/whatsapp/verify.js";
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

function verify(req: WebhookRequest, config = CONFIG) {
  const { log, lines } = capturingLogger();
  let error: unknown;
  try {
    verifyTwilioSignature(req, config, log, "acme");
  } catch (e) {
    error = e;
  }
  return { error, lines };
}

const params = inboundText("Grüße 👋", { profileName: "Zoë", accountSid: ACCOUNT });

describe("twilioCalledUrl", () => {
  it.each<[string, Parameters<typeof request>[1], string]>([
    [
      "public URL + path + query",
      { publicUrl: PUBLIC, url: `http://10.0.0.5:3000${PATH}?a=1&b=2` },
      `${PUBLIC}${PATH}?a=1&b=2`,
    ],
    ["public URL with a trailing slash", { publicUrl: `${PUBLIC}/` }, `${PUBLIC}${PATH}`],
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
    expect(error).toMatchObject({ status: 403, code: "PERMISSION_DENIED" });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: "warn", tenant: "acme", url: `${PUBLIC}${PATH}` });
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
    expect(verify(req).error).toMatchObject({ status: 403 });
  });

  it("rejects an extra parameter the signature did not cover", () => {
    const signature = signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, params);
    const req = request(params, { signature, publicUrl: PUBLIC, body: `${toFormBody(params)}&Injected=1` });
    expect(verify(req).error).toMatchObject({ status: 403 });
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
    expect(verify(req).error).toMatchObject({ status: 400 });
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

describe("verifyTwilioSignature: what a signature does not cover", () => {
  const signedFor = (p: TwilioParams) => signTwilioRequest(TOKEN, `${PUBLIC}${PATH}`, p);

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
    expect(error).toMatchObject({ status: 400, message: expect.stringMatching(/MessageSid/) });
  });

  it("refuses a correctly signed request for another account, and a repeated MessageSid", () => {
    const other = { ...params, AccountSid: `AC${"9".repeat(32)}` };
    expect(verify(request(other, { signature: signedFor(other), publicUrl: PUBLIC })).error).toMatchObject({
      status: 403,
      message: expect.stringMatching(/AccountSid/),
    });
    const body = `${toFormBody(params)}&MessageSid=${params.MessageSid}`;
    const repeated = request(params, { publicUrl: PUBLIC, body });
    repeated.headers.set(
      "x-twilio-signature",
      twilio.getExpectedTwilioSignature(TOKEN, `${PUBLIC}${PATH}`, { ...params }),
    );
    expect(verify(repeated).error).toMatchObject({ status: 400 });
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
