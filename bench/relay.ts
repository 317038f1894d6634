/**
 * The relay's throughput scenarios (issue 25): live traffic, the drain after a Quickchat outage, and backlogs
 * on tables never analyzed. Black-box, so that they measure any version of the service alike: webhooks go in
 * over HTTP, replies are counted as they reach the Telegram fake, and the SQL touches only what every version
 * has (the inbound_messages and outbound_messages tables, and PostgreSQL's own statistics views).
 */
import postgres from "postgres";
import {
  type Fakes,
  freshDatabase,
  log,
  round,
  type Service,
  startService,
  waitFor,
  withBridge,
} from "./harness.js";
import { type FakesReply, now } from "./shared.js";
import { mark, type Row } from "./table.js";
import { buildWebhook, type LoadResult, load } from "./webhooks.js";

/** Messages per burst of the end-to-end scenario, and of every warm-up. */
export const E2E_MESSAGES = Number(process.env.BENCH_E2E_MESSAGES ?? 4000);
/** Messages of the live relay: a few seconds of it, where E2E_MESSAGES took one (about 3,500 msg/s here). */
const LIVE_MESSAGES = Number(process.env.BENCH_LIVE_MESSAGES ?? 16000);
/** Chats of the live, outage and backlog scenarios: dozens of messages per chat in the larger ones. */
const CHATS = 500;
/** Seconds of saturated webhooks while Quickchat does not answer. */
const OUTAGE_SECONDS = 8;
/** The backlog whose drain has a target; the smaller one shows how the rate depends on the depth. */
const TARGETED_BACKLOG = 32000;
const BACKLOGS = [2000, TARGETED_BACKLOG];
/** The outage drain and the 32,000 backlog drain, each against the live relay rate of the same run. */
export const DRAIN_RATIO_TARGET = 0.8;
/**
 * A drain not done by then is reported as it stands (`drained: false`, the rate over what was sent). It bounds
 * the run: at 65,000 messages waiting, the code before issue 25 drained about 70 msg/s.
 */
const DRAIN_TIMEOUT_MS = Number(process.env.BENCH_DRAIN_TIMEOUT ?? 60) * 1000;
/** The relayed tables: autovacuum is turned off on them for the backlog scenarios. */
const TABLES = ["inbound_messages", "outbound_messages"];

const counts = (fakes: Fakes) => fakes.ask<"counts">({ type: "counts" });
type Counts = Extract<FakesReply, { type: "counts" }>;

/** Waits until the Telegram fake has counted `sends` replies since the last reset. */
const untilSent = (fakes: Fakes, sends: number, timeoutMs: number) =>
  waitFor(async () => (await counts(fakes)).sends >= sends, timeoutMs);

const accepted = (result: LoadResult) => result.total - result.non2xx;

const telegramIn = (chats: number) => () => buildWebhook("telegram", chats);

/**
 * One burst relayed and drained, unmeasured: the next burst then runs JIT-compiled code. After a 1,000-message
 * warm-up the next burst still ran 15-25% slower than the ones after it, while V8 compiled the hot paths (a
 * third of the service's CPU samples were on its helper threads, mostly V8's compiler).
 */
async function warmUp(fakes: Fakes, bridge: Service, chats: number): Promise<void> {
  await fakes.ask({ type: "reset" });
  const warm = await load({ url: bridge.url, build: telegramIn(chats), amount: E2E_MESSAGES });
  await untilSent(fakes, accepted(warm), 30_000);
}

/**
 * Webhook to reply while ingesting, Quickchat and Telegram answering at once, default caps: after a warm-up,
 * `messages` Telegram webhooks over `chats` chats as fast as they are acknowledged. Messages/s = replies
 * sent / (last send − first webhook).
 */
export async function relayWhileIngesting(fakes: Fakes, configPath: string, chats: number, messages: number) {
  await fakes.ask({ type: "latency", ms: 0 });
  return withBridge(configPath, {}, async (bridge) => {
    await warmUp(fakes, bridge, chats);
    await fakes.ask({ type: "reset" });
    const started = now();
    const ingest = await load({ url: bridge.url, build: telegramIn(chats), amount: messages });
    const ingestSeconds = (now() - started) / 1000;
    const expected = accepted(ingest);
    const drained = await untilSent(fakes, expected, 90_000);
    const end = await counts(fakes);
    const seconds = (end.lastSendAt - started) / 1000;
    return {
      channel: "telegram",
      chats,
      messages: expected,
      delivered: end.sends,
      drained,
      ingestRps: round(expected / ingestSeconds),
      seconds: round(seconds, 2),
      msgsPerSecond: round(end.sends / seconds),
    };
  });
}

