/**
 * Tenants added through the admin API answer on all three channels without a restart, on every process that
 * shares the database; token updates take effect; one tenant's credentials never open another's routes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { guardUnexpected } from "../support/unexpected.js";
import {
  adminClient,
  adminEnv,
  ChannelFakes,
  type Credentials,
  credentials,
  PUBLIC_URL,
  rawTenantRows,
  secretValues,
  sendSlack,
  sendTelegram,
  sendWhatsapp,
} from "./support.js";

const A = credentials("alpha", 1);
const B = credentials("beta", 2);
const C = credentials("gamma", 3);
const guard = guardUnexpected();

/** Sends one message on each channel to `tenant` at `url` and expects each to be stored (200). */
async function sendAll(url: string, tenant: string, c: Credentials, text: string) {
  const responses = await Promise.all([
    sendTelegram(url, tenant, `${text} (telegram)`, c.telegramSecret),
    sendSlack(url, tenant, `${text} (slack)`, c.slackSigning, c.slack.teamId),
    sendWhatsapp(url, tenant, `${text} (whatsapp)`, c.twilioToken, c.twilioSid),
  ]);
  expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
}

/** Waits until `tenant`'s bot answered `text` on all three channels. */
async function answeredEverywhere(fakes: ChannelFakes, tenant: string, text: string) {
  await waitFor(
    () =>
      fakes.telegramSent(tenant).some((c) => String(c.params.text).includes(`${text} (telegram)`)) &&
      fakes.slackSent(tenant).some((c) => String(c.args.text).includes(`${text} (slack)`)) &&
      fakes.twilioSent(tenant).some((c) => String(c.params.Body).includes(`${text} (whatsapp)`)),
    10_000,
    `${tenant} answering "${text}" on Telegram, Slack and WhatsApp`,
  );
}

describe("a tenant created through the API", () => {
  let fakes: ChannelFakes;
  let database: TestDatabase | undefined;
  let bridge: TestBridge;
  const admin = adminClient(() => bridge);

  beforeAll(async () => {
    fakes = await new ChannelFakes({ alpha: A, beta: B }).start();
    guard.watch(...fakes.all());
    if (POSTGRES_URL) database = await createPostgresDatabase();
    bridge = await startTestBridge({
      tenants: [],
      ...(database?.url && { databaseUrl: database.url }),
      publicUrl: PUBLIC_URL,
      env: adminEnv(),
    });
  });

  afterAll(async () => {
    const everything = [...admin.seen, ...(bridge?.logs ?? [])].join("\n");
    for (const secret of [...secretValues(A), ...secretValues(B)]) expect(everything).not.toContain(secret);
    await bridge?.stop();
    await database?.drop();
    await fakes?.close();
  });

  it("answers on Telegram, Slack and WhatsApp without a restart", async () => {
    // Unknown before it exists.
    expect((await sendTelegram(bridge.url, "alpha", "too early", A.telegramSecret)).status).toBe(404);
    expect((await admin.call("POST", "/tenants", fakes.tenantBody("alpha"))).status).toBe(201);
    expect((await admin.call("POST", "/tenants", fakes.tenantBody("beta"))).status).toBe(201);
    await sendAll(bridge.url, "alpha", A, "hello alpha");
    await answeredEverywhere(fakes, "alpha", "hello alpha");
    expect(fakes.quickchat.calls.every((c) => c.authorization === `Bearer ${A.quickchatToken}`)).toBe(true);
    expect(fakes.quickchat.calls.map((c) => c.body.client_metadata?.channel).sort()).toEqual([
      "slack",
      "telegram",
      "whatsapp",
    ]);
  });

  it("uses a new Quickchat token as soon as a PUT changes it", async () => {
    const next = `${A.quickchatToken}-rotated`;
    fakes.scenarios["alpha-scenario"] = next;
    const current = (await admin.call("GET", "/tenants/alpha")).json;
    const { id: _id, source: _source, ...body } = current;
    body.quickchat = { ...body.quickchat, token: next };
    const put = await admin.call("PUT", "/tenants/alpha", body);
    expect(put.status).toBe(200);
    expect(put.json.quickchat.token).toBe(`****${next.slice(-4)}`);
    await sendAll(bridge.url, "alpha", A, "after rotation");
    await answeredEverywhere(fakes, "alpha", "after rotation");
    const latest = fakes.quickchat.calls.filter((c) => String(c.body.text).startsWith("after rotation"));
    expect(latest.map((c) => c.authorization)).toEqual(Array(3).fill(`Bearer ${next}`));
    const raw = JSON.stringify(await rawTenantRows(bridge.database.db));
    expect(raw).not.toContain(next);
    // Restore for the following tests.
    fakes.scenarios["alpha-scenario"] = A.quickchatToken;
    body.quickchat.token = A.quickchatToken;
    expect((await admin.call("PUT", "/tenants/alpha", body)).status).toBe(200);
  });

  it("rejects tenant A's Telegram secret, Slack signature and Twilio signature on tenant B's routes, storing nothing", async () => {
    const telegram = await sendTelegram(bridge.url, "beta", "intrusion", A.telegramSecret);
    expect(telegram.status).toBe(401);
    const slack = await sendSlack(bridge.url, "beta", "intrusion", A.slackSigning, B.slack.teamId);
    expect(slack.status).toBe(401);
    // Signed with A's token, even claiming B's account sid.
    const twilio = await sendWhatsapp(bridge.url, "beta", "intrusion", A.twilioToken, B.twilioSid);
    expect(twilio.status).toBe(403);
    for (const response of [telegram, slack]) {
      expect(await response.json()).toMatchObject({ errors: { root: [{ code: "PERMISSION_DENIED" }] } });
    }
    // And B's own credentials on A's routes.
    expect((await sendTelegram(bridge.url, "alpha", "intrusion", B.telegramSecret)).status).toBe(401);
    expect((await sendSlack(bridge.url, "alpha", "intrusion", B.slackSigning, A.slack.teamId)).status).toBe(
      401,
    );
    expect((await sendWhatsapp(bridge.url, "alpha", "intrusion", B.twilioToken, A.twilioSid)).status).toBe(
      403,
    );

    await new Promise((r) => setTimeout(r, 300));
    const stored = await admin.call("GET", "/messages?limit=100");
    expect(stored.json.items.filter((m: { text: string }) => m.text?.includes("intrusion"))).toEqual([]);
    expect((await admin.call("GET", "/messages?tenant=beta")).json.count).toBe(0);
    expect(fakes.quickchat.calls.some((c) => String(c.body.text).includes("intrusion"))).toBe(false);
    // B still works with its own credentials.
    await sendAll(bridge.url, "beta", B, "hello beta");
    await answeredEverywhere(fakes, "beta", "hello beta");
    expect(fakes.telegramSent("alpha").some((c) => String(c.params.text).includes("beta"))).toBe(false);
  });
});

