/** `npm run coverage`'s merge of the child processes' coverage into the test processes' (scripts/coverage.ts). */
import type { FileCoverage } from "istanbul-lib-coverage";

/**
 * Adds what a child ran to `file`, vitest's map of the same source: a statement counts as run when the child
 * ran its first line, a function when the child called the function declared on its line. Branches are left
 * alone: that a line ran says nothing about which arm of a branch on it did.
 */
export function addChildRuns(file: FileCoverage, child: FileCoverage): void {
  const ranLines = child.getLineCoverage();
  for (const [id, { start }] of Object.entries(file.statementMap)) file.s[id]! += ranLines[start.line] ?? 0;
  const callsByLine = new Map<number, number>();
  for (const [id, { decl }] of Object.entries(child.fnMap))
    callsByLine.set(decl.start.line, Math.max(callsByLine.get(decl.start.line) ?? 0, child.f[id] ?? 0));
  for (const [id, { decl }] of Object.entries(file.fnMap))
    file.f[id]! += callsByLine.get(decl.start.line) ?? 0;
}
