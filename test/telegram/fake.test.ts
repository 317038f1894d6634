/** The Bot API fake speaks the wire protocol: these pin the parts the adapter tests rely on. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningFake, startFake } from "../fakes/server.js";
import { createTelegramFake, type TelegramFake } from "../fakes/telegram.js";
import { ALICE, BOT } from "./updates.js";

const TOKEN = "7012345678:AAHfakeTokenForTests_0123456789abcdef";
let fake: TelegramFake;
let server: RunningFake;

beforeAll(async () => {
  fake = createTelegramFake({ [TOKEN]: BOT });
  server = await startFake(fake.app);
});
afterAll(() => server.close());

const call = (token: string, method: string, init?: RequestInit) =>
  fetch(`${server.url}/bot${token}/${method}`, { method: "POST", ...init });

describe("Telegram Bot API fake", () => {
  it("answers an unknown token with Telegram's 401 body", async () => {
    const response = await call("1:wrong", "getMe");
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ ok: false, error_code: 401, description: "Unauthorized" });
  });

  it("answers an unknown method with 404", async () => {
    const response = await call(TOKEN, "sendPigeon");
    expect([response.status, await response.json()]).toEqual([
      404,
      { ok: false, error_code: 404, description: "Not Found" },
    ]);
  });

  it.each([
    [
      "form-urlencoded",
      new URLSearchParams({ chat_id: String(ALICE.id), text: "hi &amp; bye", parse_mode: "HTML" }),
    ],
    [
      "multipart",
      (() => {
        const form = new FormData();
        form.set("chat_id", String(ALICE.id));
        form.set("text", "hi &amp; bye");
        form.set("parse_mode", "HTML");
        form.set("reply_parameters", JSON.stringify({ message_id: 3, allow_sending_without_reply: true }));
        return form;
      })(),
    ],
  ])("reads %s bodies as Telegram does", async (_name, body) => {
    const response = await call(TOKEN, "sendMessage", { body });
    const json = (await response.json()) as { ok: boolean; result: { text: string; chat: { id: number } } };
    expect(json.ok).toBe(true);
    expect(json.result).toMatchObject({ text: "hi & bye", chat: { id: ALICE.id } });
    const recorded = fake.calls.at(-1)!;
    if (body instanceof FormData)
      expect(recorded.params.reply_parameters).toEqual({ message_id: 3, allow_sending_without_reply: true });
  });

  it.each([
    ["no chat_id", { text: "x" }, "Bad Request: chat_id is empty"],
    ["whitespace only", { chat_id: 1, text: "  \n " }, "Bad Request: message text is empty"],
    [
      "a bare ampersand",
      { chat_id: 1, text: "R&D", parse_mode: "HTML" },
      "Bad Request: can't parse entities",
    ],
    [
      "MarkdownV2",
      { chat_id: 1, text: "*x*", parse_mode: "MarkdownV2" },
      "Bad Request: unsupported parse_mode",
    ],
  ])("refuses %s with Telegram's description", async (_name, params, description) => {
    const response = await call(TOKEN, "sendMessage", {
      body: JSON.stringify(params),
      headers: { "content-type": "application/json" },
    });
    const json = (await response.json()) as { description: string };
    expect(response.status).toBe(400);
    expect(json.description.startsWith(description)).toBe(true);
  });

  it("records method, parameters and time of every call", async () => {
    const before = Date.now();
    await call(TOKEN, "sendChatAction", {
      body: JSON.stringify({ chat_id: ALICE.id, action: "typing" }),
      headers: { "content-type": "application/json" },
    });
    expect(fake.calls.at(-1)).toMatchObject({
      token: TOKEN,
      method: "sendChatAction",
      params: { chat_id: ALICE.id, action: "typing" },
      status: 200,
    });
    expect(fake.calls.at(-1)!.time).toBeGreaterThanOrEqual(before);
  });
});
