/**
 * The whole service over HTTP for WhatsApp through Meta's Cloud API: the GET handshake, signed webhooks in
 * (messages and delivery statuses), the real adapter out to the loopback Graph API fake, Quickchat's fake in
 * between; PostgreSQL when DATABASE_URL is set, else PGlite. Also the channel's configuration paths: the
 * environment shorthand, the admin API and `bridge check-config`. What every channel must do (forged
 * signatures, redeliveries, unsupported media, long replies, rate limits, retries) is the channel contract's
 * (test/channels/contract.ts, driver test/channels/drivers/whatsapp_cloud.ts).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { inboundMessages, outboundMessages } from "../../src/db/schema.js";
import { ConfigError } from "../../src/errors.js";
import { adminClient, adminEnv, rawTenantRows } from "../admin/support.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import {
  BUSINESS,
  type CloudUser,
  cloudContact,
  cloudEntry,
  cloudMessage,
  cloudMessageId,
  cloudStatus,
  cloudWebhook,
  createWhatsappCloudFake,
  inboundText,
  messagesValue,
  metaJson,
  postCloudWebhook,
  signCloudRequest,
  statusUpdate,
  USER,
  type WhatsappCloudFake,
  windowClosed,
} from "../fakes/whatsapp-cloud.js";
import {
  createPostgresDatabase,
  POSTGRES_URL,
  partByChannelId,
  settledInbox,
  type TestDatabase,
} from "../support/db.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { answerBeforeBody } from "../support/raw-socket.js";
import { bridgeBin } from "../support/service-build.js";
import { guardUnexpected } from "../support/unexpected.js";

const APP_SECRET = "acme-meta-app-secret-5f0c1e2d3b4a";
const ACCESS_TOKEN = "EAAGacmeSystemUserAccessToken0123456789";
const VERIFY_TOKEN = "acme-verify-token-chosen-by-the-operator";
const SECRETS = [APP_SECRET, ACCESS_TOKEN, VERIFY_TOKEN];
const ROUTE = "/webhooks/acme/whatsapp_cloud";
const PHONE_NUMBER_ID = BUSINESS.phoneNumberId;

/** A second user, with a number and a business-scoped user id of their own. */
const ADA: CloudUser = { waId: "447700900123", userId: "GB.40012345678901234567", name: "Ada Lovelace" };

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

let quickchat: QuickchatFake;
let graph: WhatsappCloudFake;
let graphServer: RunningFake;
let database: TestDatabase | undefined;
let bridge: TestBridge;
const guard = guardUnexpected();

const cloudBlock = () => ({
  app_secret: APP_SECRET,
  access_token: ACCESS_TOKEN,
  verify_token: VERIFY_TOKEN,
  phone_number_id: PHONE_NUMBER_ID,
  graph_base: graphServer.url,
});

function tenants() {
  // acme also has Telegram, so its Telegram route exists; nothing is ever sent there.
  const telegram = {
    bot_token: "123:abc",
    webhook_secret: "acme-telegram-secret",
    api_root: graphServer.url,
  };
  return [
    {
      id: "acme",
      quickchat: { scenario_id: "acme-scenario", token: "acme-token", base_url: quickchat.url },
      whatsapp_cloud: cloudBlock(),
      telegram,
    },
    {
      id: "globex",
      quickchat: { scenario_id: "globex-scenario", token: "globex-token", base_url: quickchat.url },
      telegram,
    },
  ];
}

/** Posts a webhook body signed with acme's app secret, as Meta does. */
const deliver = (payload: unknown) => postCloudWebhook(`${bridge.url}${ROUTE}`, payload, APP_SECRET);

/** Delivers and expects Meta's ack: 200 with an empty body. */
async function deliverOk(payload: unknown) {
  const response = await deliver(payload);
  expect(response.status).toBe(200);
  expect(await response.text()).toBe("");
}

