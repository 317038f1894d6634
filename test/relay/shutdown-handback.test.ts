import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuickchatFake } from "../fakes/quickchat.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import {
  type Delivered,
  LoopbackChannel,
  loopbackHeaders,
  loopbackTenant,
} from "../support/loopback-channel.js";
import { guardUnexpected } from "../support/unexpected.js";

/** Two paragraphs of 3,000 characters: a reply the channel (Telegram's 4,096 limit) gets in two parts. */
const PARAGRAPH = "word ".repeat(600).trim();

/**
 * A shutdown whose timeout passes while a send is on its way to the channel: handing that message back
 * at once lets another replica send the same part again (a duplicate reply, found by the fault suite's
 * replica-stop scenario at full size). The send is waited for; the message goes back before its next part.
 */
describe.skipIf(!POSTGRES_URL)("graceful stop past its timeout with a send in flight", () => {
  let quickchat: QuickchatFake;
  let database: TestDatabase;
  const bridges: TestBridge[] = [];
  const delivered: Delivered[] = [];
  const stopping = new LoopbackChannel(delivered);
  const taking = new LoopbackChannel(delivered);
  const guard = guardUnexpected();

  beforeAll(async () => {
    quickchat = await new QuickchatFake({
      scenarios: { "acme-scenario": "acme-token" },
      reply: () => `<p>${PARAGRAPH}</p><p>${PARAGRAPH}</p>`,
    }).start();
    database = await createPostgresDatabase();
    guard.watch(quickchat, stopping, taking);
  });

  afterAll(async () => {
    for (const b of bridges) await b.stop().catch(() => {});
    await database?.drop();
    await quickchat?.close();
  });

  const start = async (channel: LoopbackChannel) => {
    const bridge = await startTestBridge({
      tenants: [loopbackTenant("acme", quickchat.url)],
      adapters: { telegram: channel },
      databaseUrl: database.url!,
      // A lease that cannot expire during the test: only a hand-back lets the other replica go on.
      env: { SHUTDOWN_TIMEOUT_SECONDS: "1", LEASE_SECONDS: "120" },
    });
    bridges.push(bridge);
    return bridge;
  };

  it("sends every part once: the part in flight by the stopping replica, the next by the other", async () => {
    const a = await start(stopping);
    let opened!: () => void;
    const gate = new Promise<void>((resolve) => {
      opened = resolve;
    });
    let held = false;
    stopping.beforeSend = () => {
      held = true;
      return gate;
    };
    const body = JSON.stringify({ id: "m1", thread: "t1", user: "u1", text: "hello" });
    expect((await a.post("/webhooks/acme/telegram", body, loopbackHeaders())).status).toBe(200);
    await waitFor(() => held, 10_000, "the first part's send under way");

    await start(taking); // the replica that takes the message over
    const stopped = a.stop();
    // Past the stop's 1 s timeout, the first part's send is still on its way; then the channel answers.
    await new Promise((r) => setTimeout(r, 1_500));
    opened();
    await stopped;

    await waitFor(() => delivered.length >= 2, 20_000, "both parts delivered");
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would show up here
    expect(delivered.map((d) => d.text.length)).toEqual([PARAGRAPH.length, PARAGRAPH.length]);
    expect(stopping.sent).toBe(1);
    expect(taking.sent).toBe(1);
    expect(quickchat.calls).toHaveLength(1);
  });
});
