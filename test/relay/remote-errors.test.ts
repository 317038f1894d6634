/**
 * Errors recorded on messages carry the status and the remote error code, never the remote's body: a host a
 * tenant's settings point at (or one answering in its place) must not get its words into the inbox, the
 * admin API or the logs. The real SDKs against a loopback host answering every call with an error whose
 * text is a marker.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAdapters } from "../../src/channels/registry.js";
import { ChannelSendError, type DeliveryTarget } from "../../src/channels/types.js";
import { tenantSchema } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { createQuickchatClient, QuickchatError } from "../../src/quickchat/client.js";

const MARK = "REMOTE-BODY-c0ffee";

/** Every answer an error in the shape each API uses, its free text the marker. */
function hostileAnswer(url: string): { status: number; body: string } {
  if (url.includes("/bot")) {
    return {
      status: 400,
      body: JSON.stringify({ ok: false, error_code: 400, description: `Bad Request: ${MARK}` }),
    };
  }
  if (url.startsWith("/api/"))
    return { status: 200, body: JSON.stringify({ ok: false, error: `${MARK} oops` }) };
  if (url.startsWith("/2010-04-01/")) {
    return {
      status: 400,
      body: JSON.stringify({ code: 21211, message: `Invalid 'To': ${MARK}`, more_info: MARK, status: 400 }),
    };
  }
  if (url === "/json/chat") {
    return {
      status: 403,
      body: JSON.stringify({ errors: { root: [{ code: "PERMISSION_DENIED", message: MARK }] } }),
    };
  }
  return { status: 502, body: `<html><body>${MARK}</body></html>` };
}

/** A Slack post that succeeds, with warnings in the answer's metadata that the WebClient logs. */
const slackWarnings = () => ({
  status: 200,
  body: JSON.stringify({
    ok: true,
    channel: "C0WARNED",
    ts: "1700000000.000100",
    response_metadata: {
      warnings: ["missing_charset", `${MARK} warning`],
      messages: [`[ERROR] ${MARK} error`],
    },
  }),
});

const hostileTenant = (url: string) =>
  tenantSchema.parse({
    id: "hostile",
    quickchat: { scenario_id: "sc", token: "t" },
    telegram: { bot_token: "1:hostile", webhook_secret: "s", api_root: url },
    slack: { signing_secret: "s", bot_token: "xoxb-hostile", api_url: `${url}/api/` },
    whatsapp: {
      account_sid: `AC${"0".repeat(32)}`,
      auth_token: "t",
      from: "whatsapp:+15550002",
      api_base: url,
    },
  });

describe("remote error bodies are never repeated", () => {
  let server: Server;
  let url = "";

  beforeAll(async () => {
    server = createServer((req, res) => {
      let received = "";
      req.on("data", (chunk: Buffer) => {
        received += chunk.toString();
      });
      req.on("end", () => {
        const { status, body } = received.includes("C0WARNED")
          ? slackWarnings()
          : hostileAnswer(req.url ?? "");
        res.writeHead(status, { "content-type": body.startsWith("<") ? "text/html" : "application/json" });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it.each([
    ["telegram", { chat_id: 42 }, "400", "Telegram sendMessage answered 400"],
    ["slack", { channel: "C0HOSTILE" }, "unrecognised_error", "chat.postMessage: unrecognised_error"],
    [
      "whatsapp",
      { to: "whatsapp:+15550001", from: "whatsapp:+15550002" },
      "21211",
      "Twilio answered 400 (21211)",
    ],
  ] as const)("%s sends: status and code only", async (channel, route, code, message) => {
    const tenant = hostileTenant(url);
    const adapter = createAdapters({ log: createLogger("silent") })[channel]!;
    const target: DeliveryTarget<unknown> = {
      tenant,
      config: adapter.config(tenant),
      route,
      threadKey: "t",
      inboundId: "1",
    };
    const error = await adapter.send(target, "hello", { plain: false }).then(
      () => expect.fail("sent"),
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ChannelSendError);
    expect(error).toMatchObject({ kind: "permanent", code, message });
    expect(
      JSON.stringify({ message: (error as Error).message, code: (error as ChannelSendError).code }),
    ).not.toContain(MARK);
  });

  it.each([
    ["a plain-text 5xx", "/", "Quickchat answered 502"],
    ["a JSON error shape", "/json", "Quickchat answered 403 (PERMISSION_DENIED)"],
  ])("Quickchat: %s", async (_name, path, message) => {
    const client = createQuickchatClient({ timeoutMs: 2000 });
    const error = await client
      .chat({ scenario_id: "sc", token: "t", base_url: `${url}${path}` }, { text: "x", clientMetadata: {} })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(QuickchatError);
    expect((error as Error).message).toBe(message);
  });

  it("Slack: warnings the WebClient relays from an answer are logged only as codes", async () => {
    const logs: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        logs.push(chunk.toString());
        done();
      },
    });
    const tenant = hostileTenant(url);
    const adapter = createAdapters({ log: createLogger("debug", sink) }).slack!;
    const target: DeliveryTarget<unknown> = {
      tenant,
      config: adapter.config(tenant),
      route: { channel: "C0WARNED" },
      threadKey: "t",
      inboundId: "1",
    };
    await expect(adapter.send(target, "hello", { plain: false })).resolves.toMatchObject({
      channelMessageId: "1700000000.000100",
    });
    expect(logs.join("\n")).toContain("missing_charset");
    expect(logs.join("\n")).not.toContain(MARK);
  });
});
