/**
 * Helpers of the outage and crash scenarios: every outbound send with its thread and time, the inbox's
 * unfinished count read straight from PostgreSQL, the admin API's failed-message list and retry, and a
 * load generator that redelivers a webhook until it is accepted, as a channel does.
 */
import { createServer } from "node:net";
import postgres from "postgres";
import { type Fakes, IDS } from "./service.js";
import { type Channel, deliver, type Message, threadKeyOf } from "./traffic.js";

export interface Send {
  channel: Channel;
  thread: number;
  text: string;
  /** When the fake received the send (ms since the epoch). */
  at: number;
}

const MARKER = /fault-(?:telegram|slack|whatsapp)-\d+-\d+/;

/** The message marker a text carries (Quickchat's fake echoes it into the reply), if any. */
export const markerIn = (text: string) => text.match(MARKER)?.[0];

/** Every accepted outbound text message, with the thread it went to, in arrival order per channel. */
export function allSends(fakes: Fakes): Send[] {
  const telegram = fakes.telegram.callsTo("sendMessage").map((c) => ({
    channel: "telegram" as const,
    thread: Number(c.params.chat_id) - 6_000_000,
    text: String(c.params.text),
    at: c.time,
  }));
  // The Slack fake answers every well-formed postMessage from these scenarios; `calls` carries the time.
  const slack = fakes.slack.callsTo("chat.postMessage").map((c) => ({
    channel: "slack" as const,
    thread: Number(String(c.args.channel).replace("D0FAULT", "")),
    text: String(c.args.text),
    at: c.at,
  }));
  const whatsapp = fakes.twilio.sent().map((c) => ({
    channel: "whatsapp" as const,
    thread: Number((c.params.To ?? "").replace("whatsapp:+3161", "")),
    text: c.params.Body ?? "",
    at: c.at,
  }));
  return [...telegram, ...slack, ...whatsapp];
}

/** Sends per thread key (`channel-thread`), in the order the channel received them. */
export function sendsByThread(fakes: Fakes): Map<string, Send[]> {
  const byThread = new Map<string, Send[]>();
  for (const send of allSends(fakes)) {
    const key = threadKeyOf(send);
    byThread.set(key, [...(byThread.get(key) ?? []), send]);
  }
  return byThread;
}

/** Reads the inbox directly: how many messages are still pending or being delivered, and how many exist. */
export class Inbox {
  private readonly sql: postgres.Sql;

  constructor(url: string) {
    this.sql = postgres(url, { max: 1, onnotice: () => {} });
  }

  async counts(): Promise<{ unfinished: number; total: number; failed: number }> {
    const [row] = await this.sql<{ unfinished: number; total: number; failed: number }[]>`
      select count(*) filter (where status in ('pending', 'delivering'))::int as unfinished,
             count(*) filter (where status = 'failed')::int as failed,
             count(*)::int as total
      from inbound_messages`;
    return row!;
  }

  /**
   * The messages whose text is one of `markers`: each one's status, and whether its reply's first part has a
   * delivery record (the fault suite's replies are one part each).
   */
  async progress(markers: string[]): Promise<Map<string, { status: string; recorded: boolean }>> {
    const rows = await this.sql<{ text: string; status: string; recorded: boolean }[]>`
      select i.text, i.status, exists (select 1 from outbound_messages o where o.inbound_id = i.id
        and o.part = 0 and o.status <> 'failed') as recorded
      from inbound_messages i where i.text = any(${markers})`;
    return new Map(rows.map(({ text, status, recorded }) => [text, { status, recorded }]));
  }

  /** Markers of the messages leased right now (by process `processId`, else by any), their leases not run out. */
  async leased(processId?: string): Promise<string[]> {
    const rows = await this.sql<{ text: string }[]>`
      select text from inbound_messages
      where status in ('pending', 'delivering') and lease_until > now()
        and split_part(lease_owner, ':', 1) = coalesce(${processId ?? null}, split_part(lease_owner, ':', 1))`;
    return rows.map((row) => row.text);
  }

  /**
   * The id of the process started last (its heartbeat's row, written before it listens): the one not in
   * `known`, which it joins.
   */
  async newProcess(known: Set<string>): Promise<string> {
    const ids = (await this.sql<{ id: string }[]>`select id from bridge_processes`).map((row) => row.id);
    const added = ids.filter((id) => !known.has(id));
    if (added.length !== 1) throw new Error(`expected one new process, found ${added.length}`);
    known.add(added[0]!);
    return added[0]!;
  }

  close(): Promise<void> {
    return this.sql.end();
  }
}

export interface FailedItem {
  id: number;
  channel: string;
  thread_key: string;
  status: string;
  text: string | null;
  error: string | null;
}

const admin = { authorization: `Bearer ${IDS.adminToken}` };

/** Every failed message, through the admin API's paginated list. */
export async function failedMessages(baseUrl: string): Promise<FailedItem[]> {
  const items: FailedItem[] = [];
  for (let offset = 0; ; offset += 100) {
    const response = await fetch(`${baseUrl}/admin/messages?status=failed&limit=100&offset=${offset}`, {
      headers: admin,
    });
    if (response.status !== 200) throw new Error(`admin list answered ${response.status}`);
    const page = (await response.json()) as { items: FailedItem[]; count: number };
    items.push(...page.items);
    if (page.items.length === 0 || items.length >= page.count) return items;
  }
}

/** `POST /admin/messages/:id/retry`: the status code and the answer's body. */
export async function retryMessage(baseUrl: string, id: number): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${baseUrl}/admin/messages/${id}/retry`, { method: "POST", headers: admin });
  return { status: response.status, body: await response.json() };
}

/** A free loopback port, so each restarted service listens where the channels already send. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Delivers `m` the way a channel does: a refused connection, a reset or a non-2xx answer is redelivered
 * (with a short growing pause) until the bridge answers 200. Returns how many deliveries it took.
 */
export async function deliverUntilAccepted(
  baseUrl: string,
  m: Message,
  deadlineMs = 120_000,
): Promise<number> {
  const deadline = Date.now() + deadlineMs;
  const statuses: number[] = [];
  for (let attempt = 0; ; attempt++) {
    const status = await deliver(baseUrl, m, attempt).catch(() => 0);
    if (status === 200) return attempt + 1;
    statuses.push(status);
    if (Date.now() > deadline)
      throw new Error(
        `webhook for ${JSON.stringify(m)} never accepted (answers, 0 = no connection: ${statuses.slice(-20).join(" ")})`,
      );
    await sleep(Math.min(50 * 2 ** attempt, 400));
  }
}

/** A seeded generator in [0, 1), so a failing schedule can be replayed. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}
