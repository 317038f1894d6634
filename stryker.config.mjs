// Mutation testing (`npm run mutate`, docs/testing.md): the code where a bug is a security or correctness
// incident, against the fast tests over it (vitest.mutate.config.ts).
import { readFileSync } from "node:fs";

/**
 * Stryker's line ranges (`file.ts:10-40`) of the top-level declarations `names` of `file`: from the
 * declaration's line to the line before the next top-level line (a declaration or its doc comment). Found by
 * name, so the ranges follow the code as it moves; a name that is gone stops the run.
 */
function declarations(file, names) {
  const lines = readFileSync(file, "utf8").split("\n");
  return names.map((name) => {
    const declaration = new RegExp(`^(export )?(async )?(function|const|class) ${name}\\b`);
    const start = lines.findIndex((line) => declaration.test(line));
    if (start < 0) throw new Error(`stryker.config.mjs: no top-level ${name} in ${file}`);
    let end = start + 1;
    while (end < lines.length && !/^[^\s})\]]/.test(lines[end])) end++;
    while (lines[end - 1].trim() === "") end--;
    return `${file}:${start + 1}-${end}`;
  });
}

/** Stryker's line ranges of the lines of `file` that match `pattern`; at least one must. */
function linesMatching(file, pattern) {
  const ranges = readFileSync(file, "utf8")
    .split("\n")
    .flatMap((line, index) => (pattern.test(line) ? [`${file}:${index + 1}-${index + 1}`] : []));
  if (ranges.length === 0) throw new Error(`stryker.config.mjs: no line of ${file} matches ${pattern}`);
  return ranges;
}

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutate.config.ts" },
  coverageAnalysis: "perTest",
  concurrency: 2,
  mutate: [
    // Each channel's request verification.
    "src/channels/*/verify.ts",
    // Each channel's dedupe key: where it is built, and what it is built from.
    ...linesMatching("src/channels/telegram/inbound.ts", /\bdedupeKey\s*[:=]/),
    ...linesMatching("src/channels/slack/inbound.ts", /\bdedupeKey\s*[:=]/),
    ...linesMatching("src/channels/whatsapp/inbound.ts", /\bdedupeKey\s*[:=]|\bmessageSid\s*=/),
    ...declarations("src/channels/whatsapp/inbound.ts", ["required"]),
    ...linesMatching("src/channels/whatsapp_cloud/inbound.ts", /\bdedupeKey\s*[:=]|\bconst id\s*=/),
    // Cutting a reply into parts within the channel's limit.
    "src/format/split.ts",
    // What Quickchat is told about the user and thread.
    "src/quickchat/metadata.ts",
    // What the logger keeps out of log lines: secrets, and the users' words in errors.
    ...declarations("src/log.ts", [
      "SECRET_ENDINGS",
      "SECRET_NAMES",
      "MAX_DEPTH",
      "comparable",
      "secretNames",
      "isError",
      "mayBeSecret",
      "redacted",
      "redactedEntries",
      "createLogger",
      "errorFields",
      "safeMessage",
      "stackFrames",
    ]),
    // Claiming messages, renewing and releasing leases.
    ...declarations("src/db/inbox.ts", [
      "UNFINISHED",
      "unfinished",
      "unfinishedIn",
      "noOlderUnfinished",
      "claimMessages",
      "claimStatement",
      "idsOf",
      "held",
      "renewLease",
      "release",
    ]),
  ],
  reporters: ["clear-text", "progress", "html", "json"],
  // The console lists the mutants that survived (and those no test reaches), not the tests run.
  clearTextReporter: { allowColor: false, logTests: false, reportTests: false },
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
};
