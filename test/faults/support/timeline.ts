/**
 * When things happened, read back from the fakes: every outbound send attempt (failed ones included) and
 * every Quickchat call, each tied to the message marker it carries; plus the per-process metrics and the
 * inbox rows, for the suites that check timing, retries and final states.
 */
import postgres from "postgres";
import type { Fakes } from "./service.js";
import { type Channel, type Message, markerOf } from "./traffic.js";

const MARKER = /fault-(telegram|slack|whatsapp)-(\d+)-(\d+)/;

export interface Event {
  channel: Channel;
  thread: number;
  seq: number;
  marker: string;
  at: number;
  /** For sends: whether the channel accepted it. */
  ok: boolean;
  /** For sends: the HTTP status the fake answered. */
  status: number;
}

function event(text: string, at: number, ok: boolean, status: number): Event | undefined {
  const match = text.match(MARKER);
  if (!match) return undefined;
  const [marker, channel, thread, seq] = match;
  return {
    channel: channel as Channel,
    thread: Number(thread),
    seq: Number(seq),
    marker: marker!,
    at,
    ok,
    status,
  };
}

const defined = <T>(list: (T | undefined)[]) => list.filter((x): x is T => x !== undefined);

/** Every send attempt of a reply (typing signals excluded), in arrival order per channel. */
export function sendAttempts(fakes: Fakes): Event[] {
  return defined([
    ...fakes.telegram
      .callsTo("sendMessage", { includeFailed: true })
      .map((c) => event(String(c.params.text ?? ""), c.time, c.status === 200, c.status)),
    ...fakes.slack
      .callsTo("chat.postMessage")
      .map((c) => event(String(c.args.text ?? ""), c.at, c.ok === true, c.status ?? 0)),
    ...fakes.twilio.calls.map((c) => event(c.params.Body ?? "", c.at, c.sid !== undefined, c.status)),
  ]).sort((a, b) => a.at - b.at);
}

/** Every Quickchat call, in arrival order. */
export function quickchatCalls(fakes: Fakes): (Event & { convId?: string })[] {
  return defined(
    fakes.quickchat.calls.map((c) => {
      const e = event(c.body.text ?? "", c.at, true, 200);
      return e && { ...e, ...(c.body.conv_id ? { convId: c.body.conv_id } : {}) };
    }),
  );
}

export const byMarker = <E extends Event>(events: E[], m: Message) =>
  events.filter((e) => e.marker === markerOf(m));

/**
 * Threads where a message's Quickchat call started before the previous message's reply was accepted:
 * "one at a time per thread" broken. Returns one line per violation.
 */
export function overlappingThreads(fakes: Fakes, sent: Message[]): string[] {
  const calls = quickchatCalls(fakes);
  const replies = sendAttempts(fakes).filter((e) => e.ok);
  const first = (events: Event[], m: Message) => byMarker(events, m)[0]?.at;
  const bad: string[] = [];
  for (const m of sent) {
    if (m.seq === 0) continue;
    const previous = { ...m, seq: m.seq - 1 };
    const callAt = first(calls, m);
    const previousReplyAt = first(replies, previous);
    if (callAt !== undefined && (previousReplyAt === undefined || callAt < previousReplyAt))
      bad.push(`${markerOf(m)} asked at ${callAt}, previous reply at ${previousReplyAt}`);
  }
  return bad;
}

/** A counter's value from a Prometheus text scrape, summed over series matching every given label. */
export async function metric(baseUrl: string, name: string, labels: Record<string, string> = {}) {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

export interface InboxState {
  marker: string;
  status: string;
  attempts: number;
  error: string | null;
  parts: { part: number; status: string; error_code: string | null }[];
}

/** The inbox read straight from the database: each message's row and outbound parts, by marker. */
export function openInbox(databaseUrl: string) {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  return {
    async states(): Promise<Map<string, InboxState>> {
      const rows = await sql<
        { id: number; text: string | null; status: string; attempts: number; error: string | null }[]
      >`select id, text, status, attempts, error from inbound_messages`;
      const parts = await sql<
        { inbound_id: number; part: number; status: string; error_code: string | null }[]
      >`select inbound_id, part, status, error_code from outbound_messages order by part`;
      const states = new Map<string, InboxState>();
      for (const row of rows) {
        const marker = row.text?.match(MARKER)?.[0];
        if (!marker) continue;
        states.set(marker, {
          marker,
          status: row.status,
          attempts: row.attempts,
          error: row.error,
          parts: parts
            .filter((p) => Number(p.inbound_id) === Number(row.id))
            .map(({ part, status, error_code }) => ({ part, status, error_code })),
        });
      }
      return states;
    },
    close: () => sql.end(),
  };
}
