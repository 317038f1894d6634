import { Hono } from "hono";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { adapterOf } from "../../src/channels/registry.js";
import type { ChannelAdapter, DeliveryStatus, DeliveryTarget, Route } from "../../src/channels/types.js";
import type { WhatsappConfig } from "../../src/channels/whatsapp/config.js";
import { whatsapp } from "../../src/channels/whatsapp/index.js";
import { type TenantConfig, tenantSchema } from "../../src/config/schema.js";
import { HttpError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import {
  createTwilioFake,
  inboundText,
  outsideWindow,
  rateLimited,
  signTwilioRequest,
  type TwilioFake,
  toFormBody,
} from "../fakes/twilio.js";
import { sendError } from "../support/send-error.js";

const SID = "AC0123456789abcdef0123456789abcdef";
const TOKEN = "0123456789abcdef0123456789abcdef";
const USER = "whatsapp:+31612345678";
const OURS = "whatsapp:+14155238886";
const PUBLIC = "https://bridge.example.com";
const STATUS_URL = `${PUBLIC}/webhooks/acme/whatsapp/status`;

let fake: TwilioFake;
let api: RunningFake;
let lines: string[];
let adapter: ChannelAdapter<WhatsappConfig>;

function tenantWith(whatsapp: Partial<WhatsappConfig> = {}): TenantConfig {
  return tenantSchema.parse({
    id: "acme",
    quickchat: { scenario_id: "abc123", token: "qc-token" },
    whatsapp: { account_sid: SID, auth_token: TOKEN, from: OURS, api_base: api.url, ...whatsapp },
  });
}

function target(tenant: TenantConfig, route: Route = { to: USER, from: OURS, statusCallback: STATUS_URL }) {
  return {
    tenant,
    config: tenant.whatsapp!,
    route,
    threadKey: `${OURS}|${USER}`,
    inboundId: "1",
  } satisfies DeliveryTarget<WhatsappConfig>;
}

beforeAll(async () => {
  fake = createTwilioFake({ [SID]: TOKEN });
  api = await startFake(fake.app);
});
afterAll(() => api.close());
beforeEach(() => {
  fake.calls.length = 0;
  fake.accounts.set(SID, TOKEN);
  lines = [];
  adapter = adapterOf(
    whatsapp,
    whatsapp.createAdapter({ log: createLogger("info", { write: (l: string) => void lines.push(l) }) }),
  );
});

describe("config and ack", () => {
  it("uses the tenant's whatsapp block and answers only tenants that have one", () => {
    const tenant = tenantWith();
    expect(adapter.config(tenant)).toBe(tenant.whatsapp);
    expect(adapter.config({ ...tenant, whatsapp: undefined })).toBeUndefined();
  });

  it("acknowledges with empty TwiML", async () => {
    const response = adapter.ack();
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/xml");
    expect(await response.text()).toBe("<Response></Response>");
  });

  it("has no typing indicator", () => {
    expect(adapter.typing).toBeUndefined();
  });
});

describe("receive", () => {
  const body = toFormBody(inboundText("Hallo 👋", { from: USER, to: OURS, profileName: "Zoë" }));
  const headers = new Headers({ "content-type": "application/x-www-form-urlencoded" });

  it("routes delivery reports to the public URL", async () => {
    const tenant = tenantWith();
    const url = new URL("http://127.0.0.1:3000/webhooks/acme/whatsapp");
    const result = await adapter.receive(
      { rawBody: Buffer.from(body), headers, url, publicUrl: PUBLIC },
      tenant.whatsapp!,
      tenant,
    );
    expect(result).toMatchObject({
      type: "messages",
      messages: [
        {
          text: "Hallo 👋",
          sender: { name: "Zoë" },
          route: { to: USER, from: OURS, statusCallback: STATUS_URL },
        },
      ],
    });
  });

  it("without a public URL, routes them to the origin the proxy reported", async () => {
    const tenant = tenantWith();
    const proxied = new Headers(headers);
    proxied.set("x-forwarded-proto", "https");
    proxied.set("x-forwarded-host", "bridge.example.com");
    const url = new URL("http://10.0.0.5:3000/webhooks/acme/whatsapp");
    const result = await adapter.receive(
      { rawBody: Buffer.from(body), headers: proxied, url },
      tenant.whatsapp!,
      tenant,
    );
    expect(result.type === "messages" && result.messages[0]?.route.statusCallback).toBe(STATUS_URL);
  });

  it("stores nothing for a status callback posted to the message URL", async () => {
    const tenant = tenantWith();
    const status = toFormBody({ MessageSid: "SM1", MessageStatus: "sent", From: OURS, To: USER });
    const url = new URL("http://127.0.0.1:3000/webhooks/acme/whatsapp");
    const result = await adapter.receive(
      { rawBody: Buffer.from(status), headers, url, publicUrl: PUBLIC },
      tenant.whatsapp!,
      tenant,
    );
    expect(result).toEqual({
      type: "messages",
      messages: [],
      ignored: "status callback (sent) on the message webhook",
    });
  });
});

describe("send through the twilio SDK", () => {
  it("creates the message from our number to the user, with a status callback, and returns its sid", async () => {
    const sent = await adapter.send(target(tenantWith()), "*Bold* reply — naïve 日本 ✅", { plain: false });
    expect(sent.channelMessageId).toMatch(/^SM[0-9a-f]{32}$/);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]).toMatchObject({
      accountSid: SID,
      status: 201,
      sid: sent.channelMessageId,
      params: { To: USER, From: OURS, Body: "*Bold* reply — naïve 日本 ✅", StatusCallback: STATUS_URL },
    });
  });

  it("leaves out the status callback when the route has none", async () => {
    await adapter.send(target(tenantWith(), { to: USER, from: OURS }), "hi", { plain: false });
    expect(fake.calls[0]?.params).not.toHaveProperty("StatusCallback");
  });

  it("sends a 1600-character part", async () => {
    await adapter.send(target(tenantWith()), "x".repeat(1600), { plain: false });
    expect(fake.sent()).toHaveLength(1);
  });

  it("surfaces 429 once, as retry with Retry-After, without retrying by itself", async () => {
    fake.failNext(rateLimited(7));
    const error = await sendError(adapter.send(target(tenantWith()), "hi", { plain: false }));
    expect(error).toMatchObject({ kind: "retry", code: "20429", retryAfterMs: 7000 });
    expect(fake.calls).toHaveLength(1);
  });

  it("fails 63016 (outside the 24-hour window) permanently with its code", async () => {
    fake.failNext(outsideWindow());
    const error = await sendError(adapter.send(target(tenantWith()), "hi", { plain: false }));
    expect(error).toMatchObject({ kind: "permanent", code: "63016" });
    expect(fake.calls).toHaveLength(1);
  });

  it("fails an over-long body permanently (21617)", async () => {
    const error = await sendError(adapter.send(target(tenantWith()), "x".repeat(1601), { plain: false }));
    expect(error).toMatchObject({ kind: "permanent", code: "21617" });
  });

  it("fails wrong credentials permanently (20003) without logging the token", async () => {
    const error = await sendError(
      adapter.send(target(tenantWith({ auth_token: "wrong" })), "hi", { plain: false }),
    );
    expect(error).toMatchObject({ kind: "permanent", code: "20003" });
    expect(lines.join("")).not.toContain(TOKEN);
  });

  it("fails an account sid the SDK refuses permanently", async () => {
    // The tenant schema refuses it; this is the adapter's own guard, for a config that did not pass there.
    const tenant = tenantWith();
    const unchecked = { ...tenant, whatsapp: { ...tenant.whatsapp!, account_sid: "SK123" } };
    const error = await sendError(adapter.send(target(unchecked), "hi", { plain: false }));
    expect(error.kind).toBe("permanent");
  });

  it("picks up a rotated auth token", async () => {
    await adapter.send(target(tenantWith()), "one", { plain: false });
    fake.accounts.set(SID, "rotated-token");
    await adapter.send(target(tenantWith({ auth_token: "rotated-token" })), "two", { plain: false });
    expect(fake.calls.map((c) => c.status)).toEqual([201, 201]);
  });
});

