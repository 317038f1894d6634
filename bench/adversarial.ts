/**
 * The adversarial scenario (issue 24): the worst input shapes found for each route and for the formatter,
 * each timed at 64 KB and just under the 1 MiB body limit. Linear code takes about 16 times as long for the
 * larger body; a quadratic shape takes about 256 times as long, or hits the per-request timeout. While each
 * 1 MiB request runs, /healthz is polled: its longest wait is how long the event loop was blocked for every
 * other request of the process, the real harm of a slow shape.
 *
 * The routes are timed over HTTP against the compiled service (bench/run.ts starts it); a request that
 * times out leaves the service busy, so it is killed and a fresh one started. The formatter is timed in a
 * child process (bench/adversarial-format.ts) that is killed the same way.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { Agent, request } from "undici";
import { slackEventHeaders, slackPayloads } from "../test/fakes/slack.js";
import {
  inboundText,
  signTwilioRequest,
  statusCallbackParams,
  type TwilioParams,
  toFormBody,
  twilioSid,
} from "../test/fakes/twilio.js";
import {
  EVERY_CHANNEL_SHAPES,
  FORMAT_SHAPES,
  type FormatRequest,
  type FormatTiming,
} from "./adversarial-format.js";
import { BENCH_IDS } from "./shared.js";

/** The service under test, as bench/run.ts starts it (a fresh database each time). */
export interface BridgeProcess {
  url: string;
  /** Orderly stop. */
  stop(): Promise<void>;
  /** For a service stuck in a slow request: it cannot run its SIGTERM handler. */
  kill(): Promise<void>;
}

export type LaunchBridge = (env: Record<string, string>) => Promise<BridgeProcess>;

const SMALL = 64 * 1024;
/** Just under the 1 MiB body limit (which answers 413 above it), with room for ids that grow by a digit. */
const LARGE = 1024 * 1024 - 512;
/** Small bodies sent once per case before timing, so the timed requests run JIT-compiled code. */
const WARMUP = 4096;
const TIMEOUT_MS = Number(process.env.BENCH_ADVERSARIAL_TIMEOUT ?? 60) * 1000;
const RUNS = 3;
/** Runs after the first are skipped when the first took longer: a slow shape is not noise. */
const REPEAT_BELOW_MS = 1000;