const liveRelay = (fakes: Fakes, configPath: string) =>
  relayWhileIngesting(fakes, configPath, CHATS, LIVE_MESSAGES);

/**
 * Quickchat stops answering (requests held open, no response) during OUTAGE_SECONDS of saturated webhooks in
 * CHATS chats, then answers again: the held requests at once, later ones instantly. Drain rate = replies sent
 * after it came back / (last send − the moment it came back).
 */
export async function outageBurst(fakes: Fakes, configPath: string) {
  await fakes.ask({ type: "latency", ms: 0 });
  return withBridge(configPath, {}, async (bridge) => {
    await warmUp(fakes, bridge, CHATS);
    await fakes.ask({ type: "reset" });
    await fakes.ask({ type: "hold" });
    let burst: LoadResult;
    let before: Counts;
    let back: number;
    try {
      burst = await load({ url: bridge.url, build: telegramIn(CHATS), duration: OUTAGE_SECONDS });
      before = await counts(fakes);
    } finally {
      // Also on a failure: a Quickchat left holding would stall every later scenario.
      back = (await fakes.ask<"answered">({ type: "answer" })).at;
    }
    const waiting = accepted(burst) - before.sends;
    log(`outage: ${waiting} messages waiting when Quickchat answers again`);
    const drained = await untilSent(fakes, accepted(burst), DRAIN_TIMEOUT_MS);
    const end = await counts(fakes);
    const seconds = (end.lastSendAt - back) / 1000;
    return {
      chats: CHATS,
      outageSeconds: OUTAGE_SECONDS,
      ingestRps: burst.rps,
      ingestNon2xx: burst.non2xx,
      waiting,
      answered: end.sends - before.sends,
      drained,
      seconds: round(seconds, 2),
      msgsPerSecond: round((end.sends - before.sends) / seconds),
    };
  });
}

/** Whether PostgreSQL has ever analyzed one of the relayed tables (manually or by autovacuum). */
async function analyzed(sql: postgres.Sql): Promise<boolean> {
  const [row] = await sql<{ analyzed: boolean }[]>`
    select coalesce(bool_or(last_analyze is not null or last_autoanalyze is not null), false) as analyzed
    from pg_stat_user_tables where relname in ${sql(TABLES)}`;
  return row?.analyzed ?? false;
}

/**
 * A backlog of `messages` in CHATS chats, on tables PostgreSQL has never analyzed (as right after an outage
 * or a burst, before autovacuum came by):
 * - filled through the webhook path of a service whose one worker is held by a Quickchat that does not answer;
 *   autovacuum is turned off on the relayed tables as soon as that service has created them;
 * - that service stops (SIGTERM hands its held message back);
 * - a fresh service at the default settings drains the backlog from the same database, Quickchat answering at
 *   once. Drain rate = messages / (last send − its first Quickchat request); the time from its spawn to that
 *   request is reported apart, since it is mostly the process starting.
 */
export async function backlogDrain(fakes: Fakes, configPath: string, messages: number) {
  await fakes.ask({ type: "latency", ms: 0 });
  const db = await freshDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    let fill: LoadResult;
    await fakes.ask({ type: "hold" });
    try {
      // No grace at the stop: the one message in flight waits on Quickchat, and is handed back at once.
      const filler = await startService(configPath, db.url, {
        WORKER_CONCURRENCY: "1",
        SHUTDOWN_TIMEOUT_SECONDS: "0",
      });
      try {
        for (const table of TABLES) await sql`alter table ${sql(table)} set (autovacuum_enabled = false)`;
        fill = await load({ url: filler.url, build: telegramIn(CHATS), amount: messages });
      } finally {
        await filler.stop();
      }
      // Killed, it would have left its message leased, and the drain would wait out the lease.
      if (filler.child.exitCode !== 0)
        throw new Error(`the filling service did not stop cleanly (${filler.child.signalCode})`);
    } finally {
      await fakes.ask({ type: "answer" });
    }
    const stored = accepted(fill);
    const analyzedAtStart = await analyzed(sql);
    await fakes.ask({ type: "reset" });
    const spawned = now();
    const drainer = await startService(configPath, db.url);
    try {
      const drained = await untilSent(fakes, stored, DRAIN_TIMEOUT_MS);
      const end = await counts(fakes);
      const analyzedAtEnd = await analyzed(sql);
      const seconds = (end.lastSendAt - end.firstQuickchatAt) / 1000;
      return {
        chats: CHATS,
        backlog: messages,
        messages: stored,
        fillRps: fill.rps,
        fillNon2xx: fill.non2xx,
        neverAnalyzed: !analyzedAtStart && !analyzedAtEnd,
        startSeconds: round((end.firstQuickchatAt - spawned) / 1000, 2),
        delivered: end.sends,
        drained,
        seconds: round(seconds, 2),
        msgsPerSecond: round(end.sends / seconds),
      };
    } finally {
      await drainer.stop();
    }
  } finally {
    await sql.end();
    await db.drop();
  }
}

