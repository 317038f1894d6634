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

const THREADS = 50;
const PER_THREAD = 10;

describe.skipIf(!POSTGRES_URL)("two worker pools on one PostgreSQL database", () => {
  let quickchat: QuickchatFake;
  let database: TestDatabase;
  const bridges: TestBridge[] = [];
  // One delivery log shared by both replicas' channels, in the order sends happened.
  const delivered: Delivered[] = [];
  const channels = [new LoopbackChannel(delivered), new LoopbackChannel(delivered)];
  const channel = channels[0]!;
  const guard = guardUnexpected();

  beforeAll(async () => {
    quickchat = await new QuickchatFake({
      scenarios: { "acme-scenario": "acme-token" },
      reply: (text) => `re:${text}`,
    }).start();
    quickchat.latencyMs = 2;
    guard.watch(quickchat, ...channels);
    database = await createPostgresDatabase();
    for (let i = 0; i < 2; i++) {
      bridges.push(
        await startTestBridge({
          tenants: [loopbackTenant("acme", quickchat.url)],
          adapters: { telegram: channels[i]! },
          databaseUrl: database.url!,
          env: { WORKER_CONCURRENCY: "16" },
        }),
      );
    }
  });

  afterAll(async () => {
    for (const b of bridges) await b.stop();
    await database?.drop();
    await quickchat?.close();
  });

  it("answers 500 messages over 50 threads exactly once each, in per-thread order", async () => {
    // Messages of a thread are posted in order; threads interleave; webhooks alternate between replicas.
    for (let n = 0; n < PER_THREAD; n++) {
      await Promise.all(
        Array.from({ length: THREADS }, (_, t) => {
          const body = JSON.stringify({
            id: `t${t}-m${n}`,
            thread: `t${t}`,
            user: `u${t}`,
            text: `t${t}-m${n}`,
          });
          return bridges[(t + n) % 2]!.post("/webhooks/acme/telegram", body, loopbackHeaders());
        }),
      );
    }
    await waitFor(() => channel.delivered.length >= THREADS * PER_THREAD, 60_000, "all replies");
    await new Promise((r) => setTimeout(r, 500));

    expect(channel.delivered).toHaveLength(THREADS * PER_THREAD);
    expect(new Set(channel.delivered.map((d) => d.inboundId)).size).toBe(THREADS * PER_THREAD);
    expect(quickchat.calls).toHaveLength(THREADS * PER_THREAD);
    for (let t = 0; t < THREADS; t++) {
      expect(channel.thread(`t${t}`)).toEqual(Array.from({ length: PER_THREAD }, (_, n) => `re:t${t}-m${n}`));
    }
    // Both replicas did work.
    expect(channels[0]!.sent).toBeGreaterThan(0);
    expect(channels[1]!.sent).toBeGreaterThan(0);
  });
});
