import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuickchatFake } from "../fakes/quickchat.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { LoopbackChannel, loopbackHeaders, loopbackTenant } from "../support/loopback-channel.js";

function sample(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

describe("GET /metrics", () => {
  let quickchat: QuickchatFake;
  let bridge: TestBridge;
  const channel = new LoopbackChannel();

  beforeAll(async () => {
    quickchat = await new QuickchatFake({ scenarios: { "acme-scenario": "acme-token" } }).start();
    bridge = await startTestBridge({
      tenants: [loopbackTenant("acme", quickchat.url)],
      adapters: { telegram: channel },
    });
  });
  afterAll(async () => {
    await bridge.stop();
    await quickchat.close();
  });

  it("shows the counters moving after real traffic, with bounded labels", async () => {
    const scrape = async () => (await fetch(`${bridge.url}/metrics`)).text();
    const before = await scrape();
    expect(before).toContain("bridge_process_resident_memory_bytes");

    const body = (id: string) => JSON.stringify({ id, thread: `thread-${id}`, user: "user-1", text: "hi" });
    await bridge.post("/webhooks/acme/telegram", body("m1"), loopbackHeaders());
    await bridge.post("/webhooks/acme/telegram", body("m1"), loopbackHeaders());
    await bridge.post("/webhooks/acme/telegram", body("m2"), { "x-test-secret": "wrong" });
    await waitFor(() => channel.delivered.length === 1);
    await waitFor(
      async () => sample(await scrape(), "bridge_messages_finished_total", 'status="delivered"') === 1,
    );

    const after = await scrape();
    const tg = 'tenant="acme",channel="telegram"';
    expect(sample(after, "bridge_webhooks_total", `${tg},outcome="stored"`)).toBe(1);
    expect(sample(after, "bridge_webhooks_total", `${tg},outcome="duplicate"`)).toBe(1);
    expect(sample(after, "bridge_webhooks_total", `${tg},outcome="rejected"`)).toBe(1);
    expect(sample(after, "bridge_outbound_sends_total", `${tg},outcome="sent"`)).toBe(1);
    expect(sample(after, "bridge_quickchat_request_seconds_count", 'tenant="acme"')).toBe(1);
    expect(after).toMatch(/^bridge_queue_depth 0$/m);
    // No thread or user ids in any label.
    expect(after).not.toMatch(/thread-m1|user-1/);
  });
});
