/**
 * What a `/metrics` scrape exposes, and checks that docs, dashboards and alert rules name only that. The text
 * format is Prometheus' (https://prometheus.io/docs/instrumenting/exposition_formats/): `# HELP` and `# TYPE`
 * per family, then one sample per line. A histogram family `x` has no sample named `x`: PromQL selects
 * `x_bucket`, `x_sum` and `x_count`, while prose may name the family.
 */
export interface Exposition {
  /** Sample names, as PromQL selects them, with the label names and values seen on them. */
  series: Map<string, Map<string, Set<string>>>;
  /** `# TYPE` names with their type and help text. */
  families: Map<string, { type: string; help: string }>;
}

/** Labels Prometheus adds at scrape time: never on `/metrics`, always on the stored series. */
const TARGET_LABELS = new Set(["job", "instance"]);

/** This service's metric names, and `bridge_name_*` prefixes, as written in prose or PromQL. */
const METRIC_NAME = /\bbridge_[a-z0-9_]*[a-z0-9](?:_\*)?/g;

export function parseExposition(text: string): Exposition {
  const exposition: Exposition = { series: new Map(), families: new Map() };
  const help = new Map<string, string>();
  for (const line of text.split("\n")) {
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment as unknown as [string, string, string, string];
      if (kind === "HELP") help.set(name, rest);
      else exposition.families.set(name, { type: rest, help: help.get(name) ?? "" });
      continue;
    }
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+/.exec(line);
    if (!sample) continue;
    const labels = exposition.series.get(sample[1]!) ?? new Map<string, Set<string>>();
    exposition.series.set(sample[1]!, labels);
    for (const [, label, value] of (sample[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels.set(label!, (labels.get(label!) ?? new Set()).add(value!));
    }
  }
  return exposition;
}

/**
 * The family a sample belongs to (a histogram's or summary's `_bucket`, `_sum` or `_count` belong to it).
 */
function familyOf(exposition: Exposition, series: string) {
  const base = series.replace(/_(bucket|sum|count)$/, "");
  return exposition.families.get(series) ?? exposition.families.get(base);
}

/** Names of this service's metrics in prose (README, docs) that the scrape has neither as family nor sample. */
export function unknownInProse(text: string, exposition: Exposition, notMetrics: Set<string>): string[] {
  const known = [...exposition.families.keys(), ...exposition.series.keys()];
  return [...new Set(text.match(METRIC_NAME) ?? [])].filter((name) => {
    if (notMetrics.has(name)) return false;
    if (name.endsWith("_*")) return !known.some((k) => k.startsWith(name.slice(0, -1)));
    return !known.includes(name);
  });
}

/**
 * What is wrong with a PromQL expression over this service's metrics: a metric that is not a sample on
 * `/metrics`, a label in a selector or in `by`/`without` that its series do not carry, or a literal label value
 * that neither the metric's help text names nor the scrape shows.
 */
export function promqlProblems(expr: string, exposition: Exposition): string[] {
  const problems: string[] = [];
  const used = [...new Set(expr.match(METRIC_NAME) ?? [])];
  const labelsOf = (name: string) => exposition.series.get(name);
  for (const name of used) if (!labelsOf(name)) problems.push(`${name} is not on /metrics`);
  const carries = (name: string, label: string) => TARGET_LABELS.has(label) || labelsOf(name)?.has(label);

  for (const [, name, matchers] of expr.matchAll(/\b(bridge_\w+)\{([^}]*)\}/g)) {
    for (const [, label, op, value] of matchers!.matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)) {
      if (!carries(name!, label!)) problems.push(`${name} has no label ${label}`);
      else if (op === "=" && !value!.includes("$") && !TARGET_LABELS.has(label!)) {
        const named = new RegExp(`\\b${value}\\b`).test(familyOf(exposition, name!)?.help ?? "");
        if (!named && !labelsOf(name!)?.get(label!)?.has(value!))
          problems.push(`${name}{${label}="${value}"}: no such value`);
      }
    }
  }
  // Grouping labels must be on every one of the expression's series (a ratio divides like by like).
  for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of list!.split(",").map((l) => l.trim())) {
      for (const name of used) if (!carries(name, label)) problems.push(`${name} has no label ${label}`);
    }
  }
  // `label_values(metric, label)`: a Grafana variable's values.
  for (const [, name, label] of expr.matchAll(/label_values\((bridge_\w+)(?:\{[^}]*\})?,\s*(\w+)\)/g)) {
    if (!carries(name!, label!)) problems.push(`${name} has no label ${label}`);
  }
  return problems;
}
