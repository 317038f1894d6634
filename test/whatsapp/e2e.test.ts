import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inboundMessages, outboundMessages } from "../../src/db/schema.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import {
  createTwilioFake,
  type InboundOptions,
  inboundImage,
  inboundText,
  outsideWindow,
  postTwilioWebhook,
  signTwilioRequest,
  type TwilioFake,
  type TwilioParams,
  toFormBody,
} from "../fakes/twilio.js";
import { partByChannelId, settledInbox } from "../support/db.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { guardUnexpected } from "../support/unexpected.js";

/**
 * The whole service over HTTP: signed Twilio webhooks in, the real twilio client out to the Messages API fake,
 * Quickchat's fake in between, PGlite as the inbox.
 */

const SID = "AC11111111111111111111111111111111";
const TOKEN = "acme-twilio-auth-token-0123456789";
const OTHER_SID = "AC22222222222222222222222222222222";
const OTHER_TOKEN = "globex-twilio-auth-token-98765432";
const USER = "whatsapp:+31612345678";
const OURS = "whatsapp:+14155238886";
const PUBLIC = "https://bridge.example.com";
const ROUTE = "/webhooks/acme/whatsapp";
const STATUS_ROUTE = "/webhooks/acme/whatsapp/status";

/** What Twilio posts for acme's account (its AccountSid is checked). */
const acmeText = (body: string, o: InboundOptions = {}) => inboundText(body, { accountSid: SID, ...o });
const acmeImage = (caption: string | undefined, o: InboundOptions = {}) =>
  inboundImage(caption, { accountSid: SID, ...o });

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

let quickchat: QuickchatFake;
let twilio: TwilioFake;
let twilioServer: RunningFake;
let bridge: TestBridge;
const guard = guardUnexpected();

function tenants() {
  return [
    {
      id: "acme",
      quickchat: { scenario_id: "acme-scenario", token: "acme-token", base_url: quickchat.url },
      whatsapp: { account_sid: SID, auth_token: TOKEN, from: OURS, api_base: twilioServer.url },
    },
    {
      id: "globex",
      quickchat: { scenario_id: "globex-scenario", token: "globex-token", base_url: quickchat.url },
      whatsapp: { account_sid: OTHER_SID, auth_token: OTHER_TOKEN, from: OURS, api_base: twilioServer.url },
    },
  ];
}

beforeEach(async () => {
  quickchat = await new QuickchatFake({
    scenarios: { "acme-scenario": "acme-token", "globex-scenario": "globex-token" },
    reply: (text) => `You said: <b>${escapeHtml(text)}</b>`,
  }).start();
  twilio = createTwilioFake({ [SID]: TOKEN, [OTHER_SID]: OTHER_TOKEN });
  twilioServer = await startFake(twilio.app);
  guard.watch(quickchat, twilio);
  bridge = await startTestBridge({ tenants: tenants(), publicUrl: PUBLIC });
});

afterEach(async () => {
  await bridge?.stop();
  await twilioServer?.close();
  await quickchat?.close();
});

/** Posts an incoming-message webhook as Twilio would, signed for the public URL. */
function deliver(params: TwilioParams, options: { token?: string; to?: TestBridge } = {}) {
  return postTwilioWebhook(`${(options.to ?? bridge).url}${ROUTE}`, {
    authToken: options.token ?? TOKEN,
    params,
    signedUrl: `${PUBLIC}${ROUTE}`,
  });
}

async function deliverOk(params: TwilioParams) {
  const response = await deliver(params);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/xml/);
  expect(await response.text()).toBe("<Response></Response>");
}

const sent = (count: number) => waitFor(() => twilio.sent().length >= count, 10_000, `${count} Twilio sends`);
const bodies = () => twilio.sent().map((call) => call.params.Body);
const inbox = () => bridge.database.db.select().from(inboundMessages);
const parts = () => bridge.database.db.select().from(outboundMessages);

/** The inbox once `count` messages are finished (delivered or failed). */
const settled = (count: number) => settledInbox(bridge.database.db, count);

