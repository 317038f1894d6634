/**
 * Webhook strings PostgreSQL cannot store (NUL, unpaired surrogates) are made storable before the inbox sees
 * them. Found by the fault suite's bad-input run: a validly signed update with `\u0000` or `\ud800` in its text
 * or sender name was answered 500, so the channel would redeliver it forever.
 */
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { storable } from "../../src/channels/shared.js";
import { telegram } from "../../src/channels/telegram/index.js";
import type { InboundMessage, WebhookRequest } from "../../src/channels/types.js";
import { whatsapp } from "../../src/channels/whatsapp/index.js";
import { tenantSchema } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { POSTGRES_URL } from "../support/db.js";

const BAD = "a\u0000b\ud800c\udfffd";
const CLEAN = "ab\ufffdc\ufffdd";
const unstorable = (s: string) => s.includes("\u0000") || /\p{Cs}/u.test(s);
const strings = (value: unknown): string[] =>
  typeof value === "string"
    ? [value]
    : value && typeof value === "object"
      ? Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)])
      : [];

const ACCOUNT_SID = `AC${"1".repeat(32)}`;
const tenant = tenantSchema.parse({
  id: "acme",
  quickchat: { scenario_id: "s", token: "t" },
  telegram: { bot_token: "1:x", webhook_secret: "secret" },
  whatsapp: { account_sid: ACCOUNT_SID, auth_token: "token", from: "whatsapp:+1" },
});
const log = createLogger("silent");
const request = (body: string, contentType: string): WebhookRequest => ({
  rawBody: Buffer.from(body),
  headers: new Headers({ "content-type": contentType }),
  url: new URL("http://bridge.test/webhooks/acme/x"),
});

describe("storable", () => {
  it("drops NUL, turns unpaired surrogates into U+FFFD and keeps paired ones, in every nested string", () => {
    const message = storable({
      threadKey: BAD,
      dedupeKey: "k",
      kind: "text",
      text: `${BAD} 🙂`,
      sender: { id: "1", name: BAD },
      route: { chat_id: 1, [BAD]: BAD, ok: true },
    } as InboundMessage);
    expect(message.text).toBe(`${CLEAN} 🙂`);
    expect(message.threadKey).toBe(CLEAN);
    expect(message.sender.name).toBe(CLEAN);
    expect(message.route).toEqual({ chat_id: 1, [CLEAN]: CLEAN, ok: true });
  });

  it("is applied by the adapters to what a webhook carries", async () => {
    const fromTelegram = await telegram.createAdapter({ log }).receive(
      request(
        JSON.stringify({
          update_id: 1,
          message: {
            message_id: 1,
            date: 1,
            from: { id: 5, is_bot: false, first_name: BAD },
            chat: { id: 5, type: "private", first_name: BAD },
            text: BAD,
          },
        }),
        "application/json",
      ),
      tenant.telegram!,
      tenant,
    );
    const fromWhatsapp = await whatsapp.createAdapter({ log }).receive(
      request(
        new URLSearchParams({
          MessageSid: "SM1",
          AccountSid: ACCOUNT_SID,
          From: "whatsapp:+315",
          To: "whatsapp:+1",
          WaId: "315",
          ProfileName: BAD,
          Body: BAD,
          NumMedia: "0",
        }).toString(),
        "application/x-www-form-urlencoded",
      ),
      tenant.whatsapp!,
      tenant,
    );
    for (const result of [fromTelegram, fromWhatsapp]) {
      expect(result.type).toBe("messages");
      const messages = result.type === "messages" ? result.messages : [];
      expect(messages).toHaveLength(1);
      expect(messages[0]!.text).toBe(CLEAN);
      expect(strings(messages).filter(unstorable)).toEqual([]);
    }
  });

  it.runIf(POSTGRES_URL)("PostgreSQL rejects the raw strings and accepts the storable ones", async () => {
    const sql = postgres(POSTGRES_URL!, { max: 1, onnotice: () => {} });
    try {
      await expect(sql`select ${BAD}::text`).rejects.toThrow();
      await expect(sql`select ${JSON.stringify({ name: "\ud800" })}::text::jsonb`).rejects.toThrow();
      const [row] =
        await sql`select ${CLEAN}::text as t, ${JSON.stringify({ name: CLEAN })}::text::jsonb as j`;
      expect(row).toEqual({ t: CLEAN, j: { name: CLEAN } });
    } finally {
      await sql.end();
    }
  });
});
