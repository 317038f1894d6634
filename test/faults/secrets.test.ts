/**
 * Secrets: tenants created through the admin API with their own credentials, real traffic on every tenant
 * and channel including failures (bad signatures, Quickchat errors and auth failures, channel errors and
 * unreachable APIs), at LOG_LEVEL=trace; then every secret of every tenant is searched for, raw and in
 * common encodings, in every response (status line, headers, body) and every log line. None may appear.
 */
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChannelFakes, type Credentials, credentials, secretValues } from "../admin/support.js";
import { slackPayloads } from "../fakes/slack.js";
import { inboundText, serverError, signTwilioRequest, toFormBody } from "../fakes/twilio.js";
import { waitFor } from "../support/harness.js";
import { type RawRequest, ResponseLog, send } from "./support/raw-http.js";
import {
  FaultWorld,
  IDS,
  POSTGRES_AVAILABLE,
  SECRETS,
  type ServiceProcess,
  size,
} from "./support/service.js";
import { CHANNELS, deliver, messages } from "./support/traffic.js";

const ROUNDS = size(3, 12);

/** A loopback port nothing listens on: channel and Quickchat calls there fail with ECONNREFUSED. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** The forms a secret could leak in: as is, base64 (also of Basic auth pairs), base64url, URL-encoded, JSON. */
function encodings(secret: string, basicUser?: string): string[] {
  const forms = [
    secret,
    Buffer.from(secret).toString("base64").replace(/=+$/, ""),
    Buffer.from(secret).toString("base64url"),
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
    Buffer.from(secret).toString("hex"),
  ];
  if (basicUser) forms.push(Buffer.from(`${basicUser}:${secret}`).toString("base64").replace(/=+$/, ""));
  // A partial leak (truncation, a mask that shows too much): any 16 consecutive characters.
  for (let i = 0; i + 16 <= secret.length; i++) forms.push(secret.slice(i, i + 16));
  return [...new Set(forms)];
}

