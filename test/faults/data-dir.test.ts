/**
 * The embedded database holds every message: the real service, started under the common umask 022 with
 * PGlite in a fresh DATA_DIR, leaves nothing there that another user could read or write; and a DATA_DIR an
 * older version left open is closed, with a warning.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, lstatSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EmbeddedDatabase, FaultWorld } from "./support/service.js";
import { deliver } from "./support/traffic.js";

/** Every path under `dir` (itself included) with its permission bits. */
function modes(dir: string): { path: string; mode: number }[] {
  const paths = [dir, ...readdirSync(dir, { recursive: true }).map((p) => join(dir, String(p)))];
  return paths
    .map((path) => ({ path, stat: lstatSync(path) }))
    .filter(({ stat }) => !stat.isSymbolicLink())
    .map(({ path, stat }) => ({ path, mode: stat.mode & 0o777 }));
}
const openToOthers = (dir: string) => modes(dir).filter(({ mode }) => (mode & 0o077) !== 0);

/** Sets or clears a file's immutable attribute (then not even its owner may chmod it); false where impossible. */
function immutable(path: string, on: boolean): boolean {
  try {
    execFileSync("chattr", [on ? "+i" : "-i", path], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("DATA_DIR of the embedded database", () => {
  let world: FaultWorld;
  let dataDir: string;

  beforeAll(async () => {
    world = await FaultWorld.create({}, { database: "pglite" });
    dataDir = (world.database as EmbeddedDatabase).dataDir;
  });
  afterAll(() => world?.close()); // removes the temporary directory

  it("is created 0700, and under umask 022 no file or directory in it is open to group or others", async () => {
    const service = await world.startService({}, { umask: "022" });
    expect(await deliver(service.url, { channel: "telegram", thread: 1, seq: 0 })).toBe(200);
    expect(await service.stop()).toBe(0);

    const all = modes(dataDir);
    const open = openToOthers(dataDir);
    console.log(`DATA_DIR: ${all.length} paths after a run under umask 022; ${open.length} open to others`);
    expect(all.length).toBeGreaterThan(100); // the database's files are there
    expect(lstatSync(dataDir).mode & 0o777).toBe(0o700);
    expect(open).toEqual([]);
  }, 60_000);

  it("an existing DATA_DIR open to others is closed at startup, with a warning", async () => {
    // As an older version under umask 022 left it: directories 0755, files 0666.
    for (const { path } of modes(dataDir)) chmodSync(path, lstatSync(path).isDirectory() ? 0o755 : 0o666);
    const loose = openToOthers(dataDir).length;
    const from = world.logs.length;
    const service = await world.startService({}, { umask: "022" });
    expect(await service.stop()).toBe(0);

    expect(openToOthers(dataDir)).toEqual([]);
    const warning = world.logs
      .slice(from)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((entry) => entry.level === "warn" && String(entry.msg).startsWith("DATA_DIR was open"));
    expect(warning).toMatchObject({ data_dir: dataDir, paths: loose });
  }, 60_000);

  it("a file whose mode this user may not change is a warning, not a failed start", async (context) => {
    const stuck = join(dataDir, "notes.txt");
    writeFileSync(stuck, "left here by someone else\n");
    chmodSync(stuck, 0o644);
    if (!immutable(stuck, true)) context.skip(); // no chattr, or not allowed to use it
    try {
      const from = world.logs.length;
      const service = await world.startService({}, { umask: "022" });
      expect(await deliver(service.url, { channel: "telegram", thread: 1, seq: 1 })).toBe(200);
      expect(await service.stop()).toBe(0);
      const warning = world.logs
        .slice(from)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((entry) => entry.level === "warn" && String(entry.msg).startsWith("DATA_DIR stays open"));
      expect(warning).toMatchObject({ data_dir: dataDir, paths: 1 });
      expect(openToOthers(dataDir).map(({ path }) => path)).toEqual([stuck]);
    } finally {
      immutable(stuck, false); // so that the temporary directory can be removed
    }
  }, 60_000);
});
