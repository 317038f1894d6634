import { relative } from "node:path";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The tests `npm run mutate` runs (stryker.config.mjs): only the fast ones over the mutated code, so a mutant
 * costs seconds. Quickest first: a mutant's run stops at its first failing test.
 */
const TESTS = [
  "test/telegram/verify.test.ts",
  "test/slack/verify.test.ts",
  "test/whatsapp/verify.test.ts",
  "test/whatsapp_cloud/verify.test.ts",
  "test/telegram/inbound.test.ts",
  "test/slack/inbound.test.ts",
  "test/whatsapp/inbound.test.ts",
  "test/whatsapp_cloud/inbound.test.ts",
  "test/quickchat/metadata.test.ts",
  "test/log/redaction.test.ts",
  "test/log/error-fields.test.ts",
  "test/format/split.test.ts",
  "test/format/render.test.ts",
  "test/format/properties.test.ts",
  "test/format/linearity.test.ts",
  "test/db/leases.test.ts",
  "test/db/inbox.test.ts",
  "test/db/error-fields.test.ts",
];

/** Runs the files in TESTS' order, rather than vitest's longest first. */
class ListedOrder extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => TESTS.indexOf(relative(this.ctx.config.root, file.moduleId));
    return [...files].sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: TESTS,
    sequence: { sequencer: ListedOrder },
    // PGlite only, whatever DATABASE_URL says: the statements mean the same there, and the PostgreSQL-only
    // tests measure plans and concurrency over large inboxes, not what a statement does.
    env: { DATABASE_URL: "" },
    globalSetup: ["test/support/global-setup.ts"],
    setupFiles: ["test/support/fast-check-seed.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
