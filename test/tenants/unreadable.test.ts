/**
 * A stored tenant this process cannot read (its key has not reached this process yet, mid-rotation) exists:
 * its webhooks get 503 so the channel redelivers, and its queued messages wait instead of failing.
 */
import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inboundMessages } from "../../src/db/schema.js";
import {
  ADMIN_TOKEN,
  adminClient,
  ChannelFakes,
  credentials,
  PUBLIC_URL,
  sendTelegram,
} from "../admin/support.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";

const C = credentials("keyed", 1);
const [K1, K2] = [randomBytes(32).toString("base64"), randomBytes(32).toString("base64")];

describe.skipIf(!POSTGRES_URL)("a tenant sealed with a key this process lacks", () => {
  let fakes: ChannelFakes;
  let database: TestDatabase;
  /** Has the new key first: it writes with K2. No worker. */
  let writer: TestBridge;
  /** Knows only K1. */
  let reader: TestBridge;
  let later: TestBridge | undefined;
  const admin = adminClient(() => writer);

  beforeAll(async () => {
    fakes = await new ChannelFakes({ keyed: C }).start();
    database = await createPostgresDatabase();
    const common = { tenants: [], databaseUrl: database.url!, publicUrl: PUBLIC_URL };
    writer = await startTestBridge({
      ...common,
      worker: false,
      env: { ADMIN_TOKEN, BRIDGE_SECRET_KEY: `${K2},${K1}` },
    });
    reader = await startTestBridge({ ...common, env: { BRIDGE_SECRET_KEY: K1 } });
  });

  afterAll(async () => {
    await writer?.stop();
    await reader?.stop();
    await later?.stop();
    await database?.drop();
    await fakes?.close();
  });

  it("answers its webhooks 503, and its messages wait until a process with the key takes them", async () => {
    expect((await admin.call("POST", "/tenants", fakes.tenantBody("keyed"))).status).toBe(201);

    const refused = await sendTelegram(reader.url, "keyed", "to the reader", C.telegramSecret);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ errors: { root: [{ code: "TENANT_UNAVAILABLE" }] } });

    // Stored through the writer, claimed by the reader's worker, which cannot read the tenant.
    expect((await sendTelegram(writer.url, "keyed", "queued", C.telegramSecret)).status).toBe(200);
    const row = () =>
      writer.database.db
        .select()
        .from(inboundMessages)
        .where(eq(inboundMessages.text, "queued"))
        .then((rows) => rows[0]);
    await waitFor(async () => ((await row())?.attempts ?? 0) >= 2, 10_000, "the reader to try twice");
    expect((await row())?.status).toBe("pending");
    expect(fakes.quickchat.calls).toEqual([]);
    expect(reader.logs.some((l) => l.includes("tenant cannot be read with this process's keys"))).toBe(true);

    // The reader is replaced by one that has the new key too: the message is answered, never failed.
    await reader.stop();
    later = await startTestBridge({
      tenants: [],
      databaseUrl: database.url!,
      publicUrl: PUBLIC_URL,
      env: { BRIDGE_SECRET_KEY: `${K1},${K2}` },
    });
    await waitFor(async () => (await row())?.status === "delivered", 15_000, "the message delivered");
    expect(fakes.telegramSent("keyed").map((c) => String(c.params.text))).toEqual([
      "You said: <b>queued</b>",
    ]);
  });
});
