/**
 * Honest logs, on the real service at LOG_LEVEL=trace, on PGlite and (when available) PostgreSQL:
 * - a failing webhook insert and a failing worker query say what failed (SQLSTATE, constraint, table), and no
 *   log line carries the user's text, their name or a statement's parameters;
 * - a client that leaves mid-body is neither an error nor a rejected webhook;
 * - the 503s answered while shutting down are not errors.
 */
import net from "node:net";
import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/harness.js";
import { send } from "./support/raw-http.js";
import {
  type EmbeddedDatabase,
  FaultWorld,
  IDS,
  POSTGRES_AVAILABLE,
  type ServiceProcess,
} from "./support/service.js";
import { deliver } from "./support/traffic.js";

const KINDS: ("pglite" | "postgres")[] = POSTGRES_AVAILABLE ? ["pglite", "postgres"] : ["pglite"];

/** What users wrote and who they are: none of it may reach a log line. */
const PRIVATE_TEXT = "Zanzibar lullaby 4417";
const FIRST_NAME = "Quillon";
const LAST_NAME = "Privatus";
/** A message with this in its text cannot be stored (webhook insert fails)... */
const REFUSED = "refused-by-check";
/** ...and with this one it is stored, but its reply (Quickchat's fake echoes the text) cannot be. */
const UNSTORABLE_REPLY = "unstorable-reply";
const FORBIDDEN_IN_LOGS = [
  PRIVATE_TEXT,
  "Zanzibar",
  "lullaby",
  FIRST_NAME,
  LAST_NAME,
  REFUSED,
  UNSTORABLE_REPLY,
];

/** Constraints the service knows nothing about, added while it is stopped (PGlite is one process's). */
async function addConstraints(world: FaultWorld): Promise<void> {
  const statements = [
    `alter table inbound_messages add constraint no_refused_text
       check (text is null or text not like '%${REFUSED}%') not valid`,
    `alter table inbound_messages add constraint no_unstorable_reply
       check (reply_html is null or reply_html not like '%${UNSTORABLE_REPLY}%') not valid`,
  ];
  const { url, dataDir } = world.database as Partial<EmbeddedDatabase>;
  if (url) {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    for (const statement of statements) await sql.unsafe(statement);
    await sql.end();
  } else {
    const db = await PGlite.create(dataDir);
    for (const statement of statements) await db.exec(statement);
    await db.close();
  }
}

let updateId = 0;
/** A Telegram private message from Quillon Privatus. */
function telegram(service: ServiceProcess, text: string, chat = 7_100_000) {
  const n = ++updateId;
  const user = { id: chat, is_bot: false, first_name: FIRST_NAME, last_name: LAST_NAME };
  const body = JSON.stringify({
    update_id: 900_000 + n,
    message: { message_id: n, date: 1_760_000_000, chat: { ...user, type: "private" }, from: user, text },
  });
  return send(service.url, {
    method: "POST",
    path: "/webhooks/default/telegram",
    headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": IDS.telegramSecret },
    body,
  });
}

const parsed = (lines: string[]) =>
  lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
const errorLines = (lines: string[]) =>
  parsed(lines).filter((entry) => ["error", "fatal"].includes(String(entry.level)));

async function webhookCount(service: ServiceProcess, outcome: string): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) =>
      l.startsWith(`bridge_webhooks_total{tenant="default",channel="telegram",outcome="${outcome}"}`),
    );
  return line ? Number(line.split(" ").at(-1)) : 0;
}

const WEBHOOK = ["/webhooks/default/telegram", `X-Telegram-Bot-Api-Secret-Token: ${IDS.telegramSecret}`];
const ADMIN = ["/admin/tenants", `Authorization: Bearer ${IDS.adminToken}`];

