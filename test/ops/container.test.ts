/**
 * What can be checked about the container without a Docker engine: the Dockerfile installs the locked
 * versions with `npm ci`; the runtime stage, rebuilt in a temp directory from its own COPY lines and install
 * command, serves /healthz, relays a message and stops cleanly on SIGTERM; the HEALTHCHECK command itself
 * works; compose's wiring (env names, the optional config file, port, health checks) matches the service's
 * settings, and .env.example names what the deploy guide tells people to set.
 */
import { execFile, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { containerNodeFlags } from "../../bench/node-flags.js";
import { SHORTHAND_VARIABLES, settingsSchema } from "../../src/config/env.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { startFake } from "../fakes/server.js";
import { createTelegramFake, deliverUpdate } from "../fakes/telegram.js";
import {
  type ComposeFile,
  type Copy,
  composeVariables,
  copyOf,
  execForm,
  globalArgs,
  parseDockerfile,
  type Stage,
  withConfigFile,
} from "../support/container-files.js";
import { createTestDatabase, POSTGRES_URL } from "../support/db.js";
import { waitFor } from "../support/harness.js";
import { listeningUrl } from "../support/listening.js";
import { ALICE, BOB, BOT, messageUpdate, privateChat, textMessage } from "../telegram/updates.js";

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

// --- the Dockerfile -----------------------------------------------------------------------------------------

const dockerfile = parseDockerfile(read("docker/Dockerfile"));
const buildArgs = globalArgs(read("docker/Dockerfile"));
const buildStage = dockerfile.find((s) => s.name === "build")!;
const runtime = dockerfile.at(-1)!;
const runtimeOps = (op: string) => runtime.instructions.filter((i) => i.op === op);
const runtimeEnv = Object.fromEntries(
  runtimeOps("ENV").flatMap((i) => [...i.args.matchAll(/([A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);

// --- known settings --------------------------------------------------------------------------------------

/** Every environment variable the service reads: the zod settings schema's keys and the shorthand's. */
function knownVariables(): Set<string> {
  const settings = Object.keys(settingsSchema.shape);
  const shorthand = Object.values(SHORTHAND_VARIABLES).filter((name) => /^[A-Z][A-Z0-9_]*$/.test(name));
  expect(settings.length).toBeGreaterThan(10);
  expect(shorthand.length).toBeGreaterThan(10);
  return new Set([...settings, ...shorthand]);
}
/** Set by the runtime (Node itself, npm), not by the bridge's settings. */
const PLATFORM_VARIABLES = new Set(["NODE_ENV", "NODE_OPTIONS"]);
/** The service's heap sizes (docs/performance.md), passed to Node by the ENTRYPOINT. */
const HEAP_FLAGS = ["--max-semi-space-size=32", "--initial-old-space-size=160"];
const entrypoint = execForm(runtimeOps("ENTRYPOINT")[0]!.args);

describe("Dockerfile", () => {
  it("has a build stage and a runtime stage on an official Node 20 slim image", () => {
    expect(dockerfile.length).toBeGreaterThanOrEqual(2);
    for (const stage of dockerfile) expect(stage.base).toMatch(/^node:20(\.\d+)*-slim$/);
    expect(buildStage.instructions.map((i) => i.args)).toContain("npm run build");
    expect(JSON.parse(read("package.json")).scripts.build).toBe("tsc -p tsconfig.build.json");
  });

  it("builds what `npm run typecheck` checks: the build config only adds where and how to emit", () => {
    const build = JSON.parse(read("tsconfig.build.json"));
    expect(build.extends).toBe("./tsconfig.json");
    expect(Object.keys(build.compilerOptions).sort()).toEqual(["noEmit", "outDir", "rootDir", "sourceMap"]);
    expect(build.include).toEqual(["src"]);
    const checked = JSON.parse(read("tsconfig.json"));
    expect(checked.include).toContain("src");
    // What lets tsc emit each file alone, the same with or without its type check (--noCheck above).
    expect(checked.compilerOptions).toMatchObject({ isolatedModules: true, verbatimModuleSyntax: true });
    expect(JSON.parse(read("package.json")).scripts.typecheck).toBe("tsc --noEmit -p .");
    expect(read(".ci/run")).toMatch(/^npm run typecheck$/m);
  });

  it("installs exactly the locked versions (`npm ci`) with an npm that reads this lock file", () => {
    const runs = (stage: Stage) => stage.instructions.filter((i) => i.op === "RUN").map((i) => i.args);
    expect(runs(buildStage).some((a) => /^npm ci\b/.test(a))).toBe(true);
    expect(runs(runtime).some((a) => /^npm ci --omit=dev --ignore-scripts\b/.test(a))).toBe(true);
    // The only `npm install` is npm itself, at the version the lock file is read with here and in CI.
    for (const stage of [buildStage, runtime]) {
      const installs = runs(stage).filter((a) => /\bnpm (install|i)\b/.test(a));
      expect(installs, stage.name).toEqual([expect.stringMatching(/^npm install -g npm@\$\{NPM_VERSION\} /)]);
      expect(stage.instructions.map((i) => `${i.op} ${i.args}`)).toContain("ARG NPM_VERSION");
    }
    // npm before 11.5 wants an esbuild copy nested under vitest that newer npm leaves out of the lock, and
    // refuses the lock without it; a contributor's own npm may be any version that runs the suite.
    const [major = 0, minor = 0] = (buildArgs.NPM_VERSION ?? "").split(".").map(Number);
    expect(
      major * 100 + minor,
      `docker/Dockerfile's NPM_VERSION ${buildArgs.NPM_VERSION}`,
    ).toBeGreaterThanOrEqual(1105);
    expect(read(".ci/run")).toMatch(/^npm ci\b/m);
    expect(read(".ci/run")).not.toMatch(/^npm install\b/m);
  });

  it("package-lock.json records every platform's optional package, which `npm ci` requires on any platform", () => {
    const lock = JSON.parse(read("package-lock.json")) as {
      packages: Record<string, { optionalDependencies?: Record<string, string>; version?: string }>;
    };
    /** Where Node would find `name` from the package at `path`: its own node_modules, then its parents'. */
    const resolved = (path: string, name: string): string | undefined => {
      for (let dir = path; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf("/node_modules/")))) {
        const candidate = `${dir ? `${dir}/` : ""}node_modules/${name}`;
        if (lock.packages[candidate]) return candidate;
        if (dir === "") return undefined;
      }
    };
    let optional = 0;
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const name of Object.keys(entry.optionalDependencies ?? {})) {
        optional++;
        expect(resolved(path, name), `${path || "(root)"} → ${name}`).toBeDefined();
      }
    }
    // biome, esbuild (three versions), rolldown, lightningcss: ten platform packages each and more.
    expect(optional).toBeGreaterThan(60);
  });

  it("runs compiled JavaScript with production dependencies only, as a non-root user", () => {
    expect(runtimeOps("COPY").some((i) => /(^|\s)src\b/.test(copyOf(i.args).sources.join(" ")))).toBe(false);
    expect(runtimeOps("USER").map((i) => i.args)).toEqual(["node"]);
    expect(entrypoint).toEqual(["node", ...HEAP_FLAGS, "bin/bridge.js"]);
    // The bench starts the service with the container's flags, so its figures hold for the container.
    expect(containerNodeFlags(read("docker/Dockerfile"))).toEqual(HEAP_FLAGS);
    expect(execForm(runtimeOps("CMD")[0]!.args)).toEqual(["serve"]);
    expect(runtimeEnv.DATA_DIR).toBe("/data");
    for (const name of Object.keys(runtimeEnv))
      if (!PLATFORM_VARIABLES.has(name)) expect(knownVariables()).toContain(name);
    expect(runtimeOps("EXPOSE").map((i) => i.args)).toEqual([runtimeEnv.PORT ?? "3000"]);
  });

  it("the bench refuses a Dockerfile whose Node flags it cannot read", () => {
    expect(() => containerNodeFlags("FROM node:20-slim\n")).toThrow("no ENTRYPOINT");
    expect(() => containerNodeFlags("ENTRYPOINT node bin/bridge.js\n")).toThrow(SyntaxError);
    expect(() => containerNodeFlags('ENTRYPOINT ["bin/bridge.js"]\n')).toThrow(
      "not an exec-form node command",
    );
  });

  it("copies nothing from the build context that .dockerignore excludes or that does not exist", () => {
    const ignored = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#") && !l.startsWith("!"));
    for (const stage of dockerfile) {
      for (const copy of stage.instructions.filter((i) => i.op === "COPY").map((i) => copyOf(i.args))) {
        if (copy.from) continue;
        for (const source of copy.sources) {
          expect(existsSync(join(ROOT, source)), `COPY ${source}`).toBe(true);
          expect(ignored, `.dockerignore excludes ${source}`).not.toContain(source.split("/")[0]);
        }
      }
    }
  });
});

// --- the runtime stage, rebuilt in a temp directory --------------------------------------------------------

let work: string;
let app: string;

/** Docker's COPY into `app`: a directory's contents go to the destination, a file into a destination ending in /. */
function copyInto(app: string, copy: Copy, buildDir: string): void {
  const buildWorkdir = buildStage.instructions.find((i) => i.op === "WORKDIR")!.args;
  for (const source of copy.sources) {
    const from = copy.from === "build" ? join(buildDir, relative(buildWorkdir, source)) : join(ROOT, source);
    // A build output the build did not make: "every path COPY --from=build takes exists" names it.
    if (!existsSync(from)) continue;
    const into =
      statSync(from).isFile() && copy.dest.endsWith("/") ? join(copy.dest, basename(source)) : copy.dest;
    cpSync(from, join(app, into), { recursive: true });
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "bridge-container-"));
  app = join(work, "app");
  const build = join(work, "build");
  mkdirSync(app);
  // The build stage: `npm run build` is `tsc -p tsconfig.build.json`, which emits to dist/; here into the
  // temp directory standing for the build stage's WORKDIR. Without its type check (10 s of CPU): the emitted
  // files are the same, and `npm run typecheck` checks the same sources with the same options (the test below).
  await run("npx", ["tsc", "-p", "tsconfig.build.json", "--noCheck", "--outDir", join(build, "dist")], {
    cwd: ROOT,
  });
  // The runtime stage's COPY lines, in order, from the repository (the build context) and the build.
  for (const copy of runtimeOps("COPY").map((i) => copyOf(i.args))) copyInto(app, copy, build);
  // The runtime stage's install command, as the Dockerfile runs it (`npm ci` also fails when
  // package-lock.json is out of date). From npm's cache when CI's own `npm ci` has just filled it.
  const install = runtimeOps("RUN")
    .map((i) => i.args)
    .find((a) => a.startsWith("npm ci"));
  const args = install!.split("&&")[0]!.trim().split(/\s+/).slice(1);
  await run("npm", [...args, "--prefer-offline"], { cwd: app });
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The bridge started as the image starts it: the ENTRYPOINT with `serve`, in the runtime stage's layout. */
interface RunningService {
  url: string;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Sends `signal` unless it has exited; resolves with its exit code once it has. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

async function startService(env: Record<string, string>): Promise<RunningService> {
  // The ENTRYPOINT's own arguments: Node refuses a flag it does not know, so this also checks the flags.
  const child = spawn(process.execPath, [...entrypoint.slice(1), "serve"], { cwd: app, env });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  try {
    const url = await listeningUrl(child);
    return { url, output: () => output, stop };
  } catch (err) {
    await stop("SIGKILL");
    throw err;
  }
}

/** What every start of the service gets: the image's ENV, a home, and a loopback port of its own choosing. */
const baseEnv = (): Record<string, string> => ({
  PATH: process.env.PATH ?? "",
  HOME: work,
  ...runtimeEnv,
  PORT: "0",
  HOST: "127.0.0.1",
});

describe("runtime stage (rebuilt without Docker)", () => {
  it("every path COPY --from=build takes exists after the build", () => {
    for (const copy of runtimeOps("COPY").map((i) => copyOf(i.args))) {
      if (copy.from !== "build") continue;
      for (const source of copy.sources) {
        expect(source.startsWith("/app/"), source).toBe(true);
        expect(
          existsSync(join(work, "build", source.slice("/app/".length))),
          `COPY --from=build ${source}`,
        ).toBe(true);
      }
    }
    expect(existsSync(join(app, "dist/main.js"))).toBe(true);
    expect(existsSync(join(app, "drizzle/meta/_journal.json"))).toBe(true);
    expect(existsSync(join(app, "bin/bridge.js"))).toBe(true);
  });

  it("has no TypeScript toolchain at run time", () => {
    expect(existsSync(join(app, "node_modules/typescript"))).toBe(false);
    expect(existsSync(join(app, "node_modules/tsx"))).toBe(false);
    expect(existsSync(join(app, "node_modules/prom-client"))).toBe(true);
  });

  it("the ENTRYPOINT with `serve` listens, answers /healthz and the HEALTHCHECK, and exits 0 on SIGTERM", async () => {
    const dataDir = join(work, "data");
    const env = { ...baseEnv(), DATA_DIR: dataDir };
    const service = await startService(env);
    try {
      expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
      expect(existsSync(dataDir)).toBe(true);

      // The HEALTHCHECK's own command, run as Docker would inside the container.
      const healthcheck = runtimeOps("HEALTHCHECK")[0]!.args;
      expect(healthcheck).toContain("/healthz");
      const command = execForm(healthcheck.slice(healthcheck.indexOf("CMD") + 3).trim());
      expect(command[0]).toBe("node");
      const port = new URL(service.url).port;
      await expect(
        run(process.execPath, command.slice(1), { env: { ...env, PORT: port } }),
      ).resolves.toBeDefined();

      expect(await service.stop()).toBe(0);
      // Once stopped, the same health check reports failure.
      await expect(
        run(process.execPath, command.slice(1), { env: { ...env, PORT: port } }),
      ).rejects.toThrow();
    } finally {
      await service.stop("SIGKILL");
    }
  }, 60_000);

  it("relays a Telegram message to a tenant of compose's mounted config file and to the env-only tenant", async () => {
    const acme = {
      scenario: "acme-scenario",
      token: "acme-quickchat-token",
      bot: "7000000001:AAacmeBotToken_0000000000000000000",
      secret: "acme-webhook-secret",
    };
    const only = {
      scenario: "env-scenario",
      token: "env-quickchat-token",
      bot: "7000000002:AAenvBotToken_00000000000000000000",
      secret: "env-webhook-secret",
    };
    const quickchat = await new QuickchatFake({
      scenarios: { [acme.scenario]: acme.token, [only.scenario]: only.token },
    }).start();
    const telegram = createTelegramFake({ [acme.bot]: BOT, [only.bot]: BOT });
    const telegramApi = await startFake(telegram.app);
    // PostgreSQL as compose runs it when the suite has one (CI), else the image's default: PGlite in DATA_DIR.
    const database = await createTestDatabase(POSTGRES_URL ? "postgres" : "pglite");
    let service: RunningService | undefined;
    try {
      // The config file where compose mounts it (docs/deploy.md), under the temp directory for the root.
      const compose = parseYaml(withConfigFile(read("docker/compose.yaml"))) as ComposeFile;
      const configPath = join(work, "root", compose.services.bridge!.environment!.BRIDGE_CONFIG!);
      mkdirSync(dirname(configPath), { recursive: true });
      writeFileSync(
        configPath,
        // As README's example has it: the secrets are references, filled from the environment (docker/.env).
        `tenants:
  - id: acme
    quickchat:
      scenario_id: ${acme.scenario}
      token: \${ACME_QUICKCHAT_TOKEN}
      base_url: ${quickchat.url}
    telegram:
      bot_token: \${ACME_TELEGRAM_TOKEN}
      webhook_secret: \${ACME_TELEGRAM_SECRET}
      api_root: ${telegramApi.url}
`,
      );
      service = await startService({
        ...baseEnv(),
        DATA_DIR: join(work, "relay-data"),
        ...(database.url && { DATABASE_URL: database.url }),
        BRIDGE_CONFIG: configPath,
        // docker/.env: the secrets the config file names ...
        ACME_QUICKCHAT_TOKEN: acme.token,
        ACME_TELEGRAM_TOKEN: acme.bot,
        ACME_TELEGRAM_SECRET: acme.secret,
        // ... and the single-tenant shorthand, which alone makes the tenant `default`.
        QUICKCHAT_SCENARIO_ID: only.scenario,
        QUICKCHAT_TOKEN: only.token,
        QUICKCHAT_BASE_URL: quickchat.url,
        TELEGRAM_BOT_TOKEN: only.bot,
        TELEGRAM_WEBHOOK_SECRET: only.secret,
        TELEGRAM_API_ROOT: telegramApi.url,
      });

      const toAcme = await deliverUpdate(
        `${service.url}/webhooks/acme/telegram`,
        messageUpdate(textMessage("Hello acme", { chat: privateChat(ALICE) })),
        acme.secret,
      );
      expect(toAcme.status).toBe(200);
      const toDefault = await deliverUpdate(
        `${service.url}/webhooks/default/telegram`,
        messageUpdate(textMessage("Hello default", { chat: privateChat(BOB) })),
        only.secret,
      );
      expect(toDefault.status).toBe(200);

      const sent = () => telegram.callsTo("sendMessage");
      await waitFor(() => sent().length >= 2, 15_000, "both replies at the Telegram fake");
      const byChat = <T extends { chatId: number }>(items: T[]) => items.sort((x, y) => x.chatId - y.chatId);
      // Each reply came from its own tenant's bot, with Quickchat's HTML rendered for Telegram.
      expect(
        byChat(sent().map((call) => ({ chatId: Number(call.params.chat_id), bot: call.token }))),
      ).toEqual([
        { chatId: ALICE.id, bot: acme.bot },
        { chatId: BOB.id, bot: only.bot },
      ]);
      expect(byChat(telegram.messages)).toEqual([
        { chatId: ALICE.id, text: "You said: Hello acme\n(message 2)" },
        { chatId: BOB.id, text: "You said: Hello default\n(message 2)" },
      ]);
      expect(quickchat.calls.map((c) => c.body.scenario_id).sort()).toEqual(
        [acme.scenario, only.scenario].sort(),
      );
      expect(telegram.rejections).toEqual([]);

      expect(await service.stop()).toBe(0);
      // Neither tenant's secrets reach the logs.
      for (const secret of [acme.token, acme.bot, acme.secret, only.token, only.bot, only.secret])
        expect(service.output()).not.toContain(secret);
    } finally {
      await service?.stop("SIGKILL");
      await telegramApi.close();
      await quickchat.close();
      await database.drop();
    }
  }, 60_000);
});

// --- compose -----------------------------------------------------------------------------------------------

describe("docker/compose.yaml", () => {
  const composeText = read("docker/compose.yaml");
  const compose = parseYaml(composeText) as ComposeFile;
  const db = compose.services.db!;
  const bridge = compose.services.bridge!;
  const env = bridge.environment ?? {};
  /** Compose-style `${NAME:-default}` → default. */
  const interpolate = (value: string) => value.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1");
  /** The variables .env.example names, set or commented out. */
  const named = new Set([...read(".env.example").matchAll(/^#?\s?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!));

  it("runs PostgreSQL 16 with a named volume and a pg_isready health check", () => {
    expect(db.image).toMatch(/^postgres:16/);
    const volume = String(db.volumes?.[0]).split(":")[0] ?? "";
    expect(compose.volumes).toHaveProperty(volume);
    expect(JSON.stringify(db.healthcheck?.test)).toContain("pg_isready");
  });

  it("builds the bridge from docker/Dockerfile with the repository as context", () => {
    expect(bridge.build?.context).toBe("..");
    expect(resolve(ROOT, "docker", bridge.build!.context, bridge.build!.dockerfile)).toBe(
      join(ROOT, "docker/Dockerfile"),
    );
    expect(bridge.command ?? ["serve"]).toEqual(["serve"]);
  });

  it("sets only variables the service knows, and points DATABASE_URL at the db service", () => {
    const known = knownVariables();
    for (const name of Object.keys(env)) expect(known, `compose sets ${name}`).toContain(name);
    const url = new URL(interpolate(env.DATABASE_URL ?? ""));
    expect(url.protocol).toBe("postgres:");
    expect(url.hostname).toBe("db");
    const dbEnv = db.environment ?? {};
    expect(decodeURIComponent(url.username)).toBe(dbEnv.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(interpolate(dbEnv.POSTGRES_PASSWORD ?? ""));
    expect(url.pathname).toBe(`/${dbEnv.POSTGRES_DB}`);
  });

  it("reads an env file whose template (.env.example) names every variable the service and compose read", () => {
    expect(bridge.env_file).toBe(".env");
    const known = knownVariables();
    const composes = composeVariables(compose);
    expect(composes).toContain("POSTGRES_PASSWORD");
    // Besides those: secrets a config file refers to, as in README's example (`${ACME_TELEGRAM_TOKEN}`).
    const readmeExample = [...read("README.md").matchAll(/```yaml\n([\s\S]*?)```/g)].flatMap((m) =>
      [...m[1]!.matchAll(/\$\{([A-Z][A-Z0-9_]*)\}/g)].map((r) => r[1]!),
    );
    for (const name of named)
      expect([...known, ...composes, ...readmeExample], `.env.example names ${name}`).toContain(name);
    for (const name of [...known, ...composes]) expect(named, `.env.example lacks ${name}`).toContain(name);
  });

  it(".env.example names every variable docs/deploy.md tells people to set", () => {
    const told = variablesIn(read("docs/deploy.md"));
    expect(told).toEqual(
      expect.arrayContaining(["POSTGRES_PASSWORD", "BRIDGE_SECRET_KEY", "QUICKCHAT_*", "WHATSAPP_CLOUD_*"]),
    );
    for (const name of told) {
      // The image's own (NODE_ENV) and `docker build --build-arg`s (NPM_VERSION) are not set in .env.
      if (PLATFORM_VARIABLES.has(name) || name in buildArgs) continue;
      if (name.endsWith("_*")) {
        const prefix = name.slice(0, -1);
        expect(
          [...named].some((n) => n.startsWith(prefix)),
          `.env.example names no ${name}`,
        ).toBe(true);
      } else {
        expect(named, `.env.example lacks ${name}`).toContain(name);
      }
    }
  });

  it("mounts a config file read-only and points BRIDGE_CONFIG at it once its commented lines are switched on", () => {
    // As shipped: no config file, so .env alone (the shorthand) makes the tenant and nothing needs to exist.
    expect(env.BRIDGE_CONFIG).toBeUndefined();
    expect(bridge.volumes).toBeUndefined();

    const configured = (parseYaml(withConfigFile(composeText)) as ComposeFile).services.bridge!;
    const { BRIDGE_CONFIG: configPath, ...others } = configured.environment ?? {};
    expect(configPath).toMatch(/^\/\S+\.yaml$/);
    expect(configured.volumes).toEqual([
      {
        type: "bind",
        source: "./bridge.yaml",
        target: configPath,
        read_only: true,
        bind: { create_host_path: false },
      },
    ]);
    // Nothing else changes.
    expect({ ...configured, environment: others, volumes: undefined }).toEqual({
      ...bridge,
      volumes: undefined,
    });
    // The file, docker/bridge.yaml, may hold secrets: neither git nor the image build takes it.
    const mounted = relative(ROOT, resolve(ROOT, "docker", "./bridge.yaml"));
    expect(read(".gitignore").split("\n")).toContain(mounted);
    expect(read(".dockerignore").split("\n")).toContain(mounted);
  });

  it("publishes the port the bridge listens on and starts it once the database is healthy", () => {
    const port = env.PORT ?? runtimeEnv.PORT ?? "3000";
    expect(bridge.ports?.map((p) => p.split(":").at(-1))).toEqual([port]);
    expect(bridge.depends_on?.db?.condition).toBe("service_healthy");
  });

  it("health-checks the bridge on /healthz at its port", () => {
    const port = env.PORT ?? runtimeEnv.PORT ?? "3000";
    const test = JSON.stringify(bridge.healthcheck?.test);
    expect(test).toContain(`:${port}/healthz`);
  });
});

/**
 * The environment variables a Markdown text names in its code spans and blocks: UPPER_SNAKE_CASE names (not
 * values: `Body=VOICE_CALL_REQUEST`), and `PREFIX_*` for a family of them.
 */
function variablesIn(markdown: string): string[] {
  const code = [...markdown.matchAll(/```[a-z]*\n([\s\S]*?)```|`([^`\n]+)`/g)].map((m) => m[1] ?? m[2] ?? "");
  const names = code.flatMap((c) =>
    [...c.matchAll(/(?<![\w$=])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_\*|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?!\w)/g)].map(
      (m) => m[1]!,
    ),
  );
  return [...new Set(names)];
}