type Live = Awaited<ReturnType<typeof liveRelay>>;
type Outage = Awaited<ReturnType<typeof outageBurst>>;
type Drain = Awaited<ReturnType<typeof backlogDrain>>;

/** What the relay scenarios of a run measured, kept as they run. */
export interface RelayMeasured {
  live?: Live;
  outage?: Outage;
  drains: Drain[];
}

/**
 * The relay scenarios by their BENCH_ONLY names, in the order a full run takes them: the live relay right
 * before the drains, so the rate each is compared with is measured minutes, not a run, away (the VM drifts).
 */
export function relayScenarios(fakes: Fakes, configPath: string) {
  const measured: RelayMeasured = { drains: [] };
  const scenarios: Record<string, () => Promise<unknown>> = {
    live: async () => (measured.live = await liveRelay(fakes, configPath)),
    outage: async () => (measured.outage = await outageBurst(fakes, configPath)),
  };
  for (const messages of BACKLOGS)
    scenarios[`drain-${messages}`] = async () => {
      const drain = await backlogDrain(fakes, configPath, messages);
      measured.drains.push(drain);
      return drain;
    };
  return { measured, scenarios };
}

/** Each drain with its rate as a share of the live relay rate of the same run; undefined without one. */
export function relayResults({ live, outage, drains }: RelayMeasured) {
  if (!live) return undefined;
  const ratio = (rate: number) => round(rate / live.msgsPerSecond, 3);
  return {
    live,
    ...(outage && { outage: { ...outage, ratio: ratio(outage.msgsPerSecond) } }),
    drains: drains.map((drain) => ({ ...drain, ratio: ratio(drain.msgsPerSecond) })),
  };
}

export function relayRows({ live, outage, drains }: NonNullable<ReturnType<typeof relayResults>>): Row[] {
  const target = `>= ${DRAIN_RATIO_TARGET}x live`;
  const cut = `, NOT drained: stopped at ${DRAIN_TIMEOUT_MS / 1000} s`;
  const notDrained = (r: { drained: boolean }) => (r.drained ? "" : cut);
  const rows: Row[] = [
    [
      `live relay (${live.chats} chats)`,
      `${live.msgsPerSecond} msg/s, ${live.delivered}/${live.messages} in ${live.seconds} s`,
      "",
      "",
    ],
  ];
  if (outage)
    rows.push([
      `outage drain (${outage.waiting} waiting)`,
      `${outage.msgsPerSecond} msg/s (${outage.ratio}x), ${outage.answered}/${outage.waiting} in ${outage.seconds} s${notDrained(outage)}`,
      target,
      mark(outage.ratio >= DRAIN_RATIO_TARGET),
    ]);
  for (const drain of drains) {
    const targeted = drain.backlog === TARGETED_BACKLOG;
    const met = targeted ? mark(drain.ratio >= DRAIN_RATIO_TARGET) : "";
    rows.push([
      `backlog drain ${drain.backlog}, never analyzed`,
      `${drain.msgsPerSecond} msg/s (${drain.ratio}x), ${drain.delivered}/${drain.messages} in ${drain.seconds} s${notDrained(drain)}`,
      targeted ? target : "",
      drain.neverAnalyzed ? met : "INVALID: tables analyzed",
    ]);
  }
  return rows;
}
