/**
 * The service as child processes run it in tests: the run's global set-up (global-setup.ts) compiles src/ once,
 * file for file as tsx would, into the run's directory, laid out like the container's /app (bin/, dist/,
 * drizzle/, package.json, node_modules). Tests start `bridgeBin()` instead of the repository's bin/bridge.js,
 * which would load TypeScript through tsx in each child: `bridge --version` costs 3.3-3.7 s of CPU that way,
 * against 1.6-1.8 s compiled.
 * test/ops/docs.test.ts still runs the repository's bin/bridge.js, so the tsx path stays covered.
 */
import { copyFileSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { inject } from "vitest";

const ROOT = new URL("../..", import.meta.url).pathname;

declare module "vitest" {
  export interface ProvidedContext {
    bridgeBin: string;
  }
}

/** Compiles the service into `dir` and returns the path of its bin/bridge.js. */
export async function buildService(dir: string): Promise<string> {
  const sources = readdirSync(join(ROOT, "src"), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .map((file) => join(ROOT, "src", file));
  await build({
    entryPoints: sources,
    outdir: join(dir, "dist"),
    outbase: join(ROOT, "src"),
    format: "esm",
    platform: "node",
    target: "node20",
    sourcemap: true,
    logLevel: "warning",
  });
  mkdirSync(join(dir, "bin"));
  copyFileSync(join(ROOT, "bin/bridge.js"), join(dir, "bin/bridge.js"));
  for (const shared of ["drizzle", "package.json", "node_modules"])
    symlinkSync(join(ROOT, shared), join(dir, shared));
  return join(dir, "bin/bridge.js");
}

/** The compiled service's bin/bridge.js, for `node <bridgeBin()> serve` and the CLI's commands. */
export const bridgeBin = (): string => inject("bridgeBin");
