import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Files that start the service or the CLI as child processes (fault suite, container and demo, CLI) take the
 * longest and mostly wait on those processes; they start first, so no worker ends the run alone on one of them.
 * The rest keep vitest's own order (slowest of the last run first, else largest file first).
 */
const CHILD_PROCESS_FILES = /\/test\/(faults|ops|cli)\//;

class ChildProcessFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const first = (file: TestSpecification) => CHILD_PROCESS_FILES.test(file.moduleId);
    return [...sorted.filter(first), ...sorted.filter((file) => !first(file))];
  }
}

/** `npm run coverage` (scripts/coverage.ts) names it: the processes tests start write V8 coverage there. */
const childCoverage = process.env.BRIDGE_CHILD_COVERAGE;

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Test files share their worker's modules (the SDKs and the service load once per worker, not per file).
    isolate: false,
    maxWorkers: 3,
    sequence: { sequencer: ChildProcessFilesFirst },
    globalSetup: ["test/support/global-setup.ts"],
    setupFiles: ["test/support/fast-check-seed.ts"],
    // Set in the test processes after they start, so only what they spawn inherits it: the services and CLIs,
    // and also npm and tsc in the container test, whose coverage c8 leaves out (not in src/).
    env: childCoverage ? { NODE_V8_COVERAGE: childCoverage } : {},
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      reporter: ["json"],
      reportOnFailure: true,
      reportsDirectory: "coverage/tests",
    },
  },
});
