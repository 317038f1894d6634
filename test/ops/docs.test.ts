/**
 * The deployment docs only name CLI commands, npm scripts, routes and metrics that exist, and the README
 * documents every setting the service reads, with its real default.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SHORTHAND_VARIABLES, settingsSchema } from "../../src/config/env.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const read = (path: string) => readFileSync(resolve(ROOT, path), "utf8");
const docs = ["docs/deploy.md", "docs/operations.md"].map(read).join("\n");
const run = promisify(execFile);

/** The README's section under `heading`, up to the next heading of any level. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no section ${heading}`);
  const rest = markdown.slice(start + heading.length + 2);
  return rest.slice(0, rest.search(/^#+ /m) >>> 0);
}

const codeSpans = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
const isVariable = (span: string) => /^[A-Z][A-Z0-9_]+$/.test(span);

/**
 * The README's environment table: each row's variables (a row may name several, `PORT`, `HOST`) paired with
 * the code spans of its default column, in the same order.
 */
function environmentTable(readme: string): Map<string, string | undefined> {
  const rows = section(readme, "### Environment")
    .split("\n")
    .filter((line) => line.startsWith("|"))
    .slice(2); // the header and its separator
  const documented = new Map<string, string | undefined>();
  for (const row of rows) {
    const [names = "", , defaults = ""] = row.split("|").slice(1, -1);
    const variables = codeSpans(names).filter(isVariable);
    const values = codeSpans(defaults);
    variables.forEach((variable, i) => {
      documented.set(variable, values.length === variables.length ? values[i] : undefined);
    });
  }
  return documented;
}

/** Command names from a commander help text. */
async function commands(...args: string[]): Promise<string[]> {
  const { stdout } = await run(process.execPath, ["bin/bridge.js", ...args, "--help"], { cwd: ROOT });
  const section = stdout.split("Commands:")[1] ?? "";
  return [...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!).filter((c) => c !== "help");
}

describe("docs", () => {
  it("every `bridge <command>` in their code spans and blocks exists", async () => {
    const top = await commands();
    const telegram = await commands("telegram");
    const code = [...docs.matchAll(/```[a-z]*\n([\s\S]*?)```|`([^`\n]+)`/g)].map((m) => m[1] ?? m[2] ?? "");
    const named = code.flatMap((c) => [
      // `npx bridge <command>`, `… run --rm bridge <command>`, the image's `quickchat-bridge <command>`
      ...c.matchAll(
        /(?:^bridge|\bnpx bridge|\brun (?:--rm|-d)(?: -e \S+)? bridge|quickchat-bridge) ([a-z][a-z-]+)(?: ([a-z][a-z-]+))?/gm,
      ),
    ]);
    expect(named.length).toBeGreaterThan(8);
    for (const [, command, sub] of named) {
      expect(top, `bridge ${command}`).toContain(command);
      if (command === "telegram") expect(telegram, `bridge telegram ${sub}`).toContain(sub);
    }
  }, 30_000);

  it("every npm script the README and docs/ mention exists", () => {
    const scripts = Object.keys(JSON.parse(read("package.json")).scripts);
    const pages = ["README.md", ...readdirSync(resolve(ROOT, "docs")).map((name) => `docs/${name}`)];
    const mentioned = new Set(
      pages.flatMap((page) => [...read(page).matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1]!)),
    );
    expect(mentioned.size).toBeGreaterThan(4);
    for (const script of mentioned) expect(scripts, script).toContain(script);
  });

  // That they name no other is checked against a running service (observability.test.ts).
  it("lists every metric src/metrics.ts defines", () => {
    const defined = [...read("src/metrics.ts").matchAll(/name: "(bridge_[a-z_]+)"/g)].map((m) => m[1]!);
    const listed = new Set([...docs.matchAll(/`(bridge_[a-z_]+)`/g)].map((m) => m[1]!));
    expect(defined.length).toBeGreaterThan(7);
    for (const name of defined) expect(listed, name).toContain(name);
  });

  it("the README's environment table has every setting, with the schema's default", () => {
    const table = environmentTable(read("README.md"));
    const defaults: Record<string, unknown> = settingsSchema.parse({});
    expect(table.size).toBeGreaterThan(15);
    for (const setting of Object.keys(settingsSchema.shape)) {
      expect([...table.keys()], setting).toContain(setting);
      const value = defaults[setting];
      if (value !== undefined) expect(table.get(setting), `default of ${setting}`).toBe(String(value));
    }
    for (const variable of table.keys())
      expect(Object.keys(settingsSchema.shape), variable).toContain(variable);
  });

  it("the README lists every single-tenant shorthand variable", () => {
    const paragraph =
      read("README.md")
        .split("\n\n")
        .find((p) => p.startsWith("Single-tenant shorthand")) ?? "";
    const listed = codeSpans(paragraph).filter(isVariable);
    const shorthand = Object.values(SHORTHAND_VARIABLES).flatMap((v) => v.split(" or "));
    expect(shorthand.length).toBeGreaterThan(15);
    for (const variable of shorthand) expect(listed, variable).toContain(variable);
    for (const variable of listed) expect(shorthand, variable).toContain(variable);
  });

  it("names only settings the service knows", () => {
    const known = new Set([...Object.keys(settingsSchema.shape), ...Object.values(SHORTHAND_VARIABLES)]);
    const extra = new Set([
      "NEW_BRIDGE_SECRET_KEY",
      "POSTGRES_PASSWORD",
      "NODE_ENV",
      // docker/Dockerfile's build argument, and a secret README's config file example refers to.
      "NPM_VERSION",
      "ACME_TELEGRAM_TOKEN",
    ]);
    const named = [...docs.matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=[^`]*)?`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(20);
    for (const name of named) if (!extra.has(name)) expect(known, name).toContain(name);
  });
});
