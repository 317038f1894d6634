/**
 * grammY's Bot API calls over undici (`telegramFetch`): the cases the Bot API fake does not produce, against a
 * bare HTTP server that answers as a proxy in front of the Bot API might, as a broken one might, or not at all.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Api, HttpError } from "grammy";
import { afterEach, describe, expect, it } from "vitest";
import { telegramFetch } from "../../src/channels/telegram/fetch.js";
import { classifySendError } from "../../src/channels/telegram/outbound.js";
import { setTelegramWebhook, TelegramCallError } from "../../src/channels/telegram/webhook.js";

const TOKEN = "7012345678:AAHfakeTokenForTests_0123456789abcdef";

let close: (() => void) | undefined;
afterEach(() => close?.());

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  close = () => {
    server.closeAllConnections();
    server.close();
  };
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("Bot API calls over undici", () => {
  it("sends grammY's JSON body and hands back the JSON answer", async () => {
    let received: { url?: string; type?: string; body: string } = { body: "" };
    const apiRoot = await serve((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        received = { url: req.url, type: req.headers["content-type"], body };
        res.setHeader("content-type", "application/json");
        res.end(
          JSON.stringify({ ok: true, result: { message_id: 7, date: 0, chat: { id: 1, type: "private" } } }),
        );
      });
    });
    const api = new Api(TOKEN, { apiRoot, fetch: telegramFetch });
    const sent = await api.sendMessage(1, "hi <b>there</b>", { parse_mode: "HTML" });
    expect(sent.message_id).toBe(7);
    expect(received.url).toBe(`/bot${TOKEN}/sendMessage`);
    expect(received.type).toBe("application/json");
    expect(JSON.parse(received.body)).toEqual({ chat_id: 1, text: "hi <b>there</b>", parse_mode: "HTML" });
  });

  it("a proxy's HTML error page is a network error to retry, not a crash", async () => {
    const apiRoot = await serve((_req, res) => {
      res.statusCode = 502;
      res.setHeader("content-type", "text/html");
      res.end("<html><body>502 Bad Gateway</body></html>");
    });
    const error = await new Api(TOKEN, { apiRoot, fetch: telegramFetch })
      .sendMessage(1, "hi")
      .catch((e) => e);
    expect(error).toBeInstanceOf(HttpError);
    // The status is kept: it tells a proxy's error page from a Bot API server's answer.
    expect(error.message).toBe("Network request for 'sendMessage' failed! (502: Bad Gateway)");
    expect(classifySendError(error)).toMatchObject({ kind: "retry", code: "network" });
  });

  it("a CLI call repeats the server's description on one line, control characters dropped and the token masked", async () => {
    const apiRoot = await serve((_req, res) => {
      res.statusCode = 400;
      res.setHeader("content-type", "application/json");
      const description = `Bad Request: bad webhook:\u001b[2J\r\nwrong ${TOKEN} ${"x".repeat(300)}`;
      res.end(JSON.stringify({ ok: false, error_code: 400, description }));
    });
    const config = { bot_token: TOKEN, webhook_secret: "s", api_root: apiRoot };
    const error = await setTelegramWebhook(config, "https://bridge.example.com/x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TelegramCallError);
    const message = (error as Error).message;
    expect(message).toMatch(
      new RegExp(
        `^setWebhook at ${apiRoot}/bot<token>/setWebhook answered 400 Bad Request: bad webhook: \\[2J wrong <token> x+$`,
      ),
    );
    expect(message.length).toBeLessThan(300);
  });

  it("grammY's timeout aborts the request itself, freeing its connection", async () => {
    let abandoned: Promise<void> = Promise.resolve();
    const apiRoot = await serve((_req, res) => {
      abandoned = new Promise((resolve) => res.on("close", () => resolve()));
    });
    const api = new Api(TOKEN, { apiRoot, timeoutSeconds: 1, fetch: telegramFetch });
    const error = await api.sendMessage(1, "hi").catch((e) => e);
    expect(error).toBeInstanceOf(HttpError);
    // grammY gives up on its own timer; without the signal the request would stay open for undici's 300 s.
    await expect(
      Promise.race([abandoned.then(() => "closed"), new Promise((r) => setTimeout(r, 2000, "open"))]),
    ).resolves.toBe("closed");
  });
});
