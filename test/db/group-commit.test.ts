import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../src/db/group-commit.js";

/** A write that records each statement's items and completes when told to. */
function controlledWrite() {
  const statements: string[][] = [];
  const pending: (() => void)[] = [];
  const write = (items: string[]) =>
    new Promise<string[]>((resolve, reject) => {
      statements.push(items);
      pending.push(() =>
        items.includes("bad") ? reject(new Error("bad row")) : resolve(items.map((i) => `${i}!`)),
      );
    });
  const completeAll = async () => {
    while (pending.length > 0) {
      for (const done of pending.splice(0)) done();
      await new Promise((r) => setTimeout(r, 0));
    }
  };
  return { statements, write, completeAll };
}

describe("group commit", () => {
  it("writes at once when idle, and groups what arrives while statements are in flight", async () => {
    const { statements, write, completeAll } = controlledWrite();
    const group = new GroupCommit(write, { maxConcurrent: 1, maxSize: 3 });
    const results = ["a", "b", "c", "d", "e"].map((item) => group.submit(item));
    await completeAll();
    expect(await Promise.all(results)).toEqual(["a!", "b!", "c!", "d!", "e!"]);
    expect(statements).toEqual([["a"], ["b", "c", "d"], ["e"]]);
  });

  it("fails only the item that fails alone, retrying the others of its statement one by one", async () => {
    const { statements, write, completeAll } = controlledWrite();
    const group = new GroupCommit(write, { maxConcurrent: 1, maxSize: 10 });
    const outcomes = Promise.allSettled(["first", "x", "bad", "y"].map((item) => group.submit(item)));
    await completeAll();
    expect((await outcomes).map((o) => o.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    expect(statements).toEqual([["first"], ["x", "bad", "y"], ["x"], ["bad"], ["y"]]);
  });

  it("keeps items sharing a key out of concurrent statements, in submission order", async () => {
    const { statements, write, completeAll } = controlledWrite();
    const group = new GroupCommit(write, {
      maxConcurrent: 3,
      maxSize: 1,
      keysOf: (item) => [item[0]!],
    });
    // a1 and a2 share key "a": a2 waits for a1's statement; b1 goes beside a1.
    const results = ["a1", "a2", "b1"].map((item) => group.submit(item));
    expect(statements).toEqual([["a1"], ["b1"]]);
    await completeAll();
    expect(await Promise.all(results)).toEqual(["a1!", "a2!", "b1!"]);
    expect(statements).toEqual([["a1"], ["b1"], ["a2"]]);
  });
});