describe.skipIf(!POSTGRES_URL)("two processes sharing one PostgreSQL database", () => {
  let fakes: ChannelFakes;
  let database: TestDatabase;
  /** Serves HTTP and the admin API, runs no worker. */
  let front: TestBridge;
  /** Serves HTTP and runs the worker pool; it never sees an admin call. */
  let replica: TestBridge;
  const admin = adminClient(() => front);

  beforeAll(async () => {
    fakes = await new ChannelFakes({ gamma: C }).start();
    guard.watch(...fakes.all());
    database = await createPostgresDatabase();
    const common = { tenants: [], databaseUrl: database.url!, publicUrl: PUBLIC_URL, env: adminEnv() };
    front = await startTestBridge({ ...common, worker: false });
    replica = await startTestBridge({ ...common, env: { BRIDGE_SECRET_KEY: adminEnv().BRIDGE_SECRET_KEY } });
  });

  afterAll(async () => {
    const everything = [...admin.seen, ...(front?.logs ?? []), ...(replica?.logs ?? [])].join("\n");
    for (const secret of secretValues(C)) expect(everything).not.toContain(secret);
    await front?.stop();
    await replica?.stop();
    await database?.drop();
    await fakes?.close();
  });

  it("a tenant created on one process answers through the other, on all channels", async () => {
    // The replica looks the tenant up (and caches its absence) before it exists.
    expect((await sendTelegram(replica.url, "gamma", "too early", C.telegramSecret)).status).toBe(404);
    expect((await admin.call("POST", "/tenants", fakes.tenantBody("gamma"))).status).toBe(201);
    await waitFor(
      async () => (await sendTelegram(replica.url, "gamma", "probe", C.telegramSecret)).status === 200,
      5_000,
      "the replica to know gamma",
    );
    await sendAll(replica.url, "gamma", C, "via replica");
    await answeredEverywhere(fakes, "gamma", "via replica");
    // Webhooks stored by the worker-less front are answered by the replica's worker.
    await sendAll(front.url, "gamma", C, "via front");
    await answeredEverywhere(fakes, "gamma", "via front");
  });

  it("a token update made on one process reaches the other's worker within a few seconds", async () => {
    const next = `${C.quickchatToken}-rotated`;
    fakes.scenarios["gamma-scenario"] = next;
    // Until the replica sees the update, its worker asks with the old token: refused, and answered so.
    guard.expectRefusal(/^quickchat: 400 Request is not authenticated$/);
    guard.expectUserText("unavailable");
    const { id: _id, source: _source, ...body } = (await admin.call("GET", "/tenants/gamma")).json;
    body.quickchat.token = next;
    const started = Date.now();
    expect((await admin.call("PUT", "/tenants/gamma", body)).status).toBe(200);
    let n = 0;
    await waitFor(
      async () => {
        const text = `rotated ${++n}`;
        expect((await sendTelegram(replica.url, "gamma", text, C.telegramSecret)).status).toBe(200);
        await new Promise((r) => setTimeout(r, 100));
        // Any probe will do: they share one chat, so a slow one holds the later ones behind it.
        return fakes.quickchat.calls.some(
          (c) => String(c.body.text).startsWith("rotated ") && c.authorization === `Bearer ${next}`,
        );
      },
      5_000,
      "the replica to use the new token",
    );
    const elapsed = Date.now() - started;
    console.log(`token update seen by the replica after ${elapsed} ms`);
    expect(elapsed).toBeLessThan(5_000);
  });

  it("a tenant deleted on one process stops answering at once there and within seconds on the other", async () => {
    expect((await admin.call("DELETE", "/tenants/gamma")).status).toBe(204);
    expect((await sendTelegram(front.url, "gamma", "gone?", C.telegramSecret)).status).toBe(404);
    await waitFor(
      async () => (await sendTelegram(replica.url, "gamma", "gone?", C.telegramSecret)).status === 404,
      5_000,
      "the replica to forget gamma",
    );
    expect(await rawTenantRows(replica.database.db)).toEqual([]);
  });
});
