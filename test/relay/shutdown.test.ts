import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { QuickchatFake } from "../fakes/quickchat.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import { createTelegramFake, deliverUpdate, type TelegramFake } from "../fakes/telegram.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";
import { waitFor } from "../support/harness.js";
import { listeningUrl } from "../support/listening.js";
import { bridgeBin } from "../support/service-build.js";
import { guardUnexpected } from "../support/unexpected.js";
import { ALICE, BOT, messageUpdate, privateChat, textMessage } from "../telegram/updates.js";

const TOKEN = "7012345678:AAHshutdownTestToken_0123456789abcdef";
const SECRET = "shutdown-secret";
const MESSAGES = 40;

interface Service {
  child: ChildProcess;
  url: string;
  /** The exit code, once the process has ended. */
  exited: Promise<number | null>;
}

/** The real service as a child process, so SIGTERM is a real signal; ended when the test ends, however. */
function spawnService(env: Record<string, string>): Omit<Service, "url"> {
  const child = spawn(process.execPath, [bridgeBin(), "serve"], { env: { ...process.env, ...env } });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  return { child, exited };
}

/** A service, once it listens. */
async function startService(env: Record<string, string>): Promise<Service> {
  const { child, exited } = spawnService(env);
  return { child, exited, url: await listeningUrl(child) };
}

describe("graceful shutdown under load", () => {
  let quickchat: QuickchatFake;
  let telegram: TelegramFake;
  let telegramServer: RunningFake;
  let database: TestDatabase | undefined;
  let env: Record<string, string>;
  let dataDir: string | undefined;
  const guard = guardUnexpected();
  const newDataDir = () => {
    dataDir = mkdtempSync(join(tmpdir(), "qb-shutdown-"));
    return dataDir;
  };

  beforeAll(async () => {
    quickchat = await new QuickchatFake({ scenarios: { sc: "qc-token" } }).start();
    quickchat.latencyMs = 300;
    telegram = createTelegramFake({ [TOKEN]: BOT });
    telegramServer = await startFake(telegram.app);
    guard.watch(quickchat, telegram);
    database = POSTGRES_URL ? await createPostgresDatabase() : undefined;
    env = {
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      ...(database?.url ? { DATABASE_URL: database.url } : { DATA_DIR: newDataDir() }),
      WORKER_CONCURRENCY: "4",
      SHUTDOWN_TIMEOUT_SECONDS: "1",
      QUICKCHAT_SCENARIO_ID: "sc",
      QUICKCHAT_TOKEN: "qc-token",
      QUICKCHAT_BASE_URL: quickchat.url,
      TELEGRAM_BOT_TOKEN: TOKEN,
      TELEGRAM_WEBHOOK_SECRET: SECRET,
      TELEGRAM_API_ROOT: telegramServer.url,
    };
  });

  afterAll(async () => {
    await telegramServer?.close();
    await quickchat?.close();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("loses no message: SIGTERM exits 0, unfinished messages are answered after a restart", async () => {
    const first = await startService(env);
    const chats = Array.from({ length: MESSAGES }, (_, i) => privateChat({ ...ALICE, id: 5_000_000 + i }));
    const acks = await Promise.all(
      chats.map((chat) =>
        deliverUpdate(
          `${first.url}/webhooks/default/telegram`,
          messageUpdate(textMessage("hello", { chat })),
          SECRET,
        ),
      ),
    );
    expect(acks.map((a) => a.status)).toEqual(chats.map(() => 200));

    await new Promise((r) => setTimeout(r, 400));
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    const answeredBeforeRestart = new Set(telegram.callsTo("sendMessage").map((c) => c.params.chat_id)).size;
    expect(answeredBeforeRestart).toBeLessThan(MESSAGES); // the shutdown really left work behind

    const second = await startService(env);
    try {
      await waitFor(
        () => new Set(telegram.callsTo("sendMessage").map((c) => c.params.chat_id)).size === MESSAGES,
        30_000,
        "every chat answered",
      );
      const replies = telegram.callsTo("sendMessage").length;
      // A graceful stop lets sends in flight finish before handing messages back: no duplicate reply.
      console.log(`answered before restart: ${answeredBeforeRestart}/${MESSAGES}; replies sent: ${replies}`);
      expect(replies).toBe(MESSAGES);
    } finally {
      second.child.kill("SIGTERM");
    }
    expect(await second.exited).toBe(0);
  }, 60_000); // two starts of the service, the first initialising its database on PGlite, and up to 30 s to drain

  it("a SIGTERM during startup stops the service gracefully once it is up (exit 0, not killed)", async () => {
    const { child, exited } = spawnService(env);
    // Its last lines may still be in the pipe when it exits; "close" comes once stdout is read to its end.
    const closed = once(child, "close");
    let output = "";
    // The first line is written while the database opens, long before the service listens.
    child.stdout!.once("data", () => child.kill("SIGTERM"));
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    expect(await exited).toBe(0);
    await closed;
    expect(output).toMatch(/"msg":"shutting down"/);
    expect(output).toMatch(/"msg":"stopped"/);
  });

  it("exits on SIGTERM when the reader of its stdout is gone (a failed log write never holds up exit)", async () => {
    const service = await startService(env);
    // The parent stops reading: the service's next log lines (the shutdown's) fail with EPIPE.
    service.child.stdout!.destroy();
    service.child.kill("SIGTERM");
    const code = await Promise.race([
      service.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve("still running after 10 s"), 10_000)),
    ]);
    expect(code).toBe(0);
  });
});
