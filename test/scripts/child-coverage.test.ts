import libCoverage, { type FileCoverageData, type Range } from "istanbul-lib-coverage";
import { describe, expect, it } from "vitest";
import { addChildRuns } from "../../scripts/child-coverage.js";

const at = (line: number, column = 0, endLine = line, endColumn = 40): Range => ({
  start: { line, column },
  end: { line: endLine, column: endColumn },
});

/** A file as vitest maps it: statements on lines 2, 3 and 6, functions declared on 1 and 5, one branch on 3. */
function vitestFile(): FileCoverageData {
  return {
    path: "/src/x.ts",
    statementMap: { 0: at(2), 1: at(3, 2), 2: at(6) },
    s: { 0: 1, 1: 0, 2: 0 },
    fnMap: {
      0: { name: "first", decl: at(1, 16, 1, 21), loc: at(1, 0, 4, 1), line: 1 },
      1: { name: "second", decl: at(5, 16, 5, 22), loc: at(5, 0, 7, 1), line: 5 },
    },
    f: { 0: 1, 1: 0 },
    branchMap: { 0: { type: "if", line: 3, loc: at(3), locations: [at(3, 10), at(3, 30)] } },
    b: { 0: [0, 0] },
  };
}

/** A child's file as c8 maps it: one statement per line, functions by their declaration's line. */
function childFile(ran: Record<number, number>, calls: Record<number, number>): FileCoverageData {
  const lines = Object.keys(ran).map(Number);
  const declared = Object.keys(calls).map(Number);
  return {
    path: "/src/x.ts",
    statementMap: Object.fromEntries(lines.map((line, i) => [i, at(line)])),
    s: Object.fromEntries(lines.map((line, i) => [i, ran[line]!])),
    fnMap: Object.fromEntries(
      declared.map((line, i) => [i, { name: "", decl: at(line), loc: at(line, 0, line + 2), line }]),
    ),
    f: Object.fromEntries(declared.map((line, i) => [i, calls[line]!])),
    branchMap: {},
    b: {},
  };
}

describe("adding a child process's coverage to the test processes' (npm run coverage)", () => {
  it("counts a statement when a child ran its first line, and a function declared on a line it called", () => {
    const file = libCoverage.createFileCoverage(vitestFile());
    addChildRuns(file, libCoverage.createFileCoverage(childFile({ 3: 2, 6: 0, 9: 5 }, { 1: 0, 5: 3 })));
    expect(file.s).toEqual({ 0: 1, 1: 2, 2: 0 });
    expect(file.f).toEqual({ 0: 1, 1: 3 });
    expect(file.getLineCoverage()).toEqual({ 2: 1, 3: 2, 6: 0 });
  });

  it("leaves branches to the test processes: a line that ran does not say which arm did", () => {
    const file = libCoverage.createFileCoverage(vitestFile());
    addChildRuns(file, libCoverage.createFileCoverage(childFile({ 3: 4 }, {})));
    expect(file.b).toEqual({ 0: [0, 0] });
  });

  it("takes the most calls when a child has several functions declared on one line", () => {
    const file = libCoverage.createFileCoverage(vitestFile());
    const child = childFile({}, { 5: 7 });
    child.fnMap[1] = { name: "", decl: at(5, 30), loc: at(5, 30, 5, 39), line: 5 };
    child.f[1] = 2;
    addChildRuns(file, libCoverage.createFileCoverage(child));
    expect(file.f).toEqual({ 0: 1, 1: 7 });
  });
});
