import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { outboundMessages } from "../../src/db/schema.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import {
  createTwilioFake,
  inboundText,
  postTwilioWebhook,
  statusCallbackParams,
  type TwilioFake,
} from "../fakes/twilio.js";
import { createTestDatabase, DATABASE_KINDS, partByChannelId, type TestDatabase } from "../support/db.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";

/**
 * Twilio's status callbacks arrive in any order: a part only moves forward (sent → delivered → read), and
 * failed or undelivered is final. Over HTTP, signed as Twilio signs them, on PGlite and PostgreSQL.
 */

const SID = "AC33333333333333333333333333333333";
const TOKEN = "status-order-twilio-auth-token";
const OURS = "whatsapp:+14155238886";
const PUBLIC = "https://bridge.example.com";

describe.each(DATABASE_KINDS)("status callbacks out of order (%s)", (kind) => {
  let quickchat: QuickchatFake;
  let twilio: TwilioFake;
  let twilioServer: RunningFake;
  let database: TestDatabase;
  let bridge: TestBridge;

  beforeEach(async () => {
    quickchat = await new QuickchatFake({ scenarios: { s: "t" }, reply: (text) => `Re: ${text}` }).start();
    twilio = createTwilioFake({ [SID]: TOKEN });
    twilioServer = await startFake(twilio.app);
    database = await createTestDatabase(kind);
    bridge = await startTestBridge({
      tenants: [
        {
          id: "acme",
          quickchat: { scenario_id: "s", token: "t", base_url: quickchat.url },
          whatsapp: { account_sid: SID, auth_token: TOKEN, from: OURS, api_base: twilioServer.url },
        },
      ],
      publicUrl: PUBLIC,
      ...(database.url && { databaseUrl: database.url }),
    });
  });

  afterEach(async () => {
    await bridge?.stop();
    await database?.drop();
    await twilioServer?.close();
    await quickchat?.close();
  });

  /** Sends `count` messages and returns the SIDs of the replies once all are sent. */
  async function replies(count: number): Promise<string[]> {
    for (let i = 0; i < count; i++) {
      const params = inboundText(`message ${i}`, { accountSid: SID, from: `whatsapp:+3161000000${i}` });
      const response = await postTwilioWebhook(`${bridge.url}/webhooks/acme/whatsapp`, {
        authToken: TOKEN,
        params,
        signedUrl: `${PUBLIC}/webhooks/acme/whatsapp`,
      });
      expect(response.status).toBe(200);
    }
    await waitFor(async () => (await parts()).filter((p) => p.channelMessageId).length >= count);
    return twilio.sent().map((call) => call.sid!);
  }

  const parts = () => bridge.database.db.select().from(outboundMessages);
  const statusOf = (sid: string) => partByChannelId(bridge.database.db, sid);
  const report = async (sid: string, status: string, errorCode?: string) => {
    const deliverTo = `${bridge.url}/webhooks/acme/whatsapp/status`;
    const response = await twilio.postStatus(sid, status, { deliverTo, ...(errorCode && { errorCode }) });
    expect(response.status).toBe(204);
  };

  it("keeps the later status when an earlier one arrives after it, and never leaves a final one", async () => {
    const [delivered, read, failed, undelivered] = await replies(4);

    await report(delivered!, "delivered");
    await report(delivered!, "sent");
    await report(delivered!, "queued");
    expect(await statusOf(delivered!)).toMatchObject({ status: "delivered" });

    await report(read!, "read");
    await report(read!, "delivered");
    await report(read!, "sent");
    expect(await statusOf(read!)).toMatchObject({ status: "read" });

    await report(failed!, "sent");
    await report(failed!, "failed", "30008");
    await report(failed!, "delivered");
    await report(failed!, "read");
    expect(await statusOf(failed!)).toMatchObject({ status: "failed", errorCode: "30008" });

    await report(undelivered!, "delivered");
    await report(undelivered!, "undelivered", "63016");
    await report(undelivered!, "failed", "63003");
    await report(undelivered!, "read");
    expect(await statusOf(undelivered!)).toMatchObject({ status: "undelivered", errorCode: "63016" });
  });

  it("moves a part forward through every step in order", async () => {
    const [sid] = await replies(1);
    for (const status of ["queued", "sent", "delivered", "read"]) {
      await report(sid!, status);
      expect(await statusOf(sid!), status).toMatchObject({ status: status === "queued" ? "sent" : status });
    }
  });

  it("refuses a correctly signed report for another account's message (403) and a malformed MessageSid (400)", async () => {
    const [sid] = await replies(1);
    const statusUrl = `${PUBLIC}/webhooks/acme/whatsapp/status`;
    const post = (params: Record<string, string>) =>
      postTwilioWebhook(`${bridge.url}/webhooks/acme/whatsapp/status`, {
        authToken: TOKEN,
        params,
        signedUrl: statusUrl,
      });
    const base = { messageSid: sid!, status: "failed", to: "whatsapp:+31610000000", from: OURS };
    const foreign = await post(statusCallbackParams({ ...base, accountSid: `AC${"4".repeat(32)}` }));
    expect(foreign.status).toBe(403);
    const malformed = await post(statusCallbackParams({ ...base, accountSid: SID, messageSid: `${sid}0` }));
    expect(malformed.status).toBe(400);
    expect(await statusOf(sid!)).toMatchObject({ status: "sent" });
  });
});
