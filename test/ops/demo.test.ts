/** `npm run demo` relays one Telegram message through the whole service and prints the converted reply. */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

it("prints the inbound text, Quickchat's HTML and the Telegram rendering, then exits 0", async () => {
  const scripts = JSON.parse(readFileSync(`${ROOT}/package.json`, "utf8")).scripts;
  expect(scripts.demo).toBe("tsx scripts/demo.ts");
  const { stdout } = await promisify(execFile)("npx", ["tsx", "scripts/demo.ts"], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "warn" },
    timeout: 60_000,
  });
  expect(stdout).toContain("Hi! When are you open, and how do I reach support?");
  expect(stdout).toContain("<ul><li>Monday to Friday: <b>9:00–18:00</b></li>");
  expect(stdout).toContain("[parse_mode: HTML]");
  // The list became bullets, the paragraphs blank lines, the entity stayed escaped, the link an <a>.
  expect(stdout).toContain("Hello <b>Alice</b>! We are open:\n   \n   • Monday to Friday: <b>9:00–18:00</b>");
  expect(stdout).toContain('<a href="https://example.com/support">our support page</a> &amp; say hi.');
  expect(stdout).toContain("see our support page [https://example.com/support] & say hi.");
  expect(stdout).toContain("Demo OK.");
}, 90_000);
