import { describe, expect, it } from "vitest";
import type { WebhookRequest } from "../../src/channels/types.js";
import { twilioCalledUrl, verifyTwilioSignature } from "../../src/channels/whatsapp/verify.js";
import { createLogger } from "../../src/log.js";
import { inboundText, signTwilioRequest, type TwilioParams, toFormBody } from "../fakes/twilio.js";

const TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed";
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

function verify(req: WebhookRequest, token = TOKEN) {
  const { log, lines } = capturingLogger();
  let error: unknown;
  try {
    verifyTwilioSignature(req, token, log, "acme");
  } catch (e) {
    error = e;
  }
  return { error, lines };
}

const params = inboundText("Grüße 👋", { profileName: "Zoë" });

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

  it("rejects a signature for another URL with 403 and logs the URL it checked, never the secrets", () => {
    const signature = signTwilioRequest(TOKEN, `https://old-host.example.com${PATH}`, params);
    const { error, lines } = verify(request(params, { signature, publicUrl: PUBLIC }));
    expect(error).toMatchObject({ status: 403, code: "PERMISSION_DENIED" });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 40, tenant: "acme", url: `${PUBLIC}${PATH}` });
    expect(lines[0]).not.toContain(TOKEN);
    expect(lines[0]).not.toContain(signature);
  });

  it("rejects a signature made with another token", () => {
    const signature = signTwilioRequest("another-tenants-token", `${PUBLIC}${PATH}`, params);
    expect(verify(request(params, { signature, publicUrl: PUBLIC })).error).toMatchObject({ status: 403 });
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
    const req = request(params, { signature: "x", publicUrl: PUBLIC, body: "Body=%E0%A4%A" });
    expect(verify(req).error).toMatchObject({ status: 400 });
  });
});
