import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { ChannelSendError } from "../../src/channels/types.js";
import { inboundMessages } from "../../src/db/schema.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "../support/db.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import {
  LoopbackChannel,
  type LoopbackWebhook,
  loopbackHeaders,
  loopbackTenant,
} from "../support/loopback-channel.js";
import { guardUnexpected } from "../support/unexpected.js";

describe.each(DATABASE_KINDS)("relay on %s", (kind) => {
  let quickchat: QuickchatFake;
  let channel: LoopbackChannel;
  let database: TestDatabase;
  let bridge: TestBridge;
  const guard = guardUnexpected();

  async function setup(
    env: Record<string, string> = {},
    options: { scenarios?: Record<string, string>; kbTopic?: string; reply?: () => string } = {},
  ) {
    quickchat = await new QuickchatFake({
      scenarios: options.scenarios ?? { "acme-scenario": "acme-token" },
      ...(options.reply && { reply: options.reply }),
    }).start();
    channel = new LoopbackChannel();
    guard.watch(quickchat, channel);
    database = await createTestDatabase(kind);
    const tenant = loopbackTenant("acme", quickchat.url);
    bridge = await startTestBridge({
      tenants: [{ ...tenant, quickchat: { ...tenant.quickchat, kb_topic: options.kbTopic } }],
      adapters: { telegram: channel },
      ...(database.url && { databaseUrl: database.url }),
      env,
    });
  }

  afterEach(async () => {
    await bridge?.stop();
    await database?.drop();
    await quickchat?.close();
  });

  const send = (msg: LoopbackWebhook) =>
    bridge.post("/webhooks/acme/telegram", JSON.stringify(msg), loopbackHeaders());

  it("creates a conversation on a thread's first message and continues it afterwards", async () => {
    await setup();
    expect((await send({ id: "m1", thread: "t1", user: "u1", text: "hello" })).status).toBe(200);
    await waitFor(() => channel.delivered.length === 1);
    expect((await send({ id: "m2", thread: "t1", user: "u1", text: "again" })).status).toBe(200);
    await waitFor(() => channel.delivered.length === 2);

    expect(quickchat.calls[0]?.body.conv_id).toBeUndefined();
    expect(quickchat.calls[1]?.body.conv_id).toBe("conv-1");
    expect(quickchat.calls[0]?.authorization).toBe("Bearer acme-token");
    expect(quickchat.calls[0]?.body.client_metadata).toEqual({
      channel: "telegram",
      channel_user_id: "u1",
      channel_thread_id: "t1",
    });
    // Quickchat's <br> arrives as a line break, its <b> as Telegram bold.
    expect(channel.thread("t1")[0]).toBe("You said: <b>hello</b>\n(message 2)");
  });

  it("continues each thread's own conversation when several threads have one", async () => {
    await setup();
    const threads = ["t1", "t2", "t3"];
    for (const [i, thread] of threads.entries()) {
      await send({ id: `${thread}-a`, thread, user: "u1", text: "hi" });
      await waitFor(() => channel.delivered.length === i + 1); // conv-1, conv-2, conv-3 in this order
    }
    await Promise.all(threads.map((thread) => send({ id: `${thread}-b`, thread, user: "u1", text: thread })));
    await waitFor(() => channel.delivered.length === 6);
    for (const [i, thread] of threads.entries()) {
      expect(quickchat.calls.find((c) => c.body.text === thread)?.body.conv_id).toBe(`conv-${i + 1}`);
    }
  });

  it("stores and delivers a Quickchat reply that contains NUL (unstorable in PostgreSQL) without it", async () => {
    await setup({}, { reply: () => "all\u0000 good" });
    await send({ id: "m1", thread: "t1", user: "u1", text: "hello" });
    await waitFor(() => channel.delivered.length === 1);
    expect(channel.thread("t1")[0]).toBe("all good");
  });

  it("starts a new conversation when Quickchat says the conv_id is not valid, and still answers", async () => {
    await setup();
    await send({ id: "m1", thread: "t1", user: "u1", text: "one" });
    await waitFor(() => channel.delivered.length === 1);
    quickchat.forgetConversations();
    await send({ id: "m2", thread: "t1", user: "u1", text: "two" });
    await waitFor(() => channel.delivered.length === 2);

    expect(quickchat.calls.map((c) => c.body.conv_id)).toEqual([undefined, "conv-1", undefined]);
    expect(channel.thread("t1")[1]).toContain("two");
    await send({ id: "m3", thread: "t1", user: "u1", text: "three" });
    await waitFor(() => channel.delivered.length === 3);
    expect(quickchat.calls.at(-1)?.body.conv_id).toBe("conv-2");
  });

  it("retries 503 and 429 with backoff, honouring Retry-After, then answers", async () => {
    await setup();
    quickchat.fail(2, 503, "Service unavailable");
    quickchat.fail(1, 429, "Too many requests", { "retry-after": "1" });
    await send({ id: "m1", thread: "t1", user: "u1", text: "patience" });
    await waitFor(() => channel.delivered.length === 1, 15_000);

    expect(quickchat.calls).toHaveLength(4);
    const gaps = quickchat.calls.slice(1).map((c, i) => c.at - quickchat.calls[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(50); // first backoff step: 100 ms ± jitter
    expect(gaps[2]).toBeGreaterThanOrEqual(1000); // Retry-After: 1
    expect(channel.thread("t1")[0]).toContain("patience");
  });

  it("does not retry an unknown scenario and sends the unavailable text; the message is failed", async () => {
    await setup({}, { scenarios: {} });
    guard.expectRefusal(/^quickchat: 404 No implementation found for scenario_id acme-scenario$/);
    guard.expectUserText("unavailable");
    await send({ id: "m1", thread: "t1", user: "u1", text: "hi" });
    await waitFor(() => channel.delivered.length === 1);
    // The final status is written right after the last part is sent; a retry would have come by then.
    await waitFor(
      async () => (await bridge.database.db.select().from(inboundMessages))[0]?.status === "failed",
    );

    expect(quickchat.calls).toHaveLength(1);
    expect(channel.thread("t1")).toEqual([
      "Sorry, I can't answer right now. Please try again in a few minutes.",
    ]);
    const rows = await bridge.database.db.select().from(inboundMessages);
    expect(rows[0]?.status).toBe("failed");
    // The status and the code read from Quickchat's answer, never the answer's text.
    expect(rows[0]?.error).toBe("Quickchat answered 404 (UNKNOWN_SCENARIO)");
  });

  it("gives up after QUICKCHAT_MAX_RETRY_SECONDS with the unavailable text", async () => {
    await setup({ QUICKCHAT_MAX_RETRY_SECONDS: "1" });
    guard.expectUserText("unavailable");
    quickchat.fail(100, 503);
    await send({ id: "m1", thread: "t1", user: "u1", text: "hi" });
    await waitFor(() => channel.delivered.length === 1, 10_000);
    expect(quickchat.calls.length).toBeGreaterThan(1);
    expect(channel.thread("t1")[0]).toMatch(/can't answer right now/);
    // The final status is written right after the last part is sent.
    await waitFor(
      async () => (await bridge.database.db.select().from(inboundMessages))[0]?.status === "failed",
    );
  });

  it("calls Quickchat once for a redelivered message, even when redeliveries race", async () => {
    await setup();
    const msg = { id: "m1", thread: "t1", user: "u1", text: "once" };
    const answers = await Promise.all([send(msg), send(msg), send(msg)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    await waitFor(() => channel.delivered.length === 1);
    await send(msg);
    await new Promise((r) => setTimeout(r, 500));
    expect(quickchat.calls).toHaveLength(1);
    expect(channel.delivered).toHaveLength(1);
  });

  it("handles /reset without Quickchat and starts a new conversation after it", async () => {
    await setup();
    await send({ id: "m1", thread: "t1", user: "u1", text: "hi" });
    await waitFor(() => channel.delivered.length === 1);
    await send({ id: "m2", thread: "t1", user: "u1", text: "", kind: "reset" });
    await waitFor(() => channel.delivered.length === 2);
    expect(channel.thread("t1")[1]).toBe("Okay, let's start over.");
    expect(quickchat.calls).toHaveLength(1);
    await send({ id: "m3", thread: "t1", user: "u1", text: "new topic" });
    await waitFor(() => channel.delivered.length === 3);
    expect(quickchat.calls[1]?.body.conv_id).toBeUndefined();
  });

  it("re-sends a part as plain text when the channel rejects its markup", async () => {
    await setup();
    channel.sendFailures.push(new ChannelSendError("markup", "can't parse entities"));
    await send({ id: "m1", thread: "t1", user: "u1", text: "x" });
    await waitFor(() => channel.delivered.length === 1);
    expect(channel.delivered[0]).toMatchObject({ plain: true, text: "You said: x\n(message 2)" });
  });

  it("retries a failed send without asking Quickchat again, and fails permanently rejected sends", async () => {
    await setup();
    channel.sendFailures.push(new ChannelSendError("retry", "429", "429", 300));
    await send({ id: "m1", thread: "t1", user: "u1", text: "a" });
    await waitFor(() => channel.delivered.length === 1);
    expect(quickchat.calls).toHaveLength(1);

    channel.sendFailures.push(new ChannelSendError("permanent", "blocked by the user", "403"));
    await send({ id: "m2", thread: "t2", user: "u2", text: "b" });
    await waitFor(async () => {
      const rows = await bridge.database.db.select().from(inboundMessages);
      return rows.find((r) => r.dedupeKey === "m2")?.status === "failed";
    });
    expect(quickchat.calls).toHaveLength(2);
  });

  /** A message leased to `owner` for `seconds`, as a claim leaves it (due again when the lease runs out). */
  const leaseOrphan = (owner: string, seconds: number) =>
    bridge.database.db.insert(inboundMessages).values({
      tenantId: "acme",
      channel: "telegram",
      threadKey: "t1",
      dedupeKey: "orphan",
      kind: "text",
      sender: { id: "u1" },
      route: { thread: "t1" },
      text: "still there?",
      leaseOwner: owner,
      leaseUntil: sql`now() + make_interval(secs => ${seconds})`,
      nextAttemptAt: sql`now() + make_interval(secs => ${seconds})`,
    });

  it("answers a message whose worker died mid-message once its lease expires", async () => {
    await setup({ LEASE_SECONDS: "1" });
    // The state a crashed worker leaves: a claimed message with a live lease nobody renews.
    await leaseOrphan("crashed-worker", 1);
    const started = Date.now();
    await waitFor(() => channel.delivered.length === 1, 10_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(channel.thread("t1")[0]).toContain("still there?");
  });

  it("answers a message of a process presumed dead within seconds, long before its lease runs out", async () => {
    await setup({ TAKEOVER_SECONDS: "1" });
    // What a crashed process leaves: its silent heartbeat, and a message leased to it for the default minute.
    await bridge.database.db.execute(
      sql`insert into bridge_processes (id, heartbeat_at) values ('crashed', now() - interval '1 hour')`,
    );
    await leaseOrphan("crashed:1", 60);
    await waitFor(() => channel.delivered.length === 1, 10_000);
    expect(channel.thread("t1")[0]).toContain("still there?");
    expect(bridge.logs.join("\n")).toContain("took over the messages of processes presumed dead");
  });

  it("stops delivering a reply once its lease was taken over, after the part in flight", async () => {
    // Three parts on Telegram (4,096 characters each at most).
    const paragraph = "word ".repeat(600).trim();
    await setup({}, { reply: () => `<p>${paragraph}</p><p>${paragraph}</p><p>${paragraph}</p>` });
    let taken = false;
    channel.beforeSend = async () => {
      if (taken) return;
      taken = true;
      // Another process takes the message over while the first part is on its way.
      await bridge.database.db.update(inboundMessages).set({ leaseOwner: "other:1" });
    };
    await send({ id: "m1", thread: "t1", user: "u1", text: "long" });
    await waitFor(() => bridge.logs.some((line) => line.includes("lease lost during delivery")));
    expect(channel.delivered).toHaveLength(1);
  });

  it("sends all five client_metadata keys when the sender has a name and the tenant a kb_topic", async () => {
    await setup({}, { kbTopic: "support" });
    await send({ id: "m1", thread: "t1", user: "u1", name: "Zoë", text: "hi" });
    await send({ id: "m2", thread: "t1", user: "u1", name: "Zoë", text: "again" });
    await waitFor(() => channel.delivered.length === 2);
    const all = { channel: "telegram", channel_user_id: "u1", channel_thread_id: "t1", user_name: "Zoë" };
    // Quickchat accepts at most 5 keys (its fake answers 400 to a sixth): these are all of them.
    expect(quickchat.calls.map((call) => call.body.client_metadata)).toEqual([
      { ...all, kb_topic: "support" },
      { ...all, kb_topic: "support" },
    ]);
    expect(Object.keys(quickchat.calls[0]?.body.client_metadata ?? {})).toHaveLength(5);
    // Quickchat's answers, not the unavailable text a refused request ends in.
    expect(channel.thread("t1")).toEqual([
      "You said: <b>hi</b>\n(message 2)",
      "You said: <b>again</b>\n(message 4)",
    ]);
  });
});
