/**
 * Slow clients: a client that sends its body (or its headers) a byte a second is cut off by the request
 * (headers) timeout, and while many do so at once, normal webhooks are still answered fast. Being cut off
 * is the client's doing: no error line, and the webhook is counted as aborted, not rejected.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/harness.js";
import { FaultWorld, IDS, POSTGRES_AVAILABLE, type ServiceProcess, size } from "./support/service.js";
import { deliver, type Message } from "./support/traffic.js";

const REQUEST_TIMEOUT_S = 2;
const HEADERS_TIMEOUT_S = 1;
const SLOW_CLIENTS = size(20, 200);
/** node checks the timeouts every second (bridge.ts), and the machine is shared: generous slack. */
const SLACK_MS = 2_500;

interface SlowResult {
  /** ms from the first byte until the server closed the connection */
  closedAfterMs: number;
  bytesSent: number;
  /** what the server sent before closing, if anything */
  answer: string;
}

/**
 * Opens a connection, sends `head` at once (all of it, or nothing when `dribbleHead`), then one byte a
 * second until the server closes the connection; gives up after `maxMs`.
 */
function slowClient(url: string, head: string, dribble: string, maxMs: number): Promise<SlowResult> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const started = Date.now();
    let sent = 0;
    let answer = "";
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still connected after ${maxMs} ms, ${sent} bytes sent`));
    }, maxMs);
    socket.on("connect", () => {
      socket.write(head);
      sent += head.length;
      timer = setInterval(() => {
        if (socket.destroyed || !socket.writable) return;
        socket.write(dribble[sent % dribble.length]!);
        sent++;
      }, 1_000);
    });
    socket.on("data", (chunk) => {
      answer += chunk.toString();
    });
    socket.on("error", () => {}); // a reset is one way of being cut off
    socket.on("close", () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ closedAfterMs: Date.now() - started, bytesSent: sent, answer });
    });
  });
}

const webhookHead = (contentLength: number) =>
  [
    "POST /webhooks/default/telegram HTTP/1.1",
    "Host: bridge.fault.test",
    "Content-Type: application/json",
    `X-Telegram-Bot-Api-Secret-Token: ${IDS.telegramSecret}`,
    `Content-Length: ${contentLength}`,
    "",
    "",
  ].join("\r\n");

/** bridge_webhooks_total of the default tenant's Telegram webhooks with this outcome. */
async function telegramWebhooks(url: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const labels = `{tenant="default",channel="telegram",outcome="${outcome}"}`;
  const line = text.split("\n").find((l) => l.startsWith(`bridge_webhooks_total${labels}`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]!, max: sorted[sorted.length - 1]! };
};

describe.runIf(POSTGRES_AVAILABLE)("slow clients", () => {
  let world: FaultWorld;
  let service: ServiceProcess;

  beforeAll(async () => {
    world = await FaultWorld.create({
      HTTP_REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_S),
      HTTP_HEADERS_TIMEOUT_SECONDS: String(HEADERS_TIMEOUT_S),
    });
    service = await world.startService();
  });
  afterAll(() => world?.close());

  it(`${SLOW_CLIENTS} bodies sent a byte a second are cut off after the ${REQUEST_TIMEOUT_S} s request timeout; normal webhooks meanwhile are answered fast`, async () => {
    const maxMs = REQUEST_TIMEOUT_S * 1000 + SLACK_MS + 5_000;
    const [rejectedBefore, abortedBefore] = [
      await telegramWebhooks(service.url, "rejected"),
      await telegramWebhooks(service.url, "aborted"),
    ];
    const firstLine = world.logs.length;
    const slow = Array.from({ length: SLOW_CLIENTS }, () =>
      slowClient(service.url, webhookHead(1_000), '{"update_id":1}', maxMs),
    );

    // Normal traffic while the slow clients hold their connections.
    const latencies: number[] = [];
    const statuses: number[] = [];
    const until = Date.now() + REQUEST_TIMEOUT_S * 1000;
    for (let seq = 0; Date.now() < until; seq++) {
      const m: Message = { channel: (["telegram", "slack", "whatsapp"] as const)[seq % 3]!, thread: 1, seq };
      const started = performance.now();
      statuses.push(await deliver(service.url, m));
      latencies.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 50));
    }

    const results = await Promise.all(slow);
    const closed = stats(results.map((r) => r.closedAfterMs));
    const answers = new Map<string, number>();
    for (const r of results) {
      const first = r.answer.split("\r\n")[0] || "(closed without an answer)";
      answers.set(first, (answers.get(first) ?? 0) + 1);
    }
    const normal = stats(latencies);
    // Every cut-off request counted one way or the other, and its log lines (a pipe away) arrived.
    let aborted = 0;
    let rejected = 0;
    await waitFor(async () => {
      aborted = (await telegramWebhooks(service.url, "aborted")) - abortedBefore;
      rejected = (await telegramWebhooks(service.url, "rejected")) - rejectedBefore;
      return aborted + rejected >= SLOW_CLIENTS;
    }, 5_000);
    await new Promise((r) => setTimeout(r, 500));
    const errorLines = world.logs.slice(firstLine).filter((l) => /"level":"(error|fatal)"/.test(l));
    console.log(
      `slow bodies: ${SLOW_CLIENTS} clients, cut off after ${closed.min}/${closed.median}/${closed.max} ms ` +
        `(min/median/max; timeout ${REQUEST_TIMEOUT_S} s), bytes sent ≤ ${Math.max(...results.map((r) => r.bytesSent))}, ` +
        `answers ${JSON.stringify(Object.fromEntries(answers))}; meanwhile ${latencies.length} webhooks answered in ` +
        `${normal.min.toFixed(1)}/${normal.median.toFixed(1)}/${normal.max.toFixed(1)} ms; ` +
        `${errorLines.length} error lines; counted aborted ${aborted}, rejected ${rejected}`,
    );

    expect(closed.min).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_S * 1000 - 200);
    expect(closed.max).toBeLessThanOrEqual(REQUEST_TIMEOUT_S * 1000 + SLACK_MS);
    // Cut off, never answered as if the request had been complete.
    for (const first of answers.keys())
      expect(first).toMatch(/^(HTTP\/1\.1 408 |\(closed without an answer\))/);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(latencies.length).toBeGreaterThan(5);
    expect(normal.max).toBeLessThan(1_000);
    expect(service.running).toBe(true);
    // Cut off is not a server error, nor a rejected webhook.
    expect(errorLines).toEqual([]);
    expect(aborted).toBe(SLOW_CLIENTS);
    expect(rejected).toBe(0);
  }, 60_000);

  it(`headers sent a byte a second are cut off after the ${HEADERS_TIMEOUT_S} s headers timeout`, async () => {
    const count = Math.max(5, Math.round(SLOW_CLIENTS / 4));
    const maxMs = HEADERS_TIMEOUT_S * 1000 + SLACK_MS + 5_000;
    const results = await Promise.all(
      Array.from({ length: count }, () => slowClient(service.url, "P", webhookHead(10).slice(1), maxMs)),
    );
    const closed = stats(results.map((r) => r.closedAfterMs));
    console.log(
      `slow headers: ${count} clients, cut off after ${closed.min}/${closed.median}/${closed.max} ms ` +
        `(timeout ${HEADERS_TIMEOUT_S} s), answers ${JSON.stringify([...new Set(results.map((r) => r.answer.split("\r\n")[0]))])}`,
    );
    for (const r of results) expect(r.answer).toMatch(/^(HTTP\/1\.1 (400|408) |$)/);
    expect(closed.min).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_S * 1000 - 200);
    expect(closed.max).toBeLessThanOrEqual(HEADERS_TIMEOUT_S * 1000 + SLACK_MS);
    const health = await fetch(`${service.url}/healthz`);
    expect(health.status).toBe(200);
  }, 60_000);
});