describe("receiveStatus over HTTP", () => {
  let bridge: RunningFake;
  let received: DeliveryStatus[][];

  /** Stands in for the app's route: raw request in, adapter out. */
  beforeAll(async () => {
    const app = new Hono();
    app.post("/webhooks/acme/whatsapp/status", async (c) => {
      const tenant = tenantWith();
      const req = {
        rawBody: Buffer.from(await c.req.arrayBuffer()),
        headers: c.req.raw.headers,
        url: new URL(c.req.url),
        publicUrl: PUBLIC,
      };
      try {
        received.push(await adapter.receiveStatus!(req, tenant.whatsapp!, tenant));
        return c.body(null, 204);
      } catch (error) {
        if (error instanceof HttpError) return c.json({ message: error.message }, error.status);
        throw error;
      }
    });
    bridge = await startFake(app);
  });
  afterAll(() => bridge.close());
  beforeEach(() => {
    received = [];
  });

  it("reads status callbacks Twilio signed for the public URL", async () => {
    const { channelMessageId } = await adapter.send(target(tenantWith()), "hi", { plain: false });
    const deliverTo = `${bridge.url}/webhooks/acme/whatsapp/status`;
    expect((await fake.postStatus(channelMessageId, "delivered", { deliverTo })).status).toBe(204);
    expect(
      (await fake.postStatus(channelMessageId, "failed", { deliverTo, errorCode: "63016" })).status,
    ).toBe(204);
    expect(received).toEqual([
      [{ channelMessageId, status: "delivered" }],
      [{ channelMessageId, status: "failed", errorCode: "63016" }],
    ]);
  });

  it("rejects a forged status callback with 403", async () => {
    const params = { MessageSid: "SM1", MessageStatus: "delivered" };
    const response = await fetch(`${bridge.url}/webhooks/acme/whatsapp/status`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": signTwilioRequest("not-the-token", STATUS_URL, params),
      },
      body: toFormBody(params),
    });
    expect(response.status).toBe(403);
    expect(received).toEqual([]);
  });
});
