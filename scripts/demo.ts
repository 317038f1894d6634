/**
 * `npm run demo`: the whole pipeline on one machine without any accounts. Starts the real service in this
 * process on an in-memory PGlite database, with loopback fakes of Quickchat and the Telegram Bot API, sends
 * one Telegram update through the real webhook (with its secret token), waits for the bot's reply and prints
 * what each side saw. Exits 0 when the reply arrived, 1 otherwise.
 */
import type { Update } from "grammy/types";
import { startBridge } from "../src/bridge.js";
import { readSettings } from "../src/config/env.js";
import { tenantSchema } from "../src/config/schema.js";
import { createLogger, logDestination } from "../src/log.js";
import { QuickchatFake } from "../test/fakes/quickchat.js";
import { startFake } from "../test/fakes/server.js";
import { createTelegramFake, deliverUpdate } from "../test/fakes/telegram.js";
import { BOT } from "../test/telegram/updates.js";

const BOT_TOKEN = "7000000001:AAdemoTokenForTheLoopbackFake_000000";
const WEBHOOK_SECRET = "demo-webhook-secret";
const USER_TEXT = "Hi! When are you open, and how do I reach support?";
const QUICKCHAT_REPLY = [
  "<p>Hello <b>Alice</b>! We are open:</p>",
  "<ul><li>Monday to Friday: <b>9:00–18:00</b></li><li>Saturday: <i>10:00–14:00</i></li></ul>",
  '<p>For anything else, see <a href="https://example.com/support">our support page</a> &amp; say hi.</p>',
].join("");

const ALICE = { id: 123_456_789, is_bot: false, first_name: "Alice", username: "alice" } as const;

async function main(): Promise<void> {
  const quickchat = await new QuickchatFake({
    scenarios: { "demo-scenario": "demo-token" },
    reply: () => QUICKCHAT_REPLY,
  }).start();
  const telegram = createTelegramFake({ [BOT_TOKEN]: BOT });
  const telegramServer = await startFake(telegram.app);

  const settings = readSettings({
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: "memory://",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    POLL_INTERVAL_MS: "200",
    SHUTDOWN_TIMEOUT_SECONDS: "5",
  });
  const bridge = await startBridge({
    config: {
      settings,
      tenants: [
        tenantSchema.parse({
          id: "demo",
          quickchat: { scenario_id: "demo-scenario", token: "demo-token", base_url: quickchat.url },
          telegram: { bot_token: BOT_TOKEN, webhook_secret: WEBHOOK_SECRET, api_root: telegramServer.url },
        }),
      ],
    },
    log: createLogger(settings.LOG_LEVEL, logDestination(settings.LOG_FORMAT)),
    http: true,
    worker: true,
  });

  let ok = false;
  try {
    const webhook = `${bridge.url}/webhooks/demo/telegram`;
    console.log(`bridge listening on ${bridge.url} (PGlite in memory)`);
    console.log(`Quickchat fake on ${quickchat.url}, Telegram Bot API fake on ${telegramServer.url}\n`);

    const update = {
      update_id: 100_001,
      message: {
        message_id: 1,
        from: ALICE,
        chat: { id: ALICE.id, type: "private", first_name: ALICE.first_name, username: ALICE.username },
        date: Math.floor(Date.now() / 1000),
        text: USER_TEXT,
      },
    } as Update;
    const started = Date.now();
    const ack = await deliverUpdate(webhook, update, WEBHOOK_SECRET);
    console.log(`1. Telegram user "${ALICE.first_name}" wrote (POST ${webhook} → ${ack.status}):`);
    console.log(indent(USER_TEXT));
    if (ack.status !== 200) throw new Error(`the webhook answered ${ack.status}: ${await ack.text()}`);

    const deadline = Date.now() + 15_000;
    while (telegram.callsTo("sendMessage").length === 0) {
      if (Date.now() > deadline) throw new Error("no reply reached the Telegram fake within 15 s");
      await new Promise((r) => setTimeout(r, 25));
    }
    const sent = telegram.callsTo("sendMessage");

    console.log("\n2. Quickchat was asked (POST /chat) and answered with HTML:");
    console.log(indent(`text: ${JSON.stringify(quickchat.calls[0]?.body.text)}`));
    console.log(indent(`client_metadata: ${JSON.stringify(quickchat.calls[0]?.body.client_metadata)}`));
    console.log("   reply:");
    console.log(indent(QUICKCHAT_REPLY));

    console.log(`\n3. The bridge called sendMessage ${sent.length} time(s); what the Telegram user sees:`);
    for (const call of sent) {
      console.log(indent(`[parse_mode: ${String(call.params.parse_mode ?? "none")}]`));
      console.log(indent(String(call.params.text)));
    }
    console.log("\n   which Telegram displays as:");
    for (const call of sent) console.log(indent(displayed(String(call.params.text))));
    console.log(`\nRelayed in ${Date.now() - started} ms. Demo OK.`);
    ok = true;
  } finally {
    await bridge.stop();
    await telegramServer.close();
    await quickchat.close();
  }
  process.exit(ok ? 0 : 1);
}

/** Roughly what a Telegram client shows for parse_mode HTML text: tags dropped, the three entities decoded. */
const displayed = (html: string) =>
  html
    .replace(/<a href="([^"]*)">(.*?)<\/a>/g, "$2 [$1]")
    .replace(/<[^>]+>/g, "")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&");

const indent = (text: string) =>
  text
    .split("\n")
    .map((line) => `   ${line}`)
    .join("\n");

main().catch((err: unknown) => {
  console.error(`demo failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
