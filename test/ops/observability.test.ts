/**
 * The docs name only metrics that a running service exposes on /metrics.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getTableName, is } from "drizzle-orm";
import { PgTable } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as schema from "../../src/db/schema.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { type Exposition, parseExposition, promqlProblems, unknownInProse } from "../support/exposition.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { LoopbackChannel, loopbackHeaders, loopbackTenant } from "../support/loopback-channel.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const read = (path: string) => readFileSync(resolve(ROOT, path), "utf8");

/** The database's tables: `bridge_processes` is named in the docs, and is not a metric. */
const TABLES = new Set(
  Object.values(schema)
    .filter((value) => is(value, PgTable))
    .map((table) => getTableName(table as PgTable)),
);

describe("metrics named in docs", () => {
  let quickchat: QuickchatFake;
  let bridge: TestBridge;
  let exposition: Exposition;

  // Every labelled series exists once one message is delivered and one fails: `broken`'s scenario is unknown
  // to Quickchat (a misconfigured tenant), so its message fails after the `unavailable` text is sent.
  beforeAll(async () => {
    quickchat = await new QuickchatFake({ scenarios: { "acme-scenario": "acme-token" } }).start();
    bridge = await startTestBridge({
      tenants: [loopbackTenant("acme", quickchat.url), loopbackTenant("broken", quickchat.url)],
      adapters: { telegram: new LoopbackChannel() },
    });
    for (const tenant of ["acme", "broken"]) {
      const body = JSON.stringify({ id: `${tenant}-1`, thread: "t", user: "u", text: "hi" });
      expect((await bridge.post(`/webhooks/${tenant}/telegram`, body, loopbackHeaders())).status).toBe(200);
    }
    const scrape = async () => parseExposition(await (await fetch(`${bridge.url}/metrics`)).text());
    exposition = (await waitFor(
      async () => {
        const scraped = await scrape();
        const statuses = scraped.series.get("bridge_messages_finished_total")?.get("status");
        return statuses?.has("delivered") && statuses.has("failed") ? scraped : undefined;
      },
      10_000,
      "a delivered and a failed message",
    ))!;
  });
  afterAll(async () => {
    await bridge?.stop();
    await quickchat?.close();
  });

  it("has a series with labels for every metric the service defines", () => {
    for (const name of [
      "bridge_webhooks_total",
      "bridge_quickchat_errors_total",
      "bridge_outbound_sends_total",
    ])
      expect([...(exposition.series.get(name)?.keys() ?? [])], name).toContain("tenant");
    expect(exposition.series.get("bridge_quickchat_request_seconds_bucket")?.has("le")).toBe(true);
    expect(exposition.series.has("bridge_quickchat_request_seconds")).toBe(false);
  });

  it("README.md and docs/*.md name only metrics on /metrics", () => {
    const docs = ["README.md", ...readdirSync(resolve(ROOT, "docs")).map((file) => `docs/${file}`)];
    for (const path of docs.filter((p) => p.endsWith(".md")))
      expect(unknownInProse(read(path), exposition, TABLES), path).toEqual([]);
  });

  it("the helper catches a misnamed metric, a missing label, an unknown value and a family used as a series", () => {
    expect(unknownInProse("`bridge_process_event_loop_lag`, `bridge_process_*`", exposition, TABLES)).toEqual(
      ["bridge_process_event_loop_lag"],
    );
    expect(promqlProblems('sum by (tenant) (bridge_queue_depth{job="x"})', exposition)).toEqual([
      "bridge_queue_depth has no label tenant",
    ]);
    expect(promqlProblems('bridge_messages_finished_total{status="lost"}', exposition)).toHaveLength(1);
    expect(promqlProblems("rate(bridge_quickchat_request_seconds[5m])", exposition)).toHaveLength(1);
  });
});
