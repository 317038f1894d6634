/**
 * `npm run coverage [vitest filters]`: coverage of src/ from the whole suite, the child processes included.
 * - The test processes: vitest's V8 provider (`vitest run --coverage`, configured in vitest.config.ts).
 * - The services and CLIs tests start: V8 writes their raw coverage on exit (NODE_V8_COVERAGE), and c8 maps it
 *   back to src/ through the source maps of the compiled copy they run. A child killed with SIGKILL (the crash
 *   and takeover tests) writes none.
 * The two are merged into one report (a table on stdout, HTML in coverage/index.html) on vitest's map of each
 * file, which knows its statements, functions and branches from the TypeScript; c8 knows the children's code
 * only line by line, so what they ran is added by line (child-coverage.ts). Branches count the test processes
 * only.
 * Like `npm test`, it leaves nothing in the temporary directory (package.json runs it with tsx's cache off).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import libCoverage from "istanbul-lib-coverage";
import libReport from "istanbul-lib-report";
import reports from "istanbul-reports";
import { addChildRuns } from "./child-coverage.js";

const root = resolve(import.meta.dirname, "..");
const out = join(root, "coverage");
const childRaw = join(out, "children-raw");

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const { status } = spawnSync(join(root, "node_modules/.bin", command), args, {
    cwd: root,
    env,
    stdio: "inherit",
  });
  return status ?? 1;
}

rmSync(out, { recursive: true, force: true });
mkdirSync(childRaw, { recursive: true });
const tests = run("vitest", ["run", "--coverage", ...process.argv.slice(2)], {
  ...process.env,
  BRIDGE_CHILD_COVERAGE: childRaw,
});
// --allowExternal: the children run the copy compiled into the run's temporary directory, outside the
// repository; after the source maps take them back to src/, only src/ is kept.
const children = run("c8", [
  "report",
  `--temp-directory=${childRaw}`,
  `--reports-dir=${join(out, "children")}`,
  "--reporter=json",
  "--allowExternal",
  "--exclude-after-remap",
  `--include=${root}/src/**`,
]);
rmSync(childRaw, { recursive: true, force: true });

const readMap = (part: string) => {
  const file = join(out, part, "coverage-final.json");
  if (!existsSync(file)) {
    console.error(`npm run coverage: ${file} was not written; the run above says why`);
    process.exit(tests || children || 1);
  }
  return libCoverage.createCoverageMap(JSON.parse(readFileSync(file, "utf8")));
};
const coverage = readMap("tests");
const childCoverage = readMap("children");
for (const path of childCoverage.files())
  addChildRuns(coverage.fileCoverageFor(path), childCoverage.fileCoverageFor(path));
const context = libReport.createContext({ dir: out, coverageMap: coverage });
for (const reporter of ["text", "text-summary", "html"] as const) reports.create(reporter).execute(context);
process.exit(tests || children);
