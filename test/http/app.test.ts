import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuickchatFake } from "../fakes/quickchat.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { LoopbackChannel, loopbackHeaders, loopbackTenant } from "../support/loopback-channel.js";

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
  it("answers new webhooks 503 while draining, so channels redeliver them", async () => {
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

    const stopped = bridge.stop();
    const late = await bridge.post("/webhooks/acme/telegram", body("m2"), loopbackHeaders());
    expect(late.status).toBe(503);
    await stopped;
    // The message claimed before the signal was finished, not dropped.
    expect(channel.delivered).toHaveLength(1);
    await quickchat.close();
  });
});
