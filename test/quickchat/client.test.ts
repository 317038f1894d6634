import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createQuickchatClient, QuickchatError } from "../../src/quickchat/client.js";
import { QuickchatFake } from "../fakes/quickchat.js";

const metadata = { channel: "telegram" };

describe("Quickchat client", () => {
  const fake = new QuickchatFake({ scenarios: { s1: "token-1" } });
  const client = createQuickchatClient({ timeoutMs: 300 });
  let silent: Server;
  let silentUrl: string;

  beforeAll(async () => {
    await fake.start();
    // Accepts requests and never answers.
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await fake.close();
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  });

  const config = (overrides = {}) => ({
    scenario_id: "s1",
    token: "token-1",
    base_url: fake.url,
    ...overrides,
  });

  it("sends the Bearer token and body, and returns the reply and conv_id", async () => {
    const first = await client.chat(config(), { text: "hi", clientMetadata: metadata });
    expect(first.convId).toMatch(/^conv-/);
    expect(first.reply).toContain("You said: <b>hi</b>");
    const next = await client.chat(config(), {
      text: "again",
      convId: first.convId,
      clientMetadata: metadata,
    });
    expect(next.convId).toBe(first.convId);
    expect(fake.calls.at(-1)).toMatchObject({
      authorization: "Bearer token-1",
      body: { scenario_id: "s1", text: "again", conv_id: first.convId, client_metadata: metadata },
    });
  });

  it("classifies an unknown conv_id, a 429 with Retry-After, a 5xx and a bad token", async () => {
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => expect.fail("resolved"),
        (err: unknown) => err as QuickchatError,
      );
    const stale = await failure(client.chat(config(), { text: "x", convId: "gone", clientMetadata: {} }));
    expect(stale).toMatchObject({ kind: "invalid_conversation", status: 400 });

    fake.fail(1, 429, "Too many requests", { "retry-after": "7" });
    const limited = await failure(client.chat(config(), { text: "x", clientMetadata: {} }));
    expect(limited).toMatchObject({ kind: "retryable", status: 429, retryAfterMs: 7000 });

    fake.fail(1, 502, "Bad gateway");
    expect(await failure(client.chat(config(), { text: "x", clientMetadata: {} }))).toMatchObject({
      kind: "retryable",
      status: 502,
    });

    const denied = await failure(client.chat(config({ token: "wrong" }), { text: "x", clientMetadata: {} }));
    expect(denied).toMatchObject({ kind: "misconfigured", status: 400 });
  });

  it("gives up on a Quickchat that does not answer within the timeout, as a retryable failure", async () => {
    const started = Date.now();
    const err = await client
      .chat(config({ base_url: silentUrl }), { text: "x", clientMetadata: {} })
      .catch((e) => e);
    expect(err).toBeInstanceOf(QuickchatError);
    expect(err).toMatchObject({ kind: "retryable", message: "Quickchat request failed: timed out" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("reports a refused connection as retryable, naming the error", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const err = await client
      .chat(config({ base_url: url }), { text: "x", clientMetadata: {} })
      .catch((e) => e);
    expect(err).toMatchObject({ kind: "retryable" });
    expect(err.message).toMatch(/^Quickchat request failed: .*ECONNREFUSED/);
  });

  it("treats a 200 that is not JSON, or has no conv_id, as retryable", async () => {
    const odd = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(req.url === "/a/chat" ? "<html>proxy page</html>" : '{"reply":"no id"}');
    });
    await new Promise<void>((resolve) => odd.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
    try {
      const notJson = await client
        .chat(config({ base_url: `${url}/a` }), { text: "x", clientMetadata: {} })
        .catch((e) => e);
      expect(notJson).toMatchObject({ kind: "retryable" });
      expect(notJson.message).toContain("not JSON");
      const noId = await client
        .chat(config({ base_url: `${url}/b` }), { text: "x", clientMetadata: {} })
        .catch((e) => e);
      expect(noId).toMatchObject({ kind: "retryable", message: "Quickchat answered 200 without a conv_id" });
    } finally {
      odd.closeAllConnections();
      await new Promise((resolve) => odd.close(resolve));
    }
  });
});
