import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuickchatFake } from "../fakes/quickchat.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { LoopbackChannel, loopbackHeaders, loopbackTenant } from "../support/loopback-channel.js";

/**
 * Sends a request whose declared body is `bodyBytes` long on a raw socket, but only its first KB before the
 * answer; then the rest of the body, as a client that writes while reading does. Resolves with the answer's
 * head and how the connection ended: `closed` after the client sent everything, or the socket error.
 */
function answerBeforeBody(url: string, path: string, bodyBytes: number, headers: Record<string, string>) {
  const { hostname, port } = new URL(url);
  return new Promise<{ head: string; ended: "closed" | string }>((resolve) => {
    const socket = connect(Number(port), hostname);
    let received = "";
    let head = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (head || !received.includes("\r\n\r\n")) return;
      head = received.slice(0, received.indexOf("\r\n\r\n"));
      // The answer came before the body: send the rest of it, then end.
      socket.write(Buffer.alloc(bodyBytes - 1024, 0x78));
      socket.end();
    });
    socket.on("error", (err: NodeJS.ErrnoException) => resolve({ head, ended: err.code ?? err.message }));
    socket.on("close", () => resolve({ head, ended: "closed" }));
    const lines = Object.entries({ ...headers, "content-length": String(bodyBytes) }).map(
      ([name, value]) => `${name}: ${value}`,
    );
    socket.write(`POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\n${lines.join("\r\n")}\r\n\r\n`);
    socket.write(Buffer.alloc(1024, 0x78));
  });
}

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
