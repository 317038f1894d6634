import { describe, expect, it, onTestFinished } from "vitest";
import { QuickchatFake } from "../fakes/quickchat.js";
import { startBridges } from "../support/bridges.js";
import { DATABASE_KINDS } from "../support/db.js";
import { waitFor } from "../support/harness.js";
import { LoopbackChannel, loopbackHeaders, loopbackTenant } from "../support/loopback-channel.js";
import { guardUnexpected } from "../support/unexpected.js";

describe.each(DATABASE_KINDS)("per-thread order on %s", (kind) => {
  const guard = guardUnexpected();

  it("asks Quickchat for a thread's next message only once the one before it is delivered", async () => {
    const quickchat = await new QuickchatFake({
      scenarios: { "acme-scenario": "acme-token" },
      reply: (text) => `re:${text}`,
    }).start();
    onTestFinished(() => quickchat.close());
    const channel = new LoopbackChannel();
    guard.watch(quickchat, channel);
    const [bridge] = await startBridges(kind, [
      { tenants: [loopbackTenant("acme", quickchat.url)], adapters: { telegram: channel } },
    ]);
    const send = async (id: string, thread = "t1") => {
      const body = JSON.stringify({ id, thread, user: "u", text: id });
      expect((await bridge!.post("/webhooks/acme/telegram", body, loopbackHeaders())).status).toBe(200);
    };
    const asked = () => quickchat.calls.map((call) => call.body.text);

    // m2 arrives while Quickchat is answering m1; n2 while n1's reply is on its way to the channel, as is m1's.
    // The worker takes a message straight from its webhook's insert when its thread has nothing unfinished: the
    // insert of w, a third thread's, hands it over after any of m2 or n2 it would have handed over.
    const answer = quickchat.hold();
    onTestFinished(answer);
    await send("m1");
    await waitFor(() => asked().length === 1, 10_000, "m1 asked of Quickchat");
    await send("m2");
    const deliver = channel.hold();
    onTestFinished(deliver); // released before the bridge stops, which waits for sends on their way
    answer();
    await waitFor(() => channel.holding === 1, 10_000, "m1's reply at the channel");
    await send("n1", "t2");
    await waitFor(() => channel.holding === 2, 10_000, "n1's reply at the channel");
    await send("n2", "t2");
    await send("w", "t3");
    await waitFor(() => asked().includes("w"), 10_000, "the third thread's message asked of Quickchat");
    expect(asked()).toEqual(["m1", "n1", "w"]);

    deliver();
    await waitFor(() => channel.delivered.length === 5, 10_000, "every reply");
    expect(channel.thread("t1")).toEqual(["re:m1", "re:m2"]);
    expect(channel.thread("t2")).toEqual(["re:n1", "re:n2"]);
    const askedAt = (id: string) => quickchat.calls.find((call) => call.body.text === id)?.at ?? 0;
    const deliveredAt = (id: string) => channel.delivered.find((d) => d.text === `re:${id}`)?.at ?? Infinity;
    expect(askedAt("m2")).toBeGreaterThanOrEqual(deliveredAt("m1"));
    expect(askedAt("n2")).toBeGreaterThanOrEqual(deliveredAt("n1"));
  });
});
