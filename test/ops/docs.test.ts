/**
 * The deployment docs only name CLI commands, npm scripts, routes and metrics that exist.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SHORTHAND_VARIABLES, settingsSchema } from "../../src/config/env.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const read = (path: string) => readFileSync(resolve(ROOT, path), "utf8");
const docs = ["docs/deploy.md", "docs/operations.md"].map(read).join("\n");
const run = promisify(execFile);

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

  it("every npm script they mention exists", () => {
    const scripts = Object.keys(JSON.parse(read("package.json")).scripts);
    for (const [, script] of docs.matchAll(/npm run ([a-z:-]+)/g)) expect(scripts).toContain(script);
  });

  it("lists every metric src/metrics.ts defines, and no other", () => {
    const defined = [...read("src/metrics.ts").matchAll(/name: "(bridge_[a-z_]+)"/g)].map((m) => m[1]!);
    const listed = new Set([...docs.matchAll(/`(bridge_[a-z_]+)`/g)].map((m) => m[1]!));
    for (const name of defined) expect(listed, name).toContain(name);
    for (const name of listed) expect(defined, name).toContain(name);
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
    for (const [, name] of docs.matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=[^`]*)?`/g))
      if (!extra.has(name!)) expect(known, name).toContain(name);
  });
});