describe.runIf(POSTGRES_AVAILABLE)("secrets", () => {
  let world: FaultWorld;
  let service: ServiceProcess;
  let fakes: ChannelFakes;
  const tenants: Record<string, Credentials> = {
    alpha: credentials("alpha", 1),
    beta: credentials("beta", 2),
    gamma: credentials("gamma", 3),
  };
  const responses = new ResponseLog();

  beforeAll(async () => {
    world = await FaultWorld.create({ LOG_LEVEL: "trace" });
    service = await world.startService();
    fakes = await new ChannelFakes(tenants).start();
  });
  afterAll(async () => {
    if (process.env.FAULTS_DUMP_LOGS && world) {
      writeFileSync(process.env.FAULTS_DUMP_LOGS, [...responses.entries, ...world.logs].join("\n"));
    }
    await world?.close();
    await fakes?.close();
  });

  async function call(what: string, req: RawRequest) {
    const response = await send(service.url, req);
    responses.record(what, response.status, Object.entries(response.headers), response.body);
    return response;
  }
  const admin = (method: string, path: string, body?: unknown, token = IDS.adminToken) =>
    call(`admin ${method} ${path}`, {
      method,
      path: `/admin${path}`,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body !== undefined && { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });

  let sequence = 0;
  function telegram(tenant: string, secret: string, text: string, chat: number) {
    const n = ++sequence;
    const user = { id: chat, is_bot: false, first_name: "Secret", last_name: "Keeper" };
    const body = JSON.stringify({
      update_id: n,
      message: { message_id: n, date: 1_760_000_000, chat: { ...user, type: "private" }, from: user, text },
    });
    return call(`telegram ${tenant}`, {
      method: "POST",
      path: `/webhooks/${tenant}/telegram`,
      headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": secret },
      body,
    });
  }
  function slack(tenant: string, signing: string, team: string, text: string, timestamp = Date.now() / 1000) {
    const ts = `${Math.floor(Date.now() / 1000)}.${String(++sequence).padStart(6, "0")}`;
    const body = JSON.stringify(slackPayloads.dm({ team, channel: "D0SECRET", user: "U0ALICE", text, ts }));
    const t = Math.floor(timestamp);
    const signature = createHmac("sha256", signing).update(`v0:${t}:${body}`).digest("hex");
    return call(`slack ${tenant}`, {
      method: "POST",
      path: `/webhooks/${tenant}/slack`,
      headers: {
        "content-type": "application/json",
        "x-slack-request-timestamp": String(t),
        "x-slack-signature": `v0=${signature}`,
      },
      body,
    });
  }
  function whatsapp(tenant: string, token: string, sid: string, text: string, path = "") {
    const url = `/webhooks/${tenant}/whatsapp${path}`;
    const params = inboundText(text, { accountSid: sid, to: "whatsapp:+14155238886" });
    return call(`whatsapp ${tenant}`, {
      method: "POST",
      path: url,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": signTwilioRequest(token, `${IDS.publicUrl}${url}`, params),
      },
      body: toFormBody(params),
    });
  }

  it("no secret of any tenant appears in any response or log line", async () => {
    const started = Date.now();
    const dead = await closedPort();
    const { alpha, beta } = tenants as Record<string, Credentials>;

    // Tenants through the admin API: alpha and beta on the fakes, gamma's channel APIs unreachable.
    expect((await admin("POST", "/tenants", fakes.tenantBody("alpha"))).status).toBe(201);
    expect((await admin("POST", "/tenants", fakes.tenantBody("beta"))).status).toBe(201);
    const gammaBody = fakes.tenantBody("gamma");
    gammaBody.telegram.api_root = dead;
    gammaBody.slack.api_url = `${dead}/api/`;
    gammaBody.whatsapp.api_base = dead;
    expect((await admin("POST", "/tenants", gammaBody)).status).toBe(201);
    // Rejections that could echo what they were sent: a duplicate, an invalid field next to valid secrets,
    // malformed JSON carrying a secret, a write to the config tenant, a wrong token.
    expect((await admin("POST", "/tenants", fakes.tenantBody("alpha"))).status).toBe(409);
    const invalid = fakes.tenantBody("alpha");
    expect(
      (
        await admin("POST", "/tenants", {
          ...invalid,
          id: "delta",
          telegram: { ...invalid.telegram, webhook_secret: `${alpha!.telegramSecret} !` },
        })
      ).status,
    ).toBe(422);
    expect(
      (await admin("POST", "/tenants", `{"id":"x","quickchat":{"token":"${beta!.quickchatToken}"`)).status,
    ).toBe(400);
    expect(
      (await admin("PUT", "/tenants/default", { quickchat: { scenario_id: "s", token: IDS.quickchatToken } }))
        .status,
    ).toBe(409);
    expect((await admin("GET", "/tenants", undefined, IDS.adminToken.slice(0, -1))).status).toBe(401);
    expect((await admin("GET", "/tenants", undefined, `${IDS.adminToken}x`)).status).toBe(401);
    // GET, edit, PUT back with the masked secrets; then rotate one secret.
    const shown = JSON.parse((await admin("GET", "/tenants/beta")).body.toString());
    expect(
      (
        await admin("PUT", "/tenants/beta", {
          ...shown,
          id: undefined,
          source: undefined,
          texts: { reset: "Fresh start." },
        })
      ).status,
    ).toBe(200);
    const rotated = `beta-rotated-slack-bot-token-${"9".repeat(12)}`;
    // The Slack fake does not know the rotated token: beta's Slack calls now fail with invalid_auth.
    expect(
      (
        await admin("PUT", "/tenants/beta", {
          ...shown,
          id: undefined,
          source: undefined,
          slack: { ...shown.slack, bot_token: rotated },
        })
      ).status,
    ).toBe(200);

    // Quickchat trouble for beta: its token no longer matches (400 "not authenticated"), and 5xx for anyone.
    fakes.scenarios["beta-scenario"] = "some-other-token";
    fakes.quickchat.fail(3, 503, "Service unavailable");
    world.fakes.quickchat.fail(2, 500, "Internal error");
    // Channel trouble: Telegram, Slack and Twilio answer errors for a while.
    fakes.telegram.failNext("sendMessage", { kind: "server_error" }, 2);
    fakes.telegram.failNext("sendMessage", { kind: "blocked" }, 1);
    fakes.twilio.failNext(serverError(), serverError());
    world.fakes.telegram.failNext("sendMessage", { kind: "chat_not_found" }, 1);

    const others = Object.values(tenants);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, [id, c]] of Object.entries(tenants).entries()) {
        const text = `secret-round-${round}-${id}`;
        // Valid, then with another tenant's secret (forged), then without.
        expect((await telegram(id, c.telegramSecret, text, 900 + round)).status).toBe(200);
        expect((await telegram(id, others[(i + 1) % 3]!.telegramSecret, text, 900)).status).toBe(401);
        const slackStatus = (await slack(id, c.slackSigning, c.slack.teamId, text)).status;
        expect([200, 503]).toContain(slackStatus); // 503: the bot identity is unavailable (gamma, beta's rotated token)
        expect((await slack(id, c.slackSigning, c.slack.teamId, text, Date.now() / 1000 - 600)).status).toBe(
          401,
        );
        expect((await slack(id, `${c.slackSigning}x`, c.slack.teamId, text)).status).toBe(401);
        expect((await whatsapp(id, c.twilioToken, c.twilioSid, text)).status).toBe(200);
        expect((await whatsapp(id, IDS.twilioToken, c.twilioSid, text)).status).toBe(403);
        expect((await whatsapp(id, c.twilioToken, c.twilioSid, text, "/status")).status).toBeLessThan(500);
      }
      // The env-configured tenant too.
      for (const m of messages(CHANNELS, 1, 1).map((m) => ({ ...m, seq: round }))) {
        expect(await deliver(service.url, m)).toBe(200);
      }
    }
    for (const path of ["/tenants", "/tenants/alpha", "/tenants/beta", "/tenants/gamma", "/tenants/default"])
      expect((await admin("GET", path)).status).toBe(200);
    await call("metrics", { method: "GET", path: "/metrics", headers: {} });

    // Let the workers answer, fail and give up where they must: alpha answers on every channel, beta's
    // messages fail (Quickchat auth), gamma cannot reach anything.
    await waitFor(
      () =>
        fakes.telegramSent("alpha").length > 0 &&
        fakes.twilioSent("alpha").length > 0 &&
        fakes.slackSent("alpha").length > 0 &&
        world.logs.some((l) => l.includes('"tenant":"beta"') && l.includes("Quickchat rejected")) &&
        // gamma's Slack webhooks are already refused (503): its bot identity cannot be looked up.
        (["telegram", "whatsapp"] as const).every((channel) =>
          world.logs.some(
            (l) =>
              l.includes('"tenant":"gamma"') &&
              l.includes(`"channel":"${channel}"`) &&
              l.includes("send failed"),
          ),
        ),
      60_000,
      "alpha answered, beta's Quickchat and gamma's channel failures logged",
    );
    for (const path of [
      "/messages?limit=100",
      "/messages?status=failed&limit=100",
      "/tenants/alpha/conversations",
    ])
      expect((await admin("GET", path)).status).toBe(200);
    await service.stop(); // the shutdown's log lines too

    const haystack = [...responses.entries, ...world.logs].join("\n");
    const secrets: { name: string; value: string; basicUser?: string }[] = [
      ...SECRETS.map((value, i) => ({ name: `fault tenant secret ${i}`, value })),
      { name: "default twilio", value: IDS.twilioToken, basicUser: IDS.twilioSid },
      ...Object.entries(tenants).flatMap(([id, c]) => [
        ...secretValues(c).map((value, i) => ({ name: `${id} secret ${i}`, value })),
        { name: `${id} twilio basic`, value: c.twilioToken, basicUser: c.twilioSid },
      ]),
      { name: "beta rotated slack token", value: rotated },
    ];
    let forms = 0;
    const found: string[] = [];
    for (const secret of secrets) {
      for (const form of encodings(secret.value, secret.basicUser)) {
        forms++;
        const at = haystack.indexOf(form);
        if (at >= 0)
          found.push(
            `${secret.name} as ${JSON.stringify(form)}: …${haystack.slice(Math.max(0, at - 200), at + 100)}…`,
          );
      }
    }
    const masked = haystack.split(`****${alpha!.slack.token.slice(-4)}`).length - 1;
    console.log(
      `secrets: ${secrets.length} secrets × their encodings = ${forms} forms searched in ${responses.entries.length} ` +
        `responses and ${world.logs.length} log lines (${(haystack.length / 1024).toFixed(0)} KiB) in ` +
        `${Date.now() - started} ms; found ${found.length}; alpha's Slack token shown masked ${masked}×; ` +
        `warn/error lines ${world.logs.filter((l) => /"level":"(warn|error)"/.test(l)).length}`,
    );
    expect(found).toEqual([]);
    // The search saw what it had to: masked secrets in admin answers, failures in the logs.
    expect(masked).toBeGreaterThan(0);
    expect(world.logs.some((l) => l.includes('"level":"debug"'))).toBe(true);
    expect(
      world.logs.filter((l) => l.includes('"level":"error"') || l.includes('"level":"warn"')).length,
    ).toBeGreaterThan(3);
  }, 180_000);
});
