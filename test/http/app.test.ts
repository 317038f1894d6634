import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuickchatFake } from "../fakes/quickchat.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { LoopbackChannel, loopbackHeaders, loopbackTenant } from "../support/loopback-channel.js";
import { answerBeforeBody } from "../support/raw-socket.js";

describe("HTTP surface", () => {
  let quickchat: QuickchatFake;
  let bridge: TestBridge;

  beforeAll(async () => {
    quickchat = await new QuickchatFake({ scenarios: {} }).start();
    bridge = await startTestBridge({
      tenants: [loopbackTenant("acme", quickchat.url)],
      adapters: { telegram: new LoopbackChannel() },
      worker: false,
    });
  });
  afterAll(async () => {
    await bridge.stop();
    await quickchat.close();
  });

  it("answers /healthz and /readyz, with a request id", async () => {
    const health = await fetch(`${bridge.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get("x-request-id")).toBeTruthy();
    const ready = await fetch(`${bridge.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it("rejects bodies over 1 MiB with 413 in the JSON error shape", async () => {
    const response = await bridge.post(
      "/webhooks/acme/telegram",
      "x".repeat(1024 * 1024 + 1),
      loopbackHeaders(),
    );
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({
      errors: { root: [{ code: "PAYLOAD_TOO_LARGE", message: expect.stringContaining("1048576") }] },
    });
  });

  it("rejects a chunked body (no Content-Length) once it passes 1 MiB", async () => {
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 17) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const response = await fetch(`${bridge.url}/webhooks/acme/telegram`, {
      method: "POST",
      body,
      headers: loopbackHeaders(),
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(413);
  });

  it("accepts a chunked body under 1 MiB, read after its headers are checked", async () => {
    const update = new TextEncoder().encode(JSON.stringify({ id: "c1", thread: "t", user: "u", text: "hi" }));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(update.slice(0, 10));
        controller.enqueue(update.slice(10));
        controller.close();
      },
    });
    const response = await fetch(`${bridge.url}/webhooks/acme/telegram`, {
      method: "POST",
      body,
      headers: { ...loopbackHeaders(), "content-type": "application/json" },
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(200);
  });

  // A keep-alive client must not reuse a connection whose request body the service did not read: it ends
  // the connection, and lingers reading the rest so the client, still writing, gets the answer, not a reset.
  it("answers before reading the body with Connection: close, and lets the client finish sending", async () => {
    const unknown = await answerBeforeBody(bridge.url, "/webhooks/nobody/telegram", 900 * 1024, {
      "content-type": "application/json",
    });
    expect(unknown.head).toMatch(/^HTTP\/1\.1 404 /);
    expect(unknown.head.toLowerCase()).toContain("connection: close");
    expect(unknown.ended).toBe("closed");

    const oversized = await answerBeforeBody(bridge.url, "/webhooks/acme/telegram", 4 * 1024 * 1024, {
      ...loopbackHeaders(),
      "content-type": "application/json",
    });
    expect(oversized.head).toMatch(/^HTTP\/1\.1 413 /);
    expect(oversized.head.toLowerCase()).toContain("connection: close");
    expect(oversized.ended).toBe("closed");
  });

  it("keeps the connection of a request whose body was read", async () => {
    const response = await bridge.post("/webhooks/nobody/telegram", "", loopbackHeaders());
    expect(response.status).toBe(404);
    expect(response.headers.get("connection")).not.toBe("close");
  });

  it("answers 404 for unknown tenants, channels and routes", async () => {
    for (const path of ["/webhooks/nobody/telegram", "/webhooks/acme/slack", "/webhooks/acme/fax", "/nope"]) {
      const response = await bridge.post(path, "{}", loopbackHeaders());
      expect(response.status, path).toBe(404);
      const body = (await response.json()) as { errors: { root: { code: string }[] } };
      expect(body.errors.root[0]?.code).toBe("NOT_FOUND");
    }
  });

  it("answers 401 for a wrong secret and 400 for a malformed body", async () => {
    const wrong = await bridge.post("/webhooks/acme/telegram", "{}", { "x-test-secret": "nope" });
    expect(wrong.status).toBe(401);
    const malformed = await bridge.post("/webhooks/acme/telegram", "{not json", loopbackHeaders());
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { errors: { root: { code: string }[] } }).errors.root[0]?.code).toBe(
      "BAD_REQUEST",
    );
  });
});

describe("shutdown", () => {
  it("answers new webhooks and /readyz 503 while draining, so channels redeliver and balancers stop sending", async () => {
    const quickchat = await new QuickchatFake({ scenarios: { "acme-scenario": "acme-token" } }).start();
    quickchat.latencyMs = 1500;
    const channel = new LoopbackChannel();
    const bridge = await startTestBridge({
      tenants: [loopbackTenant("acme", quickchat.url)],
      adapters: { telegram: channel },
    });
    const body = (id: string) => JSON.stringify({ id, thread: id, user: "u", text: "hi" });
    expect((await bridge.post("/webhooks/acme/telegram", body("m1"), loopbackHeaders())).status).toBe(200);
    await waitFor(() => quickchat.calls.length === 1);
    expect((await fetch(`${bridge.url}/readyz`)).status).toBe(200);

    const stopped = bridge.stop();
    const late = await bridge.post("/webhooks/acme/telegram", body("m2"), loopbackHeaders());
    expect(late.status).toBe(503);
    const ready = await fetch(`${bridge.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({
      errors: { root: [{ code: "UNAVAILABLE", message: "shutting down" }] },
    });
    await stopped;
    // The message claimed before the signal was finished, not dropped.
    expect(channel.delivered).toHaveLength(1);
    await quickchat.close();
  });
});

// Whatever the headers alone refute is answered before the body is read: the client here sends headers only
// and holds the body, so an answer at all proves that no byte of it was needed (nor read, nor hashed).
describe("before the body is read", () => {
  let quickchat: QuickchatFake;
  let bridge: TestBridge;
  const WELL_SHAPED_TWILIO_SIGNATURE = `${"A".repeat(27)}=`;

  beforeAll(async () => {
    quickchat = await new QuickchatFake({ scenarios: {} }).start();
    bridge = await startTestBridge({
      tenants: [
        {
          id: "acme",
          quickchat: { scenario_id: "s", token: "t", base_url: quickchat.url },
          telegram: { bot_token: "123:abc", webhook_secret: "the-webhook-secret" },
          slack: { signing_secret: "the-signing-secret", bot_token: "xoxb-1" },
          whatsapp: { account_sid: `AC${"1".repeat(32)}`, auth_token: "the-auth-token", from: "whatsapp:+1" },
        },
      ],
      worker: false,
    });
  });
  afterAll(async () => {
    await bridge.stop();
    await quickchat.close();
  });

  const now = () => String(Math.floor(Date.now() / 1000));
  const json = { "content-type": "application/json" };
  const form = { "content-type": "application/x-www-form-urlencoded" };

  it.each<[string, string, Record<string, string>, number, RegExp]>([
    ["Telegram without its secret", "telegram", json, 401, /missing X-Telegram-Bot-Api-Secret-Token/],
    [
      "Telegram with a wrong secret",
      "telegram",
      { ...json, "x-telegram-bot-api-secret-token": "guess" },
      401,
      /wrong X-Telegram-Bot-Api-Secret-Token/,
    ],
    ["Slack without signature headers", "slack", json, 401, /missing X-Slack-Signature/],
    [
      "Slack with a stale timestamp",
      "slack",
      { ...json, "x-slack-request-timestamp": "1531420618", "x-slack-signature": `v0=${"0".repeat(64)}` },
      401,
      /more than 5 minutes off/,
    ],
    [
      "Slack with a signature that is not v0= and 64 hex digits",
      "slack",
      { ...json, "x-slack-request-timestamp": now(), "x-slack-signature": "v0=zz" },
      401,
      /not v0= and 64 hex digits/,
    ],
    ["WhatsApp without a signature", "whatsapp", form, 403, /missing X-Twilio-Signature/],
    [
      "WhatsApp with a signature that is not 28 base64 characters",
      "whatsapp",
      { ...form, "x-twilio-signature": "0123456789abcdef".repeat(4) },
      403,
      /not a base64 HMAC-SHA1/,
    ],
    [
      "WhatsApp with a well-shaped signature on a body that is not a form",
      "whatsapp",
      { ...json, "x-twilio-signature": WELL_SHAPED_TWILIO_SIGNATURE },
      400,
      /expected application\/x-www-form-urlencoded/,
    ],
    [
      "a status callback to Telegram (no such route), with the right secret",
      "telegram/status",
      { ...json, "x-telegram-bot-api-secret-token": "the-webhook-secret" },
      404,
      /telegram has no status callbacks/,
    ],
    [
      "a status callback to Slack (no such route), with well-formed signature headers",
      "slack/status",
      { ...json, "x-slack-request-timestamp": now(), "x-slack-signature": `v0=${"0".repeat(64)}` },
      404,
      /slack has no status callbacks/,
    ],
  ])("%s", async (_name, channel, headers, status, reason) => {
    const answer = await answerBeforeBody(bridge.url, `/webhooks/acme/${channel}`, 80 * 1024, headers, {
      sentFirst: 0,
    });
    expect(answer.head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(answer.head.toLowerCase()).toContain("connection: close");
    expect(answer.ended).toBe("closed");
    expect(answer.body).toMatch(reason);
    const logged = bridge.logs.map((line) => JSON.parse(line) as { msg?: string });
    expect(logged.some((entry) => entry.msg?.includes("Twilio signature does not match"))).toBe(false);
  });

  it("answers a chunked body's bad signature before the first chunk, as a declared length's", async () => {
    const answer = await answerBeforeBody(
      bridge.url,
      "/webhooks/acme/whatsapp",
      80 * 1024,
      { ...form, "x-twilio-signature": "forged" },
      { sentFirst: 0, chunked: true },
    );
    expect(answer.head).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer.head.toLowerCase()).toContain("connection: close");
    expect(answer.ended).toBe("closed");
  });

  it("still refuses a chunked body past 1 MiB with 413 once its headers pass", async () => {
    const answer = await answerBeforeBody(
      bridge.url,
      "/webhooks/acme/telegram",
      2 * 1024 * 1024,
      { ...json, "x-telegram-bot-api-secret-token": "the-webhook-secret" },
      { sentFirst: 1024 * 1024 + 1, chunked: true },
    );
    expect(answer.head).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.body).toMatch(/PAYLOAD_TOO_LARGE/);
    expect(answer.ended).toBe("closed");
  });

  it("states the reason in the JSON error shape", async () => {
    const response = await bridge.post("/webhooks/acme/whatsapp/status", "a&".repeat(1000), {
      ...form,
      "x-twilio-signature": "not-base64!",
    });
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({
      errors: {
        root: [{ code: "PERMISSION_DENIED", message: expect.stringMatching(/not a base64 HMAC-SHA1/) }],
      },
    });
  });
});