/** POSTs a JSON request with this path and header, sends 200 of its declared 400 body bytes, then leaves. */
function halfBodyThenGone(service: ServiceProcess, [path, header]: string[]): Promise<void> {
  const { hostname, port } = new URL(service.url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: bridge.fault.test\r\n${header}\r\n` +
          `Content-Type: application/json\r\nContent-Length: 400\r\n\r\n${'{"id":1,"text":'.padEnd(200, " ")}`,
        () => setTimeout(() => socket.destroy(), 100),
      );
    });
    socket.on("error", () => {});
    socket.on("close", () => resolve());
  });
}

describe.each(KINDS)("honest logs (%s)", (kind) => {
  let world: FaultWorld;
  let service: ServiceProcess;

  beforeAll(async () => {
    world = await FaultWorld.create({ LOG_LEVEL: "trace" }, { database: kind });
    await (await world.startService()).stop(); // creates and migrates the database
    await addConstraints(world);
    service = await world.startService();
  });
  afterAll(() => world?.close());

  it("a client that leaves mid-body is logged at debug and counted as aborted, not as an error or a rejection", async () => {
    const [rejected, aborted] = [
      await webhookCount(service, "rejected"),
      await webhookCount(service, "aborted"),
    ];
    const from = world.logs.length;
    for (let i = 0; i < 3; i++) await halfBodyThenGone(service, WEBHOOK);
    await halfBodyThenGone(service, ADMIN);
    await waitFor(
      () => world.logs.slice(from).filter((l) => l.includes("client went away")).length === 4,
      10_000,
      "four debug lines about clients gone mid-body",
    );
    expect(errorLines(world.logs.slice(from))).toEqual([]);
    expect(world.logs.slice(from).filter((l) => l.includes("unhandled error"))).toEqual([]);
    expect(await webhookCount(service, "aborted")).toBe(aborted + 3);
    expect(await webhookCount(service, "rejected")).toBe(rejected);
    expect((await telegram(service, "still here")).status).toBe(200);
  });

  it("a failing webhook insert and a failing worker query say what failed, without the user's words", async () => {
    const from = world.logs.length;
    // The insert fails: the webhook is answered 500, so the channel delivers it again later.
    expect((await telegram(service, `${REFUSED} ${PRIVATE_TEXT}`)).status).toBe(500);
    // Stored; storing Quickchat's reply, which quotes the text, fails in the worker.
    expect((await telegram(service, `${UNSTORABLE_REPLY} ${PRIVATE_TEXT}`)).status).toBe(200);
    await waitFor(
      () => world.logs.slice(from).some((l) => l.includes("no_unstorable_reply")),
      20_000,
      "the worker's failure logged",
    );
    await service.stop(); // the shutdown's lines too
    service = await world.startService();

    const logs = world.logs.slice(from);
    const entries = parsed(logs);
    // Trace and debug lines were written, and not one line has the user's words, name or the statement.
    expect(entries.some((e) => e.level === "debug")).toBe(true);
    const leaks = logs.filter((line) =>
      [...FORBIDDEN_IN_LOGS, "Failed query", "params:", "Failing row"].some((s) => line.includes(s)),
    );
    console.log(
      `honest logs (${kind}): ${logs.length} lines at trace level searched for the user's text and name; ` +
        `${leaks.length} carried them`,
    );
    expect(leaks).toEqual([]);
    // The lines that name the failures say what failed: the SQLSTATE, the constraint and the table.
    expect(entries.find((e) => e.constraint === "no_refused_text")).toMatchObject({
      msg: "unhandled error",
      sqlstate: "23514",
      table: "inbound_messages",
      err: 'new row for relation "inbound_messages" violates check constraint "no_refused_text"',
    });
    expect(entries.find((e) => e.constraint === "no_unstorable_reply")).toMatchObject({
      msg: "processing failed; will retry",
      sqlstate: "23514",
      table: "inbound_messages",
    });
  }, 60_000);

  it("the 503s answered while shutting down are not errors", async () => {
    world.fakes.quickchat.latencyMs = 5_000; // a message in flight holds the drain for its timeout (2 s)
    // In a chat of its own: the earlier chat's unstorable message keeps its thread waiting.
    const calls = world.fakes.quickchat.calls.length;
    expect((await telegram(service, "keep the worker busy", 7_200_000)).status).toBe(200);
    await waitFor(
      () => world.fakes.quickchat.calls.slice(calls).some((c) => c.body.text === "keep the worker busy"),
      10_000,
      "the message at Quickchat",
    );
    const from = world.logs.length;
    service.child.kill("SIGTERM");
    await waitFor(() => world.logs.slice(from).some((l) => l.includes("shutting down")), 5_000, "draining");
    const statuses: number[] = [];
    for (let seq = 0; seq < 5; seq++)
      statuses.push(await deliver(service.url, { channel: "telegram", thread: 9, seq }).catch(() => 0));
    expect(await service.stop()).toBe(0);
    world.fakes.quickchat.latencyMs = 0;

    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
    expect(errorLines(world.logs.slice(from))).toEqual([]);
    const refused = parsed(world.logs.slice(from)).filter((e) => e.status === 503);
    expect(refused.length).toBe(statuses.filter((s) => s === 503).length);
    expect(refused.every((e) => e.level === "info")).toBe(true);
  }, 30_000);
});
