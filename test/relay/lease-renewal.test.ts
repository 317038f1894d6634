import { describe, expect, it, onTestFinished } from "vitest";
import { QuickchatFake } from "../fakes/quickchat.js";
import { startBridges } from "../support/bridges.js";
import { DATABASE_KINDS } from "../support/db.js";
import { waitFor } from "../support/harness.js";
import {
  type Delivered,
  LoopbackChannel,
  loopbackHeaders,
  loopbackTenant,
} from "../support/loopback-channel.js";
import { guardUnexpected } from "../support/unexpected.js";

const LEASE_SECONDS = 2;

describe.each(DATABASE_KINDS)("lease renewal on %s", (kind) => {
  const guard = guardUnexpected();

  it("keeps each message with its worker while Quickchat takes longer than the lease: one call, one reply", async () => {
    const quickchat = await new QuickchatFake({
      scenarios: { "acme-scenario": "acme-token" },
      reply: (text) => `re:${text}`,
    }).start();
    onTestFinished(() => quickchat.close());
    quickchat.latencyMs = (LEASE_SECONDS + 1) * 1000;
    const delivered: Delivered[] = [];
    const channels = [new LoopbackChannel(delivered), new LoopbackChannel(delivered)];
    guard.watch(quickchat, ...channels);
    // Two worker pools on one database: each polls for messages whose lease ran out.
    const replicas = await startBridges(
      kind,
      channels.map((channel) => ({
        tenants: [loopbackTenant("acme", quickchat.url)],
        adapters: { telegram: channel },
        env: { LEASE_SECONDS: String(LEASE_SECONDS) },
      })),
    );
    // Each replica's worker takes its own webhook's message, straight from the insert.
    for (const [i, replica] of replicas.entries()) {
      const body = JSON.stringify({ id: `m${i}`, thread: `t${i}`, user: "u", text: `m${i}` });
      expect((await replica.post("/webhooks/acme/telegram", body, loopbackHeaders())).status).toBe(200);
    }
    // Both replies, or a message asked of Quickchat again: a lease let run out is claimed within a poll.
    await waitFor(() => delivered.length === 2 || quickchat.calls.length > 2, 10_000, "both replies");
    expect(quickchat.calls.map((call) => call.body.text).sort()).toEqual(["m0", "m1"]);
    expect(delivered.map((d) => d.text).sort()).toEqual(["re:m0", "re:m1"]);
    expect(channels.map((channel) => channel.sent)).toEqual([1, 1]);
    expect(
      replicas.flatMap((replica) => replica.logs).filter((line) => /lease lost|took over/.test(line)),
    ).toEqual([]);
  });
});
