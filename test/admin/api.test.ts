/**
 * The admin API over HTTP: auth, validation, masking, secrets at rest, config tenants read-only,
 * delete, conversations and failed messages. PostgreSQL when DATABASE_URL is set, else PGlite.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuickchatFake } from "../fakes/quickchat.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { answerBeforeBody } from "../support/raw-socket.js";
import { guardUnexpected } from "../support/unexpected.js";
import {
  ADMIN_TOKEN,
  adminClient,
  adminEnv,
  ChannelFakes,
  credentials,
  PUBLIC_URL,
  rawTenantRows,
  secretValues,
  sendTelegram,
} from "./support.js";

const A = credentials("acme", 1);
const V = credentials("victim", 2);
const T = credentials("thief", 3);
const S = credentials("static-co", 4);
const G = credentials("gone", 5);
const ALL = [A, V, T, S, G];

let fakes: ChannelFakes;
let database: TestDatabase | undefined;
let bridge: TestBridge;
const admin = adminClient(() => bridge);
const guard = guardUnexpected();

beforeAll(async () => {
  fakes = await new ChannelFakes({ acme: A, victim: V, thief: T, "static-co": S, gone: G }).start();
  guard.watch(...fakes.all());
  if (POSTGRES_URL) database = await createPostgresDatabase();
  bridge = await startTestBridge({
    tenants: [fakes.tenantBody("static-co")],
    ...(database?.url && { databaseUrl: database.url }),
    publicUrl: PUBLIC_URL,
    env: adminEnv(),
  });
});

afterAll(async () => {
  // Whatever happened, no response body and no log line carries a secret.
  const everything = [...admin.seen, ...(bridge?.logs ?? [])].join("\n");
  for (const secret of ALL.flatMap(secretValues)) expect(everything).not.toContain(secret);
  await bridge?.stop();
  await database?.drop();
  await fakes?.close();
});

describe("admin auth", () => {
  it("answers 401 in the JSON error shape without a token, with a wrong one, or with another scheme", async () => {
    for (const token of [null, "wrong-token-0123456789abcdef", `${ADMIN_TOKEN}x`, ""]) {
      const response = await admin.call("GET", "/tenants", undefined, token);
      expect(response.status).toBe(401);
      expect(response.json).toEqual({
        errors: { root: [{ code: "PERMISSION_DENIED", message: expect.any(String) }] },
      });
    }
    const basic = await fetch(`${bridge.url}/admin/tenants`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64")}` },
    });
    expect(basic.status).toBe(401);
    // A write without the token changes nothing.
    const post = await admin.call("POST", "/tenants", fakes.tenantBody("acme"), null);
    expect(post.status).toBe(401);
    expect((await admin.call("GET", "/tenants/acme")).status).toBe(404);
  });

  // The body limit comes after authentication (README): without the token the size is never looked at.
  it("answers an oversized body without the token 401 from its headers alone, not 413", async () => {
    const answer = await answerBeforeBody(
      bridge.url,
      "/admin/tenants",
      4 * 1024 * 1024,
      {
        "content-type": "application/json",
      },
      { sentFirst: 0 },
    );
    expect(answer.head).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer.body).toMatch(/PERMISSION_DENIED/);
  });

  it("has no admin API at all when ADMIN_TOKEN is unset", async () => {
    const plain = await startTestBridge({
      tenants: [],
      env: { BRIDGE_SECRET_KEY: adminEnv().BRIDGE_SECRET_KEY },
    });
    try {
      for (const headers of [{}, { authorization: `Bearer ${ADMIN_TOKEN}` }] as Record<string, string>[]) {
        const response = await fetch(`${plain.url}/admin/tenants`, { headers });
        expect(response.status).toBe(404);
        const post = await fetch(`${plain.url}/admin/tenants`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: JSON.stringify({ id: "x", quickchat: { scenario_id: "s", token: "t" } }),
        });
        expect(post.status).toBe(404);
      }
    } finally {
      await plain.stop();
    }
  });
});

describe("tenant validation", () => {
  const failingPaths = (json: { errors: { root: { path?: string; message: string; code: string }[] } }) =>
    json.errors.root;

  it("rejects invalid bodies with 422 naming each failing field", async () => {
    const body = {
      ...fakes.tenantBody("acme"),
      id: "Bad_ID!",
      colour: "blue",
      quickchat: { token: "t0ken", base_url: "ftp://nowhere" },
      telegram: { bot_token: "x", webhook_secret: "has spaces and ü" },
    };
    const response = await admin.call("POST", "/tenants", body);
    expect(response.status).toBe(422);
    const errors = failingPaths(response.json);
    expect(errors[0]).toMatchObject({ code: "VALIDATION_ERROR" });
    const paths = errors.map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "id",
        "quickchat.scenario_id",
        "quickchat.base_url",
        "telegram.webhook_secret",
      ]),
    );
    const messages = errors.map((e) => e.message).join("\n");
    expect(messages).toContain("unknown key colour");
    expect(messages).toContain("quickchat.scenario_id");
    // Nothing was stored, and the 422 does not echo the secrets it was sent.
    expect(await rawTenantRows(bridge.database.db)).toEqual([]);
    expect(response.text).not.toContain(A.telegramToken);
  });

  it("names an unknown nested key, a missing credential and a bad query; non-JSON is 400", async () => {
    const nested = await admin.call("POST", "/tenants", {
      ...fakes.tenantBody("acme"),
      slack: { ...fakes.tenantBody("acme").slack, signing_secrett: "typo" },
    });
    expect(nested.status).toBe(422);
    expect(nested.text).toContain("unknown key slack.signing_secrett");

    const both = await admin.call("POST", "/tenants", {
      id: "acme",
      quickchat: { scenario_id: "s", token: "a", api_key: "b" },
    });
    expect(both.status).toBe(422);
    expect(failingPaths(both.json).map((e) => e.path)).toContain("quickchat");

    const badPage = await admin.call("GET", "/tenants?limit=1000&offset=-1");
    expect(badPage.status).toBe(422);
    expect(failingPaths(badPage.json).map((e) => e.path)).toEqual(
      expect.arrayContaining(["limit", "offset"]),
    );

    const garbage = await admin.call("POST", "/tenants", "{not json");
    expect(garbage.status).toBe(400);
    expect(garbage.json).toMatchObject({ errors: { root: [{ code: "BAD_REQUEST" }] } });
  });
});

describe("tenants CRUD and secrets", () => {
  it("creates a tenant, shows its secrets only masked, and stores none of them in plaintext", async () => {
    const created = await admin.call("POST", "/tenants", fakes.tenantBody("acme"));
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      id: "acme",
      source: "api",
      quickchat: { scenario_id: "acme-scenario", token: `****${A.quickchatToken.slice(-4)}` },
      telegram: {
        bot_token: `****${A.telegramToken.slice(-4)}`,
        webhook_secret: `****${A.telegramSecret.slice(-4)}`,
      },
      slack: {
        signing_secret: `****${A.slackSigning.slice(-4)}`,
        bot_token: `****${A.slack.token.slice(-4)}`,
      },
      whatsapp: { account_sid: A.twilioSid, auth_token: `****${A.twilioToken.slice(-4)}` },
    });
    const again = await admin.call("POST", "/tenants", fakes.tenantBody("acme"));
    expect(again.status).toBe(409);
    // What the API shows cannot be posted back as a new tenant: a masked value is no secret.
    const copied = await admin.call("POST", "/tenants", {
      ...created.json,
      id: "acme-copy",
      source: undefined,
    });
    expect(copied.status).toBe(422);
    expect(copied.json.errors.root[0]).toMatchObject({ code: "SECRET_REQUIRED" });
    expect((await admin.call("GET", "/tenants/acme-copy")).status).toBe(404);

    const one = await admin.call("GET", "/tenants/acme");
    expect(one.status).toBe(200);
    expect(one.json).toEqual(created.json);
    const list = await admin.call("GET", "/tenants");
    expect(list.json).toMatchObject({ offset: 0, limit: 10, count: 2 });
    expect(list.json.items.map((t: { id: string; source: string }) => [t.id, t.source])).toEqual([
      ["static-co", "config"],
      ["acme", "api"],
    ]);
    const paged = await admin.call("GET", "/tenants?limit=1&offset=1");
    expect(paged.json).toMatchObject({ items: [{ id: "acme" }], offset: 1, limit: 1, count: 2 });

    // A short secret is masked completely.
    const short = {
      ...fakes.tenantBody("gone"),
      quickchat: { scenario_id: "gone-scenario", token: "short-tok" },
    };
    const shown = await admin.call("POST", "/tenants", short);
    expect(shown.json.quickchat.token).toBe("****");
    expect(shown.text).not.toContain("short-tok");

    for (const body of admin.seen)
      for (const secret of [...secretValues(A), "short-tok"]) expect(body).not.toContain(secret);

    const rows = await rawTenantRows(bridge.database.db);
    const acme = rows.find((r) => r.id === "acme");
    expect(acme?.source).toBe("api");
    const sealed = JSON.parse(String(acme?.secrets_encrypted)) as Record<string, string>;
    expect(Object.keys(sealed).sort()).toEqual(["quickchat", "slack", "telegram", "whatsapp"]);
    for (const value of Object.values(sealed)) expect(value).toMatch(/^v2\.[\w-]{8}\.[^.]+\.[^.]+\.[^.]+$/);
    const raw = JSON.stringify(rows);
    for (const secret of [...secretValues(A), "short-tok"]) expect(raw).not.toContain(secret);
    expect(raw).toContain(A.twilioSid); // non-secret settings are stored as they are

    // The configuration-file tenant is not in the table.
    expect(rows.map((r) => r.id).sort()).toEqual(["acme", "gone"]);
  });

  it("keeps stored secrets when a PUT sends them back masked or omits them", async () => {
    const before = (await admin.call("GET", "/tenants/acme")).json;
    const { id: _id, source: _source, ...edited } = before;
    edited.quickchat.kb_topic = "billing";
    delete edited.slack.bot_token;
    const put = await admin.call("PUT", "/tenants/acme", edited);
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ quickchat: { kb_topic: "billing", token: before.quickchat.token } });
    const stored = await bridge.tenants.get("acme");
    expect(stored?.quickchat.token).toBe(A.quickchatToken);
    expect(stored?.slack?.bot_token).toBe(A.slack.token);
    expect(stored?.whatsapp?.auth_token).toBe(A.twilioToken);
    expect(stored?.quickchat.kb_topic).toBe("billing");

    // The tenant still answers with its original secrets: Quickchat's answer, not the unavailable text.
    expect((await sendTelegram(bridge.url, "acme", "still here?", A.telegramSecret)).status).toBe(200);
    await waitFor(() => fakes.telegramSent("acme").length >= 1, 10_000, "acme's reply");
    expect(fakes.telegramSent("acme").at(-1)?.params.text).toBe("You said: <b>still here?</b>");
    expect(fakes.quickchat.calls.at(-1)?.authorization).toBe(`Bearer ${A.quickchatToken}`);
    expect(fakes.quickchat.calls.at(-1)?.body.client_metadata).toMatchObject({ kb_topic: "billing" });

    const mismatch = await admin.call("PUT", "/tenants/acme", { ...edited, id: "other" });
    expect(mismatch.status).toBe(422);
    const invalid = await admin.call("PUT", "/tenants/acme", { ...edited, quickchat: { token: "x" } });
    expect(invalid.status).toBe(422);
    expect(invalid.text).toContain("quickchat.scenario_id");
    // PUT replaces; it never creates.
    const { id: _ignored, ...fresh } = fakes.tenantBody("acme");
    expect((await admin.call("PUT", "/tenants/nobody", fresh)).status).toBe(404);
  });

  it("a ciphertext copied into another tenant's row does not decrypt: that tenant becomes unreadable", async () => {
    expect((await admin.call("POST", "/tenants", fakes.tenantBody("victim"))).status).toBe(201);
    expect((await admin.call("POST", "/tenants", fakes.tenantBody("thief"))).status).toBe(201);
    expect((await sendTelegram(bridge.url, "thief", "before", T.telegramSecret)).status).toBe(200);

    await bridge.database.db.execute(sql`
      update tenants set secrets_encrypted = (select secrets_encrypted from tenants where id = 'victim')
      where id = 'thief'`);
    // What a replica's own write would do: tell every process the row changed.
    await bridge.database.db.execute(sql`select pg_notify('bridge_tenants', 'thief')`);

    await waitFor(
      async () => (await admin.call("GET", "/tenants/thief")).status === 503,
      6_000,
      "thief unreadable",
    );
    // Neither the thief's own secret nor the victim's opens its webhook route: the tenant exists but cannot
    // be read, so the channel is told to come back later (503), not that there is no such tenant.
    for (const secret of [T.telegramSecret, V.telegramSecret]) {
      const response = await sendTelegram(bridge.url, "thief", "after", secret);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ errors: { root: [{ code: "TENANT_UNAVAILABLE" }] } });
    }
    const ids = (await admin.call("GET", "/tenants?limit=100")).json.items.map((t: { id: string }) => t.id);
    expect(ids).not.toContain("thief");
    expect(ids).toContain("victim");
    // The victim is untouched.
    expect((await bridge.tenants.get("victim"))?.quickchat.token).toBe(V.quickchatToken);
    expect(bridge.logs.some((l) => l.includes("stored tenant cannot be read") && l.includes("thief"))).toBe(
      true,
    );
  });

  it("config-file tenants are read-only (409); deleting an API tenant is 204 and its webhooks 404 at once", async () => {
    const config = await admin.call("GET", "/tenants/static-co");
    expect(config.json).toMatchObject({ id: "static-co", source: "config" });
    expect(
      (await admin.call("PUT", "/tenants/static-co", { quickchat: { scenario_id: "x", token: "y" } })).status,
    ).toBe(409);
    expect((await admin.call("DELETE", "/tenants/static-co")).status).toBe(409);
    expect((await admin.call("POST", "/tenants", fakes.tenantBody("static-co"))).status).toBe(409);
    expect((await sendTelegram(bridge.url, "static-co", "hi", S.telegramSecret)).status).toBe(200);

    // "gone" answers, then is deleted.
    expect((await sendTelegram(bridge.url, "gone", "hello", G.telegramSecret)).status).toBe(200);
    const deleted = await admin.call("DELETE", "/tenants/gone");
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe("");
    expect((await sendTelegram(bridge.url, "gone", "hello again", G.telegramSecret)).status).toBe(404);
    expect((await admin.call("GET", "/tenants/gone")).status).toBe(404);
    expect((await admin.call("DELETE", "/tenants/gone")).status).toBe(404);
    // Its messages went with it.
    expect((await admin.call("GET", "/messages?tenant=gone")).json.count).toBe(0);
  });
});

describe("conversations and failed messages", () => {
  it("lists and resets conversations, paginated", async () => {
    for (const chat of [1001, 1002, 1003]) {
      expect(
        (await sendTelegram(bridge.url, "victim", `hi from ${chat}`, V.telegramSecret, chat)).status,
      ).toBe(200);
    }
    await waitFor(() => fakes.telegramSent("victim").length >= 3, 10_000, "three replies");
    const all = await admin.call("GET", "/tenants/victim/conversations");
    expect(all.json).toMatchObject({ offset: 0, limit: 10, count: 3 });
    expect(all.json.items).toHaveLength(3);
    expect(all.json.items[0]).toMatchObject({ channel: "telegram", conv_id: expect.any(String) });
    const page = await admin.call("GET", "/tenants/victim/conversations?limit=2&offset=2&channel=telegram");
    expect(page.json).toMatchObject({ offset: 2, limit: 2, count: 3 });
    expect(page.json.items).toHaveLength(1);
    expect((await admin.call("GET", "/tenants/victim/conversations?channel=slack")).json.count).toBe(0);
    expect((await admin.call("GET", "/tenants/victim/conversations?channel=fax")).status).toBe(422);
    expect((await admin.call("GET", "/tenants/nobody/conversations")).status).toBe(404);

    const reset = await admin.call("DELETE", "/tenants/victim/conversations/1002?channel=telegram");
    expect(reset.status).toBe(204);
    expect((await admin.call("DELETE", "/tenants/victim/conversations/1002")).status).toBe(404);
    expect((await admin.call("GET", "/tenants/victim/conversations")).json.count).toBe(2);
    // Another tenant cannot reset it.
    expect((await admin.call("DELETE", "/tenants/acme/conversations/1001")).status).toBe(404);

    // The reset thread starts a new Quickchat conversation.
    const calls = fakes.quickchat.calls.length;
    expect((await sendTelegram(bridge.url, "victim", "fresh start", V.telegramSecret, 1002)).status).toBe(
      200,
    );
    await waitFor(() => fakes.quickchat.calls.length > calls, 10_000, "Quickchat call");
    const call = fakes.quickchat.calls.find((c) => c.body.text === "fresh start");
    expect(call?.body.conv_id).toBeUndefined();
  });

  it("lists a failed message and retries it once its scenario is fixed", async () => {
    const broken = { ...fakes.tenantBody("acme"), id: "broken" };
    broken.quickchat = { ...broken.quickchat, scenario_id: "broken-scenario" };
    guard.expectRefusal(/^quickchat: 404 No implementation found for scenario_id broken-scenario$/);
    guard.expectUserText("unavailable");
    expect((await admin.call("POST", "/tenants", broken)).status).toBe(201);
    expect((await sendTelegram(bridge.url, "broken", "are you there?", A.telegramSecret, 2001)).status).toBe(
      200,
    );

    const failed = await waitFor(
      async () => {
        const r = await admin.call("GET", "/messages?tenant=broken&status=failed");
        return r.json.count === 1 ? r.json : undefined;
      },
      10_000,
      "the failed message",
    );
    expect(failed).toMatchObject({ offset: 0, limit: 10, count: 1 });
    expect(failed.items[0]).toMatchObject({
      tenant: "broken",
      channel: "telegram",
      status: "failed",
      text: "are you there?",
      error: expect.any(String),
    });
    const sentTo = () =>
      fakes
        .telegramSent("acme")
        .filter((c) => c.params.chat_id === 2001)
        .map((c) => String(c.params.text));
    await waitFor(() => sentTo().length === 1, 10_000, "the unavailable text");
    expect(sentTo()[0]).toMatch(/can't answer right now/);

    const id = failed.items[0].id;
    fakes.scenarios["broken-scenario"] = A.quickchatToken;
    const retry = await admin.call("POST", `/messages/${id}/retry`);
    expect(retry.status).toBe(200);
    expect(retry.json).toEqual({ id, status: "pending" });
    await waitFor(() => sentTo().length === 2, 10_000, "the real answer");
    expect(sentTo()[1]).toBe("You said: <b>are you there?</b>");
    // The reply reaches the channel before the row is marked delivered: wait for the mark.
    await waitFor(
      async () => (await admin.call("GET", "/messages?tenant=broken&status=delivered")).json.count === 1,
      10_000,
      "the message marked delivered",
    );
    const after = await admin.call("GET", "/messages?tenant=broken&status=failed");
    expect(after.json.count).toBe(0);

    expect((await admin.call("POST", `/messages/${id}/retry`)).status).toBe(409);
    expect((await admin.call("POST", "/messages/99999999/retry")).status).toBe(404);
    expect((await admin.call("POST", "/messages/abc/retry")).status).toBe(422);
    expect((await admin.call("GET", "/messages?status=lost")).status).toBe(422);
    const all = await admin.call("GET", "/messages?limit=2");
    expect(all.json).toMatchObject({ offset: 0, limit: 2 });
    expect(all.json.items).toHaveLength(2);
    expect(all.json.count).toBeGreaterThan(2);
  });
});

describe("NUL characters (found by the fault suite's bad-input run)", () => {
  it("in tenant ids, thread ids and filters are a 4xx, not a database error", async () => {
    for (const [method, path, status] of [
      ["GET", "/tenants/a%00b", 404],
      ["DELETE", "/tenants/a%00b", 404],
      ["GET", "/tenants/a%00b/conversations", 404],
      ["DELETE", "/tenants/static-co/conversations/x%00y", 404],
      ["DELETE", "/tenants/static-co/conversations/x?channel=%00", 422],
      ["GET", "/messages?tenant=%00", 422],
    ] as const) {
      const response = await admin.call(method, path);
      expect(response.status, `${method} ${path}`).toBe(status);
      expect(response.json.errors.root[0].code).toMatch(/NOT_FOUND|VALIDATION_ERROR/);
    }
    const webhook = await fetch(`${bridge.url}/webhooks/static-co%00/telegram`, {
      method: "POST",
      body: "{}",
    });
    expect(webhook.status).toBe(404);
  });
});

describe("the admin API cannot send stored secrets elsewhere", () => {
  it("a PUT that changes a block's destination must carry the block's secrets; nothing goes to the new host", async () => {
    const elsewhere = await new QuickchatFake({ scenarios: {} }).start();
    guard.watch(elsewhere);
    try {
      const { id: _id, source: _source, ...shown } = (await admin.call("GET", "/tenants/acme")).json;
      const attempts = [
        { ...shown, quickchat: { ...shown.quickchat, base_url: elsewhere.url } },
        { ...shown, telegram: { ...shown.telegram, api_root: elsewhere.url } },
        { ...shown, slack: { ...shown.slack, api_url: `${elsewhere.url}/api/` } },
        { ...shown, whatsapp: { ...shown.whatsapp, api_base: elsewhere.url } },
      ];
      const { base_url: _custom, ...withoutBaseUrl } = shown.quickchat;
      // Omitting a custom base_url points the token at Quickchat's default host: a change too.
      attempts.push({ ...shown, quickchat: withoutBaseUrl });
      for (const body of attempts) {
        const put = await admin.call("PUT", "/tenants/acme", body);
        expect(put.status).toBe(422);
        expect(put.json.errors.root[0]).toMatchObject({ code: "SECRET_REQUIRED" });
        expect(put.json.errors.root.slice(1).map((e: { path: string }) => e.path)).not.toEqual([]);
      }
      const stored = await bridge.tenants.get("acme");
      expect(stored?.quickchat.base_url).toBe(fakes.quickchat.url);
      expect(stored?.telegram?.api_root).toBe(fakes.telegramUrl);

      const before = fakes.quickchat.calls.length;
      expect((await sendTelegram(bridge.url, "acme", "where to?", A.telegramSecret, 3001)).status).toBe(200);
      await waitFor(() => fakes.quickchat.calls.length > before, 10_000, "acme's Quickchat call");
      expect(elsewhere.calls).toEqual([]);

      // With the token in the same request the move is accepted, and only that token goes there. The host's
      // answer body is not repeated in the message's error.
      const fresh = "acme-token-for-the-new-host-0123";
      const moved = await admin.call("PUT", "/tenants/acme", {
        ...shown,
        quickchat: { ...shown.quickchat, base_url: elsewhere.url, token: fresh },
      });
      expect(moved.status).toBe(200);
      elsewhere.fail(1, 403, "<html>host detail ELSEWHERE-BODY-7f3a</html>");
      guard.expectUserText("unavailable");
      expect((await sendTelegram(bridge.url, "acme", "moved", A.telegramSecret, 3002)).status).toBe(200);
      const failed = await waitFor(
        async () => {
          const r = await admin.call("GET", "/messages?tenant=acme&status=failed");
          return r.json.items.find((m: { text: string }) => m.text === "moved");
        },
        10_000,
        "the failed message",
      );
      expect(elsewhere.calls.map((c) => c.authorization)).toEqual([`Bearer ${fresh}`]);
      expect(failed.error).toBe("Quickchat answered 403");
      expect([...admin.seen, ...bridge.logs].join("\n")).not.toContain("ELSEWHERE-BODY");

      const restored = await admin.call("PUT", "/tenants/acme", {
        ...shown,
        quickchat: { ...shown.quickchat, token: A.quickchatToken },
      });
      expect(restored.status).toBe(200);
    } finally {
      await elsewhere.close();
    }
  });

  it("takes the Bearer scheme in any case", async () => {
    for (const scheme of ["bearer", "BEARER", "BeArEr"]) {
      const response = await fetch(`${bridge.url}/admin/tenants`, {
        headers: { authorization: `${scheme} ${ADMIN_TOKEN}` },
      });
      expect(response.status, scheme).toBe(200);
    }
  });

  it("refuses bodies over 1 MiB with 413, declared or chunked, and stores nothing", async () => {
    const big = JSON.stringify({
      ...fakes.tenantBody("acme"),
      id: "huge",
      texts: { reset: "x".repeat(1 << 20) },
    });
    const declared = await admin.call("POST", "/tenants", big);
    expect(declared.status).toBe(413);
    expect(declared.json).toEqual({
      errors: { root: [{ code: "PAYLOAD_TOO_LARGE", message: expect.any(String) }] },
    });

    const bytes = new TextEncoder().encode(big);
    const chunked = await fetch(`${bridge.url}/admin/tenants/acme`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 64 * 1024)
            controller.enqueue(bytes.subarray(i, i + 64 * 1024));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await chunked.json()).toMatchObject({ errors: { root: [{ code: "PAYLOAD_TOO_LARGE" }] } });
    expect((await admin.call("GET", "/tenants/huge")).status).toBe(404);
    expect((await bridge.tenants.get("acme"))?.texts.reset).not.toMatch(/^x+$/);
  });
});