const inbox = () => bridge.database.db.select().from(inboundMessages).orderBy(inboundMessages.id);
const parts = () => bridge.database.db.select().from(outboundMessages);
const sent = (count: number) => waitFor(() => graph.sent().length >= count, 10_000, `${count} Graph sends`);
const bodies = () => graph.sent().map((call) => (call.body as { text: { body: string } }).text.body);
const logLines = () => bridge.logs.map((line) => JSON.parse(line) as Record<string, unknown>);

/** The inbox once `count` messages are finished (delivered or failed). */
const settled = (count: number) => settledInbox(bridge.database.db, count);

/** Starts the fakes and a bridge serving `tenants()`, on a fresh database. */
async function start() {
  quickchat = await new QuickchatFake({
    scenarios: {
      "acme-scenario": "acme-token",
      "globex-scenario": "globex-token",
      "initech-scenario": "initech-token",
    },
    reply: (text) => `You said: <b>${escapeHtml(text)}</b>`,
  }).start();
  graph = createWhatsappCloudFake({ accessToken: ACCESS_TOKEN, phoneNumberIds: [PHONE_NUMBER_ID] });
  graphServer = await startFake(graph.app);
  guard.watch(quickchat, graph);
  if (POSTGRES_URL) database = await createPostgresDatabase();
  bridge = await startTestBridge({
    tenants: tenants(),
    ...(database?.url && { databaseUrl: database.url }),
    env: adminEnv(),
  });
}

async function stop() {
  // Whatever happened, no secret of the channel reached the logs.
  const logs = bridge?.logs.join("\n") ?? "";
  await bridge?.stop();
  await database?.drop();
  database = undefined;
  await graphServer?.close();
  await quickchat?.close();
  for (const secret of SECRETS) expect(logs).not.toContain(secret);
}

// Requests that store nothing share one bridge (a bridge takes seconds to start on PGlite).
describe("WhatsApp Cloud requests refused or answered without storing", () => {
  beforeAll(start);
  afterAll(stop);

  describe("the subscription handshake", () => {
    const handshake = (path: string, token: string) =>
      fetch(`${bridge.url}${path}?hub.mode=subscribe&hub.verify_token=${token}&hub.challenge=1158201444`);

    it("echoes the challenge as text/plain for the right verify token", async () => {
      const response = await handshake(ROUTE, encodeURIComponent(VERIFY_TOKEN));
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/plain");
      expect(await response.text()).toBe("1158201444");
    });

    it("answers 403 in the JSON error shape for a wrong token, echoing nothing", async () => {
      const response = await handshake(ROUTE, "guess");
      expect(response.status).toBe(403);
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      const text = await response.text();
      expect(JSON.parse(text)).toEqual({
        errors: { root: [{ code: "PERMISSION_DENIED", message: "wrong hub.verify_token" }] },
      });
      expect(text).not.toContain("1158201444");
    });

    it("answers 404 for a tenant without the channel and for a channel without a handshake", async () => {
      const token = encodeURIComponent(VERIFY_TOKEN);
      for (const path of [
        "/webhooks/globex/whatsapp_cloud",
        "/webhooks/nobody/whatsapp_cloud",
        "/webhooks/acme/telegram",
      ]) {
        const response = await handshake(path, token);
        expect(response.status, path).toBe(404);
        expect(await response.json()).toMatchObject({ errors: { root: [{ code: "NOT_FOUND" }] } });
      }
    });
  });

  describe("signatures", () => {
    it("refuses a request without the signature header with 401 before its body arrives", async () => {
      // The client sends the headers and holds the body: an answer at all proves none of it was needed.
      const answer = await answerBeforeBody(
        bridge.url,
        ROUTE,
        80 * 1024,
        { "content-type": "application/json" },
        { sentFirst: 0 },
      );
      expect(answer.head).toMatch(/^HTTP\/1\.1 401 /);
      expect(answer.body).toMatch(/missing X-Hub-Signature-256 header/);
      expect(answer.ended).toBe("closed");
      expect(await inbox()).toEqual([]);
    });
  });
});

