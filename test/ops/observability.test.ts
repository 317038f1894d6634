/**
 * The docs, the Grafana dashboard and the Prometheus alert rules name only metrics (and labels) that a running
 * service exposes on /metrics, and the dashboard and rules files load.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getTableName, is } from "drizzle-orm";
import { PgTable } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
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

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource: { uid: string } }[];
  panels?: Panel[];
}

describe("metrics named in docs, dashboard and alert rules", () => {
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

  it("ops/prometheus/alerts.yml parses as rule groups over exposed metrics and labels", () => {
    const file = parseYaml(read("ops/prometheus/alerts.yml")) as {
      groups: { name: string; rules: AlertRule[] }[];
    };
    const rules = file.groups.flatMap((group) => group.rules);
    expect(new Set(rules.map((rule) => rule.alert)).size).toBe(rules.length);
    for (const rule of rules) {
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^Bridge[A-Za-z]+$/);
      expect(["critical", "warning"], rule.alert).toContain(rule.labels.severity);
      expect(rule.annotations.summary, rule.alert).toBeTruthy();
      if (rule.for !== undefined) expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(promqlProblems(rule.expr, exposition), rule.alert).toEqual([]);
      // An aggregation keeps only its `by` labels: the annotations can use no others.
      const kept = [...rule.expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(/\s*,\s*/));
      const text = `${rule.annotations.summary} ${rule.annotations.description}`;
      if (kept.length > 0)
        for (const [, label] of text.matchAll(/\$labels\.(\w+)/g)) expect(kept, rule.alert).toContain(label);
    }
    // What an operator must act on, each alert named in docs/operations.md.
    for (const metric of [
      "bridge_queue_oldest_pending_seconds",
      'bridge_messages_finished_total{status="failed"}',
      "bridge_quickchat_errors_total",
      'bridge_outbound_sends_total{outcome="permanent"}',
      'bridge_webhooks_total{outcome="rejected"}',
      "up{",
    ])
      expect(
        rules.some((rule) => rule.expr.includes(metric)),
        metric,
      ).toBe(true);
    for (const { alert } of rules) expect(read("docs/operations.md"), alert).toContain(`\`${alert}\``);
  });

  it("ops/grafana/quickchat-bridge.json is a dashboard over exposed metrics, on a Prometheus data source variable", () => {
    const dashboard = JSON.parse(read("ops/grafana/quickchat-bridge.json"));
    const variables: { name: string; type: string; query: string }[] = dashboard.templating.list;
    const source = variables.find((v) => v.type === "datasource");
    expect(source?.query).toBe("prometheus");
    const panels: Panel[] = dashboard.panels.flatMap((p: Panel) => [p, ...(p.panels ?? [])]);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);

    const exprs: string[] = [];
    for (const panel of panels.filter((p) => p.type !== "row")) {
      expect(panel.datasource?.uid, panel.title).toBe(`\${${source?.name}}`);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.datasource.uid, panel.title).toBe(`\${${source?.name}}`);
        expect(promqlProblems(target.expr, exposition), panel.title).toEqual([]);
        exprs.push(target.expr);
      }
    }
    for (const variable of variables.filter((v) => v.type === "query"))
      expect(promqlProblems(variable.query, exposition), variable.name).toEqual([]);

    // Every metric the service defines itself is on the dashboard (the runtime's only in part).
    const own = [...exposition.families.keys()].filter((n) => !/^bridge_(process|nodejs)_/.test(n));
    expect(own.length).toBeGreaterThan(7);
    for (const name of own) expect(exprs.join("\n"), name).toContain(name);
    for (const runtime of ["bridge_process_resident_memory_bytes", "bridge_process_cpu", "eventloop_lag"])
      expect(exprs.join("\n"), runtime).toContain(runtime);
  });
});