describe("WhatsApp webhook", () => {
  it("rejects another tenant's token and a missing signature with 403, storing nothing", async () => {
    const params = acmeText("hello");
    const foreign = await deliver(params, { token: OTHER_TOKEN });
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toMatchObject({ errors: { root: [{ code: "PERMISSION_DENIED" }] } });
    const unsigned = await bridge.post(ROUTE, toFormBody(params), {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(unsigned.status).toBe(403);

    const warning = bridge.logs.map((l) => JSON.parse(l)).find((l) => l.url === `${PUBLIC}${ROUTE}`);
    expect(warning).toMatchObject({ level: "warn", tenant: "acme" });
    expect(bridge.logs.join("\n")).not.toContain(TOKEN);

    // Give a worker the chance to (wrongly) pick something up before checking nothing was stored.
    await new Promise((r) => setTimeout(r, 300));
    expect(await inbox()).toEqual([]);
    expect(quickchat.calls).toEqual([]);
    expect(twilio.calls).toEqual([]);
  });

  it("answers 400 to a body that is not a form", async () => {
    const response = await bridge.post(ROUTE, JSON.stringify(acmeText("hi")), {
      "x-twilio-signature": `${"A".repeat(27)}=`,
    });
    expect(response.status).toBe(400);
  });

  it("refuses a correctly signed replay with a rearranged MessageSid (400) or another account's AccountSid (403)", async () => {
    const captured = acmeText("pay 100 euros");
    expect((await deliver(captured)).status).toBe(200);
    await settled(1);

    // The next parameter moved into MessageSid's value: the same signature, a new message id.
    const { MessageType, ...rest } = captured;
    const moved = { ...rest, MessageSid: `${captured.MessageSid}MessageType${MessageType}` };
    const replay = await deliver(moved);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({
      errors: { root: [{ code: "BAD_REQUEST", message: expect.stringMatching(/MessageSid/) }] },
    });

    const foreign = await deliver(acmeText("from another account", { accountSid: OTHER_SID }));
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toMatchObject({
      errors: { root: [{ code: "PERMISSION_DENIED", message: expect.stringMatching(/AccountSid/) }] },
    });

    await new Promise((r) => setTimeout(r, 300));
    expect((await inbox()).map((row) => row.text)).toEqual(["pay 100 euros"]);
    expect(quickchat.calls).toHaveLength(1);
  });

  // 40,000 repeated keys took 17 s to decode (an array copied per key) and then the SDK's validator; now
  // the parameters are counted on the raw bytes, and the validator is never reached (no mismatch logged).
  it.each([
    ["repeated keys", "a&".repeat(40_000)],
    ["distinct keys", Array.from({ length: 150_000 }, (_, i) => i.toString(36)).join("&")],
  ])(
    "refuses a form with more parameters than Twilio sends (%s) with 400 before any signature check",
    async (_, body) => {
      for (const route of [ROUTE, STATUS_ROUTE]) {
        const response = await bridge.post(route, body, {
          "content-type": "application/x-www-form-urlencoded",
          "x-twilio-signature": signTwilioRequest(TOKEN, `${PUBLIC}${route}`, {}),
        });
        expect(response.status, route).toBe(400);
        expect(await response.json()).toMatchObject({ errors: { root: [{ code: "TOO_MANY_PARAMETERS" }] } });
      }
      expect(bridge.logs.some((l) => l.includes("Twilio signature does not match"))).toBe(false);
      expect(await inbox()).toEqual([]);
    },
  );

  it("accepts a signature for the public URL behind a proxy that changed host and scheme", async () => {
    const proxied = await startTestBridge({ tenants: tenants() });
    try {
      const response = await postTwilioWebhook(`${proxied.url}${ROUTE}`, {
        authToken: TOKEN,
        params: acmeText("through the proxy"),
        signedUrl: `${PUBLIC}${ROUTE}`,
        headers: { "x-forwarded-proto": "https", "x-forwarded-host": "bridge.example.com" },
      });
      expect(response.status).toBe(200);
      await sent(1);
      // Without PUBLIC_URL, the verified proxy origin is where delivery reports go.
      expect(twilio.sent()[0]?.params).toMatchObject({
        Body: "You said: *through the proxy*",
        StatusCallback: `${PUBLIC}${STATUS_ROUTE}`,
      });

      const direct = await postTwilioWebhook(`${proxied.url}${ROUTE}`, {
        authToken: TOKEN,
        params: acmeText("no proxy headers"),
        signedUrl: `${PUBLIC}${ROUTE}`,
      });
      expect(direct.status).toBe(403);
    } finally {
      await proxied.stop();
    }
  });
});

describe("WhatsApp conversations", () => {
  it("answers with WhatsApp formatting from our number, and the next message carries the conv_id", async () => {
    await deliverOk(acmeText("hello", { from: USER, to: OURS }));
    await sent(1);
    await deliverOk(acmeText("and again", { from: USER, to: OURS }));
    await sent(2);

    expect(twilio.sent().map((c) => c.params)).toEqual([
      expect.objectContaining({
        To: USER,
        From: OURS,
        Body: "You said: *hello*",
        StatusCallback: `${PUBLIC}${STATUS_ROUTE}`,
      }),
      expect.objectContaining({ To: USER, From: OURS, Body: "You said: *and again*" }),
    ]);
    expect(quickchat.calls.map((c) => c.body.conv_id)).toEqual([undefined, "conv-1"]);
    expect(quickchat.calls[0]?.body.client_metadata).toEqual({
      channel: "whatsapp",
      channel_user_id: "31612345678",
      channel_thread_id: `${OURS}|${USER}`,
      user_name: "Anne de Vries",
    });
  });

  it("keeps non-ASCII bodies and profile names intact both ways", async () => {
    const text = "Grüße aus Köln 👋 ¿qué tal? 日本語 — naïve";
    await deliverOk(acmeText(text, { profileName: "Zoë Łukasiewicz 🌻" }));
    await sent(1);

    expect(quickchat.calls[0]?.body.text).toBe(text);
    expect(quickchat.calls[0]?.body.client_metadata?.user_name).toBe("Zoë Łukasiewicz 🌻");
    expect(bodies()).toEqual([`You said: *${text}*`]);
  });

  it("forwards an image's caption to Quickchat", async () => {
    await deliverOk(acmeImage("What plant is this?"));
    await sent(1);

    expect(bodies()).toEqual(["You said: *What plant is this?*"]);
    expect(quickchat.calls.map((c) => c.body.text)).toEqual(["What plant is this?"]);
  });
});

describe("WhatsApp delivery", () => {
  it("fails the message on 63016 without retrying and logs the code", async () => {
    twilio.failNext(outsideWindow());
    await deliverOk(acmeText("too late"));
    const [row] = await settled(1);
    // Retries run on a 100 ms base here: a retry would have happened by now.
    await new Promise((r) => setTimeout(r, 500));

    expect(row?.status).toBe("failed");
    expect(twilio.calls.map((c) => c.status)).toEqual([400]);
    expect(await parts()).toEqual([expect.objectContaining({ status: "failed", errorCode: "63016" })]);
    expect(bridge.logs.some((l) => l.includes('"code":"63016"'))).toBe(true);
  });

  it("records status callbacks against the part they report on", async () => {
    await deliverOk(acmeText("track me"));
    await deliverOk(acmeText("and me"));
    await settled(2);
    const [first, second] = twilio.sent().map((c) => c.sid!);
    const deliverTo = `${bridge.url}${STATUS_ROUTE}`;

    expect((await twilio.postStatus(first!, "delivered", { deliverTo })).status).toBe(204);
    expect((await twilio.postStatus(first!, "read", { deliverTo })).status).toBe(204);
    expect((await twilio.postStatus(second!, "undelivered", { deliverTo, errorCode: "63016" })).status).toBe(
      204,
    );

    const statusOf = (sid: string) => partByChannelId(bridge.database.db, sid);
    expect(await statusOf(first!)).toMatchObject({ status: "read", errorCode: null });
    expect(await statusOf(second!)).toMatchObject({ status: "undelivered", errorCode: "63016" });
  });

  it("rejects a status callback signed with another token", async () => {
    await deliverOk(acmeText("track me"));
    await settled(1);
    const sid = twilio.sent()[0]!.sid!;
    twilio.accounts.set(SID, "forged-token");
    const response = await twilio.postStatus(sid, "delivered", { deliverTo: `${bridge.url}${STATUS_ROUTE}` });
    expect(response.status).toBe(403);
    expect((await parts())[0]?.status).toBe("sent");
  });
});