describe("WhatsApp Cloud over HTTP", () => {
  beforeEach(start);
  afterEach(stop);

  describe("messages", () => {
    it("asks Quickchat with the text and sends the reply from the business number the user wrote to", async () => {
      await deliverOk(inboundText("hello"));
      await sent(1);

      expect(quickchat.calls).toHaveLength(1);
      expect(quickchat.calls[0]?.body).toMatchObject({ scenario_id: "acme-scenario", text: "hello" });
      expect(quickchat.calls[0]?.body.client_metadata).toEqual({
        channel: "whatsapp_cloud",
        channel_user_id: USER.userId,
        channel_thread_id: `${PHONE_NUMBER_ID}|${USER.userId}`,
        user_name: USER.name,
      });
      const [reply] = graph.sent();
      expect(reply).toMatchObject({
        version: "v26.0",
        phoneNumberId: PHONE_NUMBER_ID,
        authorization: `Bearer ${ACCESS_TOKEN}`,
        status: 200,
      });
      expect(reply?.body).toEqual({
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to: USER.waId,
        type: "text",
        text: { body: "You said: *hello*", preview_url: false },
      });
      const [row] = await settled(1);
      expect(row).toMatchObject({ channel: "whatsapp_cloud", status: "delivered", text: "hello" });
    });

    it("stores each message of a batch in its user's thread, answers each, and ignores the batch redelivered", async () => {
      const [first, second, third] = [cloudMessageId(), cloudMessageId(), cloudMessageId()];
      const batch = cloudWebhook(
        cloudEntry(
          messagesValue({
            contacts: [cloudContact(USER)],
            messages: [
              cloudMessage("text", { body: "first from Sheena" }, { id: first }),
              cloudMessage("text", { body: "second from Sheena" }, { id: second }),
            ],
          }),
        ),
        cloudEntry(
          messagesValue({
            contacts: [cloudContact(ADA)],
            messages: [cloudMessage("text", { body: "one from Ada" }, { id: third, user: ADA })],
          }),
        ),
      );
      await deliverOk(batch);
      await sent(3);
      const rows = await settled(3);

      const sheenaThread = `${PHONE_NUMBER_ID}|${USER.userId}`;
      const adaThread = `${PHONE_NUMBER_ID}|${ADA.userId}`;
      expect(rows.map((r) => [r.dedupeKey, r.threadKey, r.text, r.status])).toEqual([
        [first, sheenaThread, "first from Sheena", "delivered"],
        [second, sheenaThread, "second from Sheena", "delivered"],
        [third, adaThread, "one from Ada", "delivered"],
      ]);
      // One conversation per thread: Sheena's second message continues her first's.
      const convOf = (thread: string) =>
        quickchat.calls
          .filter((c) => c.body.client_metadata?.channel_thread_id === thread)
          .map((c) => [c.body.text, c.body.conv_id]);
      expect(convOf(sheenaThread)).toEqual([
        ["first from Sheena", undefined],
        ["second from Sheena", expect.stringMatching(/^conv-/)],
      ]);
      expect(convOf(adaThread)).toEqual([["one from Ada", undefined]]);
      const replies = graph.sent().map((c) => c.body as { to: string; text: { body: string } });
      expect(replies.map((r) => [r.to, r.text.body]).sort()).toEqual([
        [USER.waId, "You said: *first from Sheena*"],
        [USER.waId, "You said: *second from Sheena*"],
        [ADA.waId, "You said: *one from Ada*"],
      ]);

      // Meta redelivers the batch: the ack is the same, and the inbox has nothing new for a worker to answer.
      await deliverOk(batch);
      expect(await inbox()).toHaveLength(3);
      // A later message is answered, and it is the only reply added.
      await deliverOk(inboundText("after the redelivery", { user: ADA }));
      await sent(4);
      await settled(4);
      expect(bodies().slice(3)).toEqual(["You said: *after the redelivery*"]);
      expect(graph.sent()).toHaveLength(4);
      expect(quickchat.calls).toHaveLength(4);
    });
  });

  describe("delivery statuses", () => {
    it("moves a sent part forward, records a failure's code, and ignores an unknown wamid", async () => {
      await deliverOk(inboundText("track me"));
      await settled(1);
      await deliverOk(inboundText("and me"));
      await settled(2);
      const [tracked, failing] = graph.sent().map((call) => call.id!);
      const partOf = (wamid: string) => partByChannelId(bridge.database.db, wamid);
      expect(await partOf(tracked!)).toMatchObject({ status: "sent", errorCode: null });

      await deliverOk(statusUpdate(cloudStatus(tracked!, "delivered")));
      expect(await partOf(tracked!)).toMatchObject({ status: "delivered", errorCode: null });
      await deliverOk(statusUpdate(cloudStatus(tracked!, "read")));
      expect(await partOf(tracked!)).toMatchObject({ status: "read", errorCode: null });
      // Statuses can arrive out of order: a late `delivered` does not move it back.
      await deliverOk(statusUpdate(cloudStatus(tracked!, "delivered")));
      expect(await partOf(tracked!)).toMatchObject({ status: "read" });

      const reEngagement = { code: 131047, title: "Re-engagement message" };
      await deliverOk(statusUpdate(cloudStatus(failing!, "failed", { error: reEngagement })));
      expect(await partOf(failing!)).toMatchObject({ status: "failed", errorCode: "131047" });

      const before = await parts();
      await deliverOk(statusUpdate(cloudStatus(cloudMessageId(), "read")));
      expect(await parts()).toEqual(before);
    });
  });

  describe("Graph errors through the relay", () => {
    it("fails the message on 131047 (window closed) without retrying, logging the code", async () => {
      graph.failNext(windowClosed());
      await deliverOk(inboundText("too late"));
      const [row] = await settled(1);

      // Failed is final: no worker claims the message again, so no retry can follow.
      expect(row).toMatchObject({ status: "failed", error: expect.stringContaining("#131047") });
      expect(graph.calls.map((c) => c.status)).toEqual([400]);
      expect(await parts()).toEqual([
        expect.objectContaining({ part: 0, status: "failed", errorCode: "131047" }),
      ]);
      const logged = logLines().filter(
        (l) => ["warn", "error"].includes(l.level as string) && l.code === "131047",
      );
      expect(logged).toEqual([
        expect.objectContaining({ msg: "send failed permanently; message failed", tenant: "acme" }),
      ]);
    });

    it("fails the message on 190 (access token invalid) as permanent", async () => {
      // The token was revoked at Meta: the tenant's configured one is refused from now on.
      graph.accessToken = "EAAGanotherTokenIssuedLater";
      guard.expectRefusal(/^whatsapp_cloud: 401 #190 /);
      await deliverOk(inboundText("anyone there?"));
      const [row] = await settled(1);

      expect(row).toMatchObject({ status: "failed", error: expect.stringContaining("#190") });
      expect(graph.calls.map((c) => c.status)).toEqual([401]);
      expect(await parts()).toEqual([
        expect.objectContaining({ part: 0, status: "failed", errorCode: "190" }),
      ]);
      expect(logLines().some((l) => l.level === "error" && l.code === "190")).toBe(true);
    });
  });

  describe("body size", () => {
    /** A signed batch of one text message and an ignored change padded to `bytes`. */
    function paddedBatch(bytes: number, text: string): string {
      const message = messagesValue({
        contacts: [cloudContact()],
        messages: [cloudMessage("text", { body: text })],
      });
      const shell = metaJson(
        cloudWebhook(cloudEntry(message, { field: "account_update", value: { padding: "" } })),
      );
      const padded = cloudWebhook(
        cloudEntry(message, {
          field: "account_update",
          value: { padding: "x".repeat(bytes - shell.length) },
        }),
      );
      const body = metaJson(padded);
      expect(body.length).toBe(bytes);
      return body;
    }

    it("accepts a signed 2 MiB batch, which the Telegram route refuses with 413; 413 past 3 MiB", async () => {
      const body = paddedBatch(2 * 1024 * 1024, "inside a big batch");
      const signed = { "x-hub-signature-256": signCloudRequest(body, APP_SECRET) };
      const accepted = await bridge.post(ROUTE, body, signed);
      expect(accepted.status).toBe(200);
      await sent(1);
      expect(bodies()).toEqual(["You said: *inside a big batch*"]);

      const telegram = await bridge.post("/webhooks/acme/telegram", body, {
        "x-telegram-bot-api-secret-token": "acme-telegram-secret",
      });
      expect(telegram.status).toBe(413);

      const huge = paddedBatch(3 * 1024 * 1024 + 1, "too big");
      const refused = await bridge.post(ROUTE, huge, {
        "x-hub-signature-256": signCloudRequest(huge, APP_SECRET),
      });
      expect(refused.status).toBe(413);
      expect(await refused.json()).toMatchObject({ errors: { root: [{ code: "PAYLOAD_TOO_LARGE" }] } });
      expect((await inbox()).map((r) => r.text)).toEqual(["inside a big batch"]);
    });
  });

  describe("the admin API", () => {
    const INITECH = {
      app_secret: "initech-meta-app-secret-9a8b7c6d",
      access_token: "EAAGinitechSystemUserToken9876543210",
      verify_token: "initech-verify-token-0123456789",
    };

    it("creates a tenant with a whatsapp_cloud block, shows its secrets masked, stores none in clear, and serves it", async () => {
      const admin = adminClient(() => bridge);
      const block = { ...cloudBlock(), ...INITECH };
      const created = await admin.call("POST", "/tenants", {
        id: "initech",
        quickchat: { scenario_id: "initech-scenario", token: "initech-token", base_url: quickchat.url },
        whatsapp_cloud: block,
      });
      expect(created.status).toBe(201);
      const shown = await admin.call("GET", "/tenants/initech");
      expect(shown.status).toBe(200);
      expect(shown.json.whatsapp_cloud).toEqual({
        app_secret: `****${INITECH.app_secret.slice(-4)}`,
        access_token: `****${INITECH.access_token.slice(-4)}`,
        verify_token: `****${INITECH.verify_token.slice(-4)}`,
        phone_number_id: PHONE_NUMBER_ID,
        graph_base: graphServer.url,
        graph_version: "v26.0",
        preview_url: false,
      });
      const [row] = (await rawTenantRows(bridge.database.db)).filter((r) => r.id === "initech");
      expect(row).toBeDefined();
      const stored = JSON.stringify(row);
      for (const secret of Object.values(INITECH)) {
        expect(stored).not.toContain(secret);
        for (const answer of admin.seen) expect(answer).not.toContain(secret);
      }
      expect(stored).toContain(PHONE_NUMBER_ID);

      // The sealed secrets are the ones the channel uses: handshake, signature and send.
      const path = "/webhooks/initech/whatsapp_cloud";
      const handshake = await fetch(
        `${bridge.url}${path}?hub.mode=subscribe&hub.verify_token=${INITECH.verify_token}&hub.challenge=42`,
      );
      expect(await handshake.text()).toBe("42");
      graph.accessToken = INITECH.access_token;
      const response = await postCloudWebhook(
        `${bridge.url}${path}`,
        inboundText("hi initech"),
        INITECH.app_secret,
      );
      expect(response.status).toBe(200);
      await sent(1);
      expect(graph.sent()[0]?.authorization).toBe(`Bearer ${INITECH.access_token}`);
      expect(bodies()).toEqual(["You said: *hi initech*"]);
      const logs = bridge.logs.join("\n");
      for (const secret of Object.values(INITECH)) expect(logs).not.toContain(secret);
    });
  });
});

describe("WhatsApp Cloud configuration", () => {
  const SHORTHAND = {
    QUICKCHAT_SCENARIO_ID: "sc",
    QUICKCHAT_TOKEN: "tok",
    WHATSAPP_CLOUD_APP_SECRET: APP_SECRET,
    WHATSAPP_CLOUD_ACCESS_TOKEN: ACCESS_TOKEN,
    WHATSAPP_CLOUD_VERIFY_TOKEN: VERIFY_TOKEN,
    WHATSAPP_CLOUD_PHONE_NUMBER_ID: PHONE_NUMBER_ID,
  };

  it("builds the default tenant's whatsapp_cloud block from WHATSAPP_CLOUD_* variables", () => {
    const config = loadConfig({ ...SHORTHAND, WHATSAPP_CLOUD_GRAPH_BASE: "http://127.0.0.1:8080" });
    expect(config.tenants).toHaveLength(1);
    expect(config.tenants[0]?.id).toBe("default");
    expect(config.tenants[0]?.whatsapp_cloud).toEqual({
      app_secret: APP_SECRET,
      access_token: ACCESS_TOKEN,
      verify_token: VERIFY_TOKEN,
      phone_number_id: PHONE_NUMBER_ID,
      graph_base: "http://127.0.0.1:8080",
      graph_version: "v26.0",
      preview_url: false,
    });
    expect(config.tenants[0]?.whatsapp).toBeUndefined();
    expect(loadConfig(SHORTHAND).tenants[0]?.whatsapp_cloud?.graph_base).toBe("https://graph.facebook.com");
  });

  it("names the variable of an invalid phone number id", () => {
    let message = "";
    try {
      loadConfig({ ...SHORTHAND, WHATSAPP_CLOUD_PHONE_NUMBER_ID: "+15550783881" });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as ConfigError).message;
    }
    expect(message).toMatch(/WHATSAPP_CLOUD_PHONE_NUMBER_ID: must be the numeric phone number id/);
    for (const secret of SECRETS) expect(message).not.toContain(secret);
  });

  it("bridge check-config prints the tenant's whatsapp_cloud webhook URL", () => {
    const dir = mkdtempSync(join(tmpdir(), "qb-cloud-cli-"));
    try {
      const file = join(dir, "bridge.yaml");
      writeFileSync(
        file,
        [
          "public_url: https://bridge.example.com",
          "tenants:",
          "  - id: acme",
          "    quickchat: { scenario_id: sc, token: tok }",
          "    whatsapp_cloud:",
          `      app_secret: ${APP_SECRET}`,
          `      access_token: ${ACCESS_TOKEN}`,
          `      verify_token: ${VERIFY_TOKEN}`,
          `      phone_number_id: "${PHONE_NUMBER_ID}"`,
          "",
        ].join("\n"),
      );
      const env = Object.fromEntries(
        Object.entries(process.env).filter(
          ([k]) =>
            !/^(DATABASE_URL|PUBLIC_URL|QUICKCHAT_|TELEGRAM_|SLACK_|TWILIO_|WHATSAPP_|BRIDGE_)/.test(k),
        ),
      );
      const result = spawnSync(process.execPath, [bridgeBin(), "check-config"], {
        env: { ...env, BRIDGE_CONFIG: file },
        cwd: dir,
        encoding: "utf8",
      });
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      expect(result.stdout).toContain(`tenant acme (from ${file}): whatsapp_cloud\n`);
      // Meta's subscription handshake is a GET to the same URL.
      expect(result.stdout).toContain(
        "  whatsapp_cloud: https://bridge.example.com/webhooks/acme/whatsapp_cloud (GET and POST)\n",
      );
      for (const secret of SECRETS) expect(result.stdout).not.toContain(secret);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
