import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const BIN = new URL("../../bin/bridge.js", import.meta.url).pathname;
const cleanEnv = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(DATABASE_URL|QUICKCHAT_|TELEGRAM_|SLACK_|TWILIO_|BRIDGE_)/.test(k),
    ),
  );

const tempDirs: string[] = [];
function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), "qb-cli-"));
  tempDirs.push(dir);
  return dir;
}

describe("bridge CLI", () => {
  let child: ChildProcess | undefined;
  afterEach(async () => {
    // The child ends before its folder goes: it may still be writing its database there.
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    }
    child = undefined;
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("serves /healthz on embedded PGlite with nothing configured but a tenant, and logs it", async () => {
    const dir = tempDir();
    child = spawn(process.execPath, [BIN, "serve"], {
      env: {
        ...cleanEnv(),
        PORT: "0",
        HOST: "127.0.0.1",
        DATA_DIR: join(dir, "data"),
        QUICKCHAT_SCENARIO_ID: "sc",
        QUICKCHAT_TOKEN: "qc-token-value",
        TELEGRAM_BOT_TOKEN: "123:tg-token-value",
        TELEGRAM_WEBHOOK_SECRET: "tg-secret-value",
      },
      cwd: dir,
    });
    let output = "";
    const url = await new Promise<string>((resolve, reject) => {
      child!.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const match = output.match(/"url":"(http:\/\/[^"]+)"/);
        if (match) resolve(match[1]!);
      });
      child!.on("exit", (code) => reject(new Error(`exited with ${code}: ${output}`)));
    });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(output).toMatch(/"tenant":"default","channels":\["telegram"\]/);
    expect(output).not.toMatch(/qc-token-value|tg-token-value|tg-secret-value/);

    const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });

  it("check-config exits non-zero naming a wrong key", () => {
    const dir = tempDir();
    const file = join(dir, "bridge.yaml");
    writeFileSync(
      file,
      "tenants:\n  - id: acme\n    quickchat: { scenario_id: s, token: t }\n    telegarm: {}\n",
    );
    const result = spawnSync(process.execPath, [BIN, "check-config"], {
      env: { ...cleanEnv(), BRIDGE_CONFIG: file },
      encoding: "utf8",
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/unknown key tenants\.0\.telegarm/);
  });

  it("check-config prints each tenant's webhook URLs", () => {
    const result = spawnSync(process.execPath, [BIN, "check-config"], {
      env: {
        ...cleanEnv(),
        PUBLIC_URL: "https://bridge.example.com/",
        QUICKCHAT_SCENARIO_ID: "sc",
        QUICKCHAT_TOKEN: "t",
        SLACK_SIGNING_SECRET: "s",
        SLACK_BOT_TOKEN: "xoxb",
      },
      cwd: tempDir(),
      encoding: "utf8",
    });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("slack: https://bridge.example.com/webhooks/default/slack");
  });

  it("rotate-key names the rolling procedure when given the old single-shot NEW_BRIDGE_SECRET_KEY", () => {
    const key = () => Buffer.alloc(32, Math.floor(Math.random() * 256)).toString("base64");
    const result = spawnSync(process.execPath, [BIN, "rotate-key"], {
      env: {
        ...cleanEnv(),
        DATA_DIR: join(tempDir(), "data"),
        BRIDGE_SECRET_KEY: key(),
        NEW_BRIDGE_SECRET_KEY: key(),
      },
      cwd: tempDir(),
      encoding: "utf8",
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/BRIDGE_SECRET_KEY=<new>,<old>/);
  });
});