const TENANT = "bench";
const ADMIN_TOKEN = "bench-admin-token-0123456789";
/** The Slack bot's user id in the fakes (bench/fakes.ts). */
const SLACK_BOT_USER = "UBOTFAKE";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const log = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] adversarial: ${message}`);

// ---------------------------------------------------------------------------------------------------------
// Route cases

interface Built {
  headers: Record<string, string>;
  body: string;
  /** Sent in chunks of this many bytes without a Content-Length (Transfer-Encoding: chunked). */
  chunkBytes?: number;
}

interface RouteCase {
  route: string;
  shape: string;
  method?: "POST" | "PUT";
  /** The request with `n` units of the shape; `seq` makes ids unique, so nothing is a duplicate. */
  build(n: number, seq: number): Built;
}

const webhook = (channel: string, tenant = TENANT) => `/webhooks/${tenant}/${channel}`;
const WHATSAPP = webhook("whatsapp");
const WHATSAPP_STATUS = `${WHATSAPP}/status`;

/** A signature of the right shape (base64 of a SHA-1) that matches nothing. */
const WRONG_TWILIO_SIGNATURE = randomBytes(20).toString("base64");
const FORM = "application/x-www-form-urlencoded";

const repeatedKey = (n: number) => Array.from({ length: n }, () => "a").join("&");
const distinctKeys = (n: number) => Array.from({ length: n }, (_, i) => `a${i}=`).join("&");
const words = (n: number) => "word ".repeat(n);

function twilioRequest(path: string, params: TwilioParams, signed: boolean): Built {
  return {
    headers: {
      "content-type": FORM,
      "x-twilio-signature": signed
        ? signTwilioRequest(BENCH_IDS.twilioToken, BENCH_IDS.publicUrl + path, params)
        : WRONG_TWILIO_SIGNATURE,
    },
    body: toFormBody(params),
  };
}

const whatsappText = (text: string, seq: number) =>
  inboundText(text, {
    accountSid: BENCH_IDS.twilioSid,
    to: BENCH_IDS.twilioFrom,
    from: `whatsapp:+3161${String(seq).padStart(7, "0")}`,
    messageSid: twilioSid("SM"),
  });

function whatsappCases(): RouteCase[] {
  const bogus = (body: string) => ({
    headers: { "content-type": FORM, "x-twilio-signature": "bogus" },
    body,
  });
  const cases: RouteCase[] = [];
  for (const path of [WHATSAPP, WHATSAPP_STATUS]) {
    const route = `POST ${path.replace(TENANT, "{tenant}")}`;
    cases.push(
      { route, shape: "a&a&a… (one key repeated), bogus signature", build: (n) => bogus(repeatedKey(n)) },
      { route, shape: "a0=&a1=&… (distinct keys), bogus signature", build: (n) => bogus(distinctKeys(n)) },
      {
        route,
        shape: "a0=&a1=&…, well-shaped wrong signature",
        build: (n) => ({
          headers: { "content-type": FORM, "x-twilio-signature": WRONG_TWILIO_SIGNATURE },
          body: distinctKeys(n),
        }),
      },
    );
  }
  cases.push(
    {
      route: `POST ${webhook("whatsapp", "{tenant}")}`,
      shape: "real message, big Body, well-shaped wrong signature",
      build: (n, seq) => twilioRequest(WHATSAPP, whatsappText(words(n), seq), false),
    },
    {
      route: `POST ${webhook("whatsapp", "{tenant}")}`,
      shape: "real message, big Body, signed",
      build: (n, seq) => twilioRequest(WHATSAPP, whatsappText(words(n), seq), true),
    },
    {
      route: `POST ${WHATSAPP_STATUS.replace(TENANT, "{tenant}")}`,
      shape: "real status callback + a0=&a1=&…, signed",
      build: (n, seq) => {
        const params: TwilioParams = statusCallbackParams({
          accountSid: BENCH_IDS.twilioSid,
          messageSid: `SM${String(seq).padStart(32, "0")}`,
          status: "delivered",
          to: "whatsapp:+31612345678",
          from: BENCH_IDS.twilioFrom,
        });
        for (let i = 0; i < n; i++) params[`a${i}`] = "";
        return twilioRequest(WHATSAPP_STATUS, params, true);
      },
    },
  );
  return cases;
}

const slackTs = (seq: number) => `${1_700_000_000 + seq}.000200`;
const slackFields = (text: string, seq: number, channel: string) => ({
  team: BENCH_IDS.slackTeam,
  channel,
  user: "U0BENCHUSER",
  text,
  ts: slackTs(seq),
});

function slackSigned(payload: unknown): Built {
  const body = JSON.stringify(payload);
  return { headers: slackEventHeaders(BENCH_IDS.slackSigningSecret, body), body };
}

function slackCases(): RouteCase[] {
  const route = `POST ${webhook("slack", "{tenant}")}`;
  const mention = `<@${SLACK_BOT_USER}>`;
  return [
    {
      route,
      shape: "real DM, big text, wrong signature",
      build: (n, seq) => {
        const body = JSON.stringify(slackPayloads.dm(slackFields(words(n), seq, "D0ADV")));
        const headers = slackEventHeaders(BENCH_IDS.slackSigningSecret, body);
        return { body, headers: { ...headers, "x-slack-signature": `v0=${"0".repeat(64)}` } };
      },
    },
    {
      route,
      shape: "DM, big text, signed",
      build: (n, seq) => slackSigned(slackPayloads.dm(slackFields(words(n), seq, "D0ADV"))),
    },
    {
      route,
      shape: `app_mention, NBSP… then x${mention}, signed`,
      build: (n, seq) =>
        slackSigned(slackPayloads.appMention(slackFields(`${"\u00a0".repeat(n)}x${mention}`, seq, "C0ADV"))),
    },
    {
      route,
      shape: `DM, NBSP… then x${mention}, signed`,
      build: (n, seq) =>
        slackSigned(slackPayloads.dm(slackFields(`${"\u00a0".repeat(n)}x${mention}`, seq, "D0ADV"))),
    },
    {
      route,
      shape: `channel message, <@${SLACK_BOT_USER}|<@${SLACK_BOT_USER}|… (no >), signed`,
      build: (n, seq) =>
        slackSigned(
          slackPayloads.channelMessage(slackFields(`<@${SLACK_BOT_USER}|`.repeat(n), seq, "C0ADV")),
        ),
    },
    {
      route,
      shape: "DM, <x|<x|… links (no >), signed",
      build: (n, seq) => slackSigned(slackPayloads.dm(slackFields("<x|".repeat(n), seq, "D0ADV"))),
    },
    {
      route,
      shape: "DM + [[[[… nested JSON, signed",
      build: (n, seq) => {
        const dm = JSON.stringify(slackPayloads.dm(slackFields("hi", seq, "D0ADV")));
        const body = `${dm.slice(0, -1)},"x":${"[".repeat(n)}${"]".repeat(n)}}`;
        return { headers: slackEventHeaders(BENCH_IDS.slackSigningSecret, body), body };
      },
    },
  ];
}

const telegramHeaders = (secret = BENCH_IDS.telegramSecret) => ({
  "content-type": "application/json",
  "x-telegram-bot-api-secret-token": secret,
});

function telegramMessage(seq: number, text: string, chat: { id: number; type: string }) {
  return {
    message_id: seq,
    from: { id: 2_000_000 + seq, is_bot: false, first_name: "Adversary" },
    chat: chat.type === "private" ? { ...chat, first_name: "Adversary" } : { ...chat, title: "Adversaries" },
    date: Math.floor(Date.now() / 1000),
    text,
  };
}

const privateChat = (seq: number) => ({ id: 2_000_000 + seq, type: "private" });

function telegramCases(): RouteCase[] {
  const route = `POST ${webhook("telegram", "{tenant}")}`;
  return [
    {
      route,
      shape: "real message, big text, wrong secret token",
      build: (n, seq) => ({
        headers: telegramHeaders("wrong-secret"),
        body: JSON.stringify({ update_id: seq, message: telegramMessage(seq, words(n), privateChat(seq)) }),
      }),
    },
    {
      route,
      shape: "real message, big text, wrong secret token, 64-byte chunks",
      build: (n, seq) => ({
        headers: telegramHeaders("wrong-secret"),
        body: JSON.stringify({ update_id: seq, message: telegramMessage(seq, words(n), privateChat(seq)) }),
        chunkBytes: 64,
      }),
    },
    {
      route,
      shape: "private message, big text, signed",
      build: (n, seq) => ({
        headers: telegramHeaders(),
        body: JSON.stringify({ update_id: seq, message: telegramMessage(seq, words(n), privateChat(seq)) }),
      }),
    },
    {
      route,
      shape: "reply_to_message nested n deep, signed",
      build: (n, seq) => {
        const message = JSON.stringify(telegramMessage(seq, "hi", privateChat(seq)));
        // The smallest message the parser accepts, so that 1 MiB nests as deep as it can.
        const quoted = `{"message_id":1,"chat":{"id":1,"type":"private"},"reply_to_message":`;
        const outer = `${message.slice(0, -1)},"reply_to_message":`;
        const inner = '{"message_id":1,"chat":{"id":1,"type":"private"}}';
        const body = `{"update_id":${seq},"message":${outer}${quoted.repeat(n)}${inner}${"}".repeat(n + 1)}}`;
        return { headers: telegramHeaders(), body };
      },
    },
    {
      route,
      shape: "group message, many mention entities over the whole text, signed",
      build: (n, seq) => {
        const text = `@someone ${"x".repeat(25 * n)}`;
        const entity = { type: "mention", offset: 0, length: text.length };
        const message = {
          ...telegramMessage(seq, text, { id: -1_000_000_000_000 - seq, type: "supergroup" }),
          entities: Array.from({ length: n }, () => entity),
        };
        return { headers: telegramHeaders(), body: JSON.stringify({ update_id: seq, message }) };
      },
    },
    {
      route,
      shape: "group message, text_mention entities without a user, signed",
      build: (n, seq) => {
        const text = "x".repeat(25 * n);
        const entity = { type: "text_mention", offset: 0, length: 1 };
        const message = {
          ...telegramMessage(seq, text, { id: -1_000_000_000_000 - seq, type: "supergroup" }),
          entities: Array.from({ length: n }, () => entity),
        };
        return { headers: telegramHeaders(), body: JSON.stringify({ update_id: seq, message }) };
      },
    },
    {
      route,
      shape: "private message + [[[[… nested JSON, signed",
      build: (n, seq) => {
        const update = JSON.stringify({
          update_id: seq,
          message: telegramMessage(seq, "hi", privateChat(seq)),
        });
        return {
          headers: telegramHeaders(),
          body: `${update.slice(0, -1)},"x":${"[".repeat(n)}${"]".repeat(n)}}`,
        };
      },
    },
  ];
}

function otherCases(): RouteCase[] {
  const json = (headers: Record<string, string> = {}) => ({ "content-type": "application/json", ...headers });
  const bigTenant = (n: number) => JSON.stringify({ id: "adv", note: "x".repeat(n) });
  return [
    {
      route: "POST /admin/tenants",
      shape: "big JSON, wrong admin token",
      build: (n) => ({
        headers: json({ authorization: "Bearer wrong-token-0123456789" }),
        body: bigTenant(n),
      }),
    },
    {
      route: "PUT /admin/tenants/{tenant}",
      method: "PUT",
      shape: "big JSON, no admin token",
      build: (n) => ({ headers: json(), body: bigTenant(n) }),
    },
    {
      route: "POST /admin/tenants",
      shape: "big invalid tenant JSON, right admin token",
      build: (n) => ({ headers: json({ authorization: `Bearer ${ADMIN_TOKEN}` }), body: bigTenant(n) }),
    },
    {
      route: "POST /webhooks/{unknown tenant}/telegram",
      shape: "big body",
      build: (n) => ({ headers: telegramHeaders(), body: JSON.stringify({ update_id: 1, x: words(n) }) }),
    },
    {
      route: "POST /webhooks/{tenant}/{unknown channel}",
      shape: "big body",
      build: (n) => ({ headers: json(), body: JSON.stringify({ x: words(n) }) }),
    },
  ];
}

/** Where each case is posted: the route's template with the bench tenant, or an unknown one. */
function pathOf(c: RouteCase): string {
  return c.route
    .split(" ")[1]!
    .replace("{unknown tenant}", "no-such-tenant")
    .replace("{unknown channel}", "carrier-pigeon")
    .replace("{tenant}", TENANT);
}

export function routeCases(): RouteCase[] {
  return [...whatsappCases(), ...slackCases(), ...telegramCases(), ...otherCases()];
}

// ---------------------------------------------------------------------------------------------------------
// Timing

interface Timing {
  bytes: number;
  /** Median, or the timeout when it was hit. */
  ms: number;
  runs: number;
  status?: number;
  timedOut: boolean;
  /** The 64 KB run took so long that 16 times that (linear growth) is beyond the timeout. */
  skipped?: boolean;
  /** The longest wait for a /healthz answer during the runs (routes only). */
  healthStallMs?: number;
  error?: string;
}

export interface RouteResult {
  route: string;
  shape: string;
  small: Timing;
  large: Timing;
}

export interface FormatResult {
  shape: string;
  channel: string;
  small: Timing & { parts?: number };
  large: Timing & { parts?: number };
}

/** Keeps its own connections: a case's requests never wait behind a /healthz poll, nor the reverse. */
const caseAgent = new Agent({ connections: 1, pipelining: 0 });
const healthAgent = new Agent({ connections: 1 });

let sequence = 0;

/** The largest `n` whose body fits `bytes`, found once per case and size (ids change a body by a few bytes). */
function unitsFor(c: RouteCase, bytes: number): number {
  const fits = (n: number) => Buffer.byteLength(c.build(n, 1_000_000).body) <= bytes;
  // Doubling first: a build far beyond `bytes` (a million entities) would cost more than the search.
  let low = 0;
  let high = 1;
  while (fits(high)) [low, high] = [high, high * 2];
  high -= 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (fits(middle)) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** The body as a stream of `size`-byte chunks: undici sends it chunked, without a Content-Length. */
function chunks(body: string, size: number): Readable {
  const bytes = Buffer.from(body);
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
    })(),
  );
}

async function send(
  url: string,
  c: RouteCase,
  built: Built,
): Promise<{ ms: number; status?: number; timedOut: boolean; error?: string }> {
  const started = performance.now();
  try {
    const response = await request(`${url}${pathOf(c)}`, {
      method: c.method ?? "POST",
      headers: built.headers,
      body: built.chunkBytes ? chunks(built.body, built.chunkBytes) : built.body,
      dispatcher: caseAgent,
      signal: AbortSignal.timeout(TIMEOUT_MS),
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
    await response.body.dump();
    return { ms: performance.now() - started, status: response.statusCode, timedOut: false };
  } catch (error) {
    const ms = performance.now() - started;
    if (ms >= TIMEOUT_MS - 50) return { ms: TIMEOUT_MS, timedOut: true };
    return { ms, timedOut: false, error: (error as Error).message };
  }
}

/** Polls /healthz one request at a time; `stop` returns the longest wait for an answer. */
function watchHealth(url: string): { stop(): Promise<number> } {
  let stopped = false;
  let longest = 0;
  let pendingSince: number | undefined;
  const loop = (async () => {
    while (!stopped) {
      pendingSince = performance.now();
      try {
        const response = await request(`${url}/healthz`, {
          dispatcher: healthAgent,
          signal: AbortSignal.timeout(TIMEOUT_MS + 10_000),
        });
        await response.body.dump();
      } catch {
        // counted as a wait below
      }
      longest = Math.max(longest, performance.now() - pendingSince);
      pendingSince = undefined;
      await sleep(20);
    }
  })();
  return {
    async stop() {
      stopped = true;
      // A poll still unanswered (the service is stuck) counts up to now; it is not waited for.
      if (pendingSince !== undefined) longest = Math.max(longest, performance.now() - pendingSince);
      else await loop;
      return longest;
    },
  };
}

class RouteRunner {
  private bridge!: BridgeProcess;

  constructor(private readonly launch: LaunchBridge) {}

  static readonly ENV = {
    ADMIN_TOKEN,
    // Every rejected signature logs a warning: thousands of expected lines.
    LOG_LEVEL: "error",
    // The worker takes one message and waits on a Quickchat that never answers within the run (the fakes
    // are told so), so replies never format and send in the background of a timed request.
    WORKER_CONCURRENCY: "1",
    QUICKCHAT_TIMEOUT_SECONDS: "900",
  };

  async start(): Promise<void> {
    this.bridge = await this.launch(RouteRunner.ENV);
  }

  async stop(): Promise<void> {
    await this.bridge.stop();
  }

  /** A service stuck in a timed-out request is replaced. */
  private async restart(): Promise<void> {
    log("a request timed out: restarting the service");
    await this.bridge.kill();
    await this.start();
  }

  async time(c: RouteCase, bytes: number, watch: boolean): Promise<Timing> {
    const n = unitsFor(c, bytes);
    const ms: number[] = [];
    let status: number | undefined;
    let stall = 0;
    let error: string | undefined;
    let bodyBytes = 0;
    for (let run = 0; run < RUNS; run++) {
      const built = c.build(n, ++sequence);
      bodyBytes = Buffer.byteLength(built.body);
      const health = watch ? watchHealth(this.bridge.url) : undefined;
      const sent = await send(this.bridge.url, c, built);
      if (health) stall = Math.max(stall, await health.stop());
      if (sent.timedOut) {
        await this.restart();
        return {
          bytes: bodyBytes,
          ms: TIMEOUT_MS,
          runs: run + 1,
          timedOut: true,
          ...(watch && { healthStallMs: stall }),
        };
      }
      ms.push(sent.ms);
      status = sent.status;
      error ??= sent.error;
      if (sent.ms > REPEAT_BELOW_MS) break;
    }
    return {
      bytes: bodyBytes,
      ms: median(ms),
      runs: ms.length,
      status,
      timedOut: false,
      ...(watch && { healthStallMs: stall }),
      ...(error && { error }),
    };
  }

  async run(c: RouteCase): Promise<RouteResult> {
    await send(this.bridge.url, c, c.build(unitsFor(c, WARMUP), ++sequence));
    const small = await this.time(c, SMALL, true);
    const large =
      small.timedOut || small.ms * (LARGE / SMALL) > TIMEOUT_MS
        ? skippedAfter(small)
        : await this.time(c, LARGE, true);
    return { route: c.route, shape: c.shape, small, large };
  }
}

function skippedAfter(small: Timing): Timing {
  return { bytes: LARGE, ms: TIMEOUT_MS, runs: 0, timedOut: true, skipped: true, status: small.status };
}

// ---------------------------------------------------------------------------------------------------------
// Formatter

class FormatRunner {
  private child!: ChildProcess;
  private pending = new Map<number, (timing: FormatTiming) => void>();
  private seq = 0;

  async start(): Promise<void> {
    this.child = spawn(process.execPath, ["--import", "tsx", "bench/adversarial-format.ts"], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const ready = new Promise<void>((resolve) => this.pending.set(0, () => resolve()));
    this.child.on("message", (message: { seq: number; timing: FormatTiming }) => {
      this.pending.get(message.seq)?.(message.timing);
      this.pending.delete(message.seq);
    });
    await ready;
  }

  stop(): void {
    this.child.kill("SIGKILL");
  }

  async time(
    shape: string,
    channel: FormatRequest["channel"],
    size: number,
  ): Promise<Timing & { parts?: number }> {
    const seq = ++this.seq;
    const answer = new Promise<FormatTiming>((resolve) => this.pending.set(seq, resolve));
    this.child.send({ seq, request: { shape, channel, size, runs: RUNS } satisfies FormatRequest });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), TIMEOUT_MS);
    });
    const timing = await Promise.race([answer, timeout]);
    clearTimeout(timer);
    if (!timing) {
      log(`formatter timed out on "${shape}": restarting it`);
      this.pending.delete(seq);
      this.stop();
      await this.start();
      return { bytes: size, ms: TIMEOUT_MS, runs: 1, timedOut: true };
    }
    return {
      bytes: size,
      ms: timing.ms,
      runs: timing.runs,
      timedOut: false,
      parts: timing.parts,
      ...(timing.error && { error: timing.error }),
    };
  }

  async run(shape: string, channel: FormatRequest["channel"]): Promise<FormatResult> {
    const small = await this.time(shape, channel, SMALL);
    const large =
      small.timedOut || small.ms * (LARGE / SMALL) > TIMEOUT_MS
        ? skippedAfter(small)
        : await this.time(shape, channel, LARGE);
    return { shape, channel, small, large };
  }
}

function formatCases(): { shape: string; channel: FormatRequest["channel"] }[] {
  const cases: { shape: string; channel: FormatRequest["channel"] }[] = [];
  for (const shape of Object.keys(FORMAT_SHAPES)) {
    cases.push({ shape, channel: "whatsapp" });
    if (EVERY_CHANNEL_SHAPES.includes(shape)) {
      cases.push({ shape, channel: "telegram" }, { shape, channel: "slack" });
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------------------

export interface AdversarialResults {
  timeoutSeconds: number;
  sizes: { small: number; large: number };
  routes: RouteResult[];
  format: FormatResult[];
  seconds: number;
}

/**
 * Times every route case against services from `launch`, then every formatter shape. `filter` keeps the
 * cases whose route or shape contains it (BENCH_ADVERSARIAL_ONLY), for a quick look at one shape.
 */
export async function adversarial(launch: LaunchBridge, filter?: string): Promise<AdversarialResults> {
  const began = Date.now();
  const keep = (text: string) => !filter || text.toLowerCase().includes(filter.toLowerCase());
  const routes: RouteResult[] = [];
  const runner = new RouteRunner(launch);
  await runner.start();
  try {
    for (const c of routeCases()) {
      if (!keep(`${c.route} ${c.shape}`)) continue;
      log(`${c.route}: ${c.shape}`);
      routes.push(await runner.run(c));
    }
  } finally {
    await runner.stop();
  }
  const format: FormatResult[] = [];
  const formatter = new FormatRunner();
  await formatter.start();
  try {
    for (const { shape, channel } of formatCases()) {
      if (!keep(`formatReply ${channel} ${shape}`)) continue;
      log(`formatReply ${channel}: ${shape}`);
      format.push(await formatter.run(shape, channel));
    }
  } finally {
    formatter.stop();
  }
  return {
    timeoutSeconds: TIMEOUT_MS / 1000,
    sizes: { small: SMALL, large: LARGE },
    routes,
    format,
    seconds: Math.round((Date.now() - began) / 1000),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Table

function duration(t: Timing): string {
  if (t.timedOut) return t.skipped ? `> ${TIMEOUT_MS / 1000} s*` : `> ${TIMEOUT_MS / 1000} s`;
  if (t.ms >= 1000) return `${(t.ms / 1000).toFixed(1)} s`;
  return t.ms >= 10 ? `${t.ms.toFixed(0)} ms` : `${t.ms.toFixed(1)} ms`;
}

/** Large time over small time; a lower bound (">") when the large one hit the timeout. */
function ratio(small: Timing, large: Timing): string {
  if (small.timedOut || large.skipped || small.error || large.error) return "-";
  const value = large.ms / small.ms;
  const text = value >= 100 ? value.toFixed(0) : value.toFixed(1);
  return large.timedOut ? `> ${text}` : text;
}

function status(small: Timing, large: Timing): string {
  const of = (t: Timing) => (t.error ? "error" : t.status === undefined ? "-" : String(t.status));
  return of(small) === of(large) || large.timedOut ? of(small) : `${of(small)}/${of(large)}`;
}

/** The 1 MiB runs' longest /healthz wait; the 64 KB runs' when the 1 MiB ones were not run. */
function stall(small: Timing, large: Timing): string {
  const t = large.skipped ? small : large;
  if (t.healthStallMs === undefined) return "-";
  const wait = duration({ ...t, ms: t.healthStallMs, timedOut: false });
  return `${t.timedOut ? "> " : ""}${wait}${t === small ? " (64 KB)" : ""}`;
}

function table(rows: string[][]): string {
  if (rows.length === 1) return "";
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The scenario's printed table: routes, then the formatter. */
export function adversarialTable(results: AdversarialResults): string {
  const kb = (bytes: number) => (bytes >= LARGE ? "1 MiB" : `${Math.round(bytes / 1024)} KB`);
  const routeRows = [
    ["route", "shape", "status", kb(results.sizes.small), kb(results.sizes.large), "ratio", "/healthz stall"],
    ...results.routes.map((r) => [
      r.route,
      r.shape,
      status(r.small, r.large),
      duration(r.small),
      duration(r.large),
      ratio(r.small, r.large),
      stall(r.small, r.large),
    ]),
  ];
  const formatRows = [
    ["formatReply", "shape", "parts or error", kb(results.sizes.small), kb(results.sizes.large), "ratio", ""],
    ...results.format.map((f) => [
      f.channel,
      f.shape,
      [f.small, f.large].map((t) => t.error ?? (t.timedOut ? "-" : String(t.parts))).join("/"),
      duration(f.small),
      duration(f.large),
      ratio(f.small, f.large),
      "",
    ]),
  ];
  return [
    `adversarial inputs: median of up to ${RUNS} runs per size (1 run when the first took over ${REPEAT_BELOW_MS / 1000} s).`,
    "Linear code has a ratio of 16 or less (fixed costs weigh more at 64 KB); quadratic code about 256.",
    table(routeRows),
    "",
    table(formatRows),
    "",
    `> ${results.timeoutSeconds} s: the request timed out (the service or formatter was then restarted);`,
    `> ${results.timeoutSeconds} s*: not run, as 16 times the 64 KB time is already beyond the timeout.`,
    "/healthz stall: the longest wait for /healthz while the 1 MiB requests ran (64 KB ones when those did not run):",
    "the time the event loop was blocked for every other request.",
    `(${results.seconds} s)`,
  ].join("\n");
}
