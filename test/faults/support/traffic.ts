/**
 * Webhooks the way each channel sends them, one per (channel, thread, seq), identical on every redelivery;
 * and the bookkeeping that reads the fakes back: which message got how many Quickchat calls and replies,
 * in which order per thread.
 */
import { slackEventHeaders, slackPayloads } from "../../fakes/slack.js";
import { inboundText, signTwilioRequest, toFormBody } from "../../fakes/twilio.js";
import { type Fakes, IDS } from "./service.js";

export type Channel = "telegram" | "slack" | "whatsapp";
export const CHANNELS: Channel[] = ["telegram", "slack", "whatsapp"];

export interface Message {
  channel: Channel;
  thread: number;
  seq: number;
}

/** The text a message carries; Quickchat's fake echoes it, so every reply names the message it answers. */
export const markerOf = (m: Message) => `fault-${m.channel}-${m.thread}-${m.seq}`;
const MARKER = /fault-(telegram|slack|whatsapp)-(\d+)-(\d+)/;

export const keyOf = (m: Message) => markerOf(m);
export const threadKeyOf = (m: Pick<Message, "channel" | "thread">) => `${m.channel}-${m.thread}`;

/** `threads` threads per channel, `perThread` messages each, in send order within a thread. */
export function messages(channels: Channel[], threads: number, perThread: number): Message[] {
  const list: Message[] = [];
  for (let seq = 0; seq < perThread; seq++)
    for (const channel of channels)
      for (let thread = 0; thread < threads; thread++) list.push({ channel, thread, seq });
  return list;
}

export interface Webhook {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * The signed webhook for `m`. Built fresh per delivery (Slack signs the send time), but with the same ids,
 * so a redelivery is the same message to the bridge. `attempt` > 0 adds Slack's retry headers.
 */
export function webhookFor(m: Message, attempt = 0): Webhook {
  const text = markerOf(m);
  const path = `/webhooks/default/${m.channel}`;
  if (m.channel === "telegram") {
    const chat = 6_000_000 + m.thread;
    const body = JSON.stringify({
      update_id: m.thread * 100_000 + m.seq + 1,
      message: {
        message_id: m.seq + 1,
        from: { id: chat, is_bot: false, first_name: "Fault", language_code: "en" },
        chat: { id: chat, type: "private", first_name: "Fault" },
        date: 1_760_000_000 + m.seq,
        text,
      },
    });
    return {
      path,
      body,
      headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": IDS.telegramSecret },
    };
  }
  if (m.channel === "slack") {
    const body = JSON.stringify(
      slackPayloads.dm({
        team: IDS.slackTeam,
        channel: `D0FAULT${m.thread}`,
        user: "U0FAULTUSER",
        text,
        ts: `${1_760_000_000 + m.seq}.${String(m.thread).padStart(6, "0")}`,
      }),
    );
    return {
      path,
      body,
      headers: slackEventHeaders(IDS.slackSigningSecret, body, attempt > 0 ? { retryNum: attempt } : {}),
    };
  }
  const params = inboundText(text, {
    accountSid: IDS.twilioSid,
    from: `whatsapp:+3161${String(m.thread).padStart(7, "0")}`,
    to: IDS.twilioFrom,
    messageSid: `SM${String(m.thread).padStart(8, "0")}${String(m.seq).padStart(24, "0")}`,
  });
  return {
    path,
    body: toFormBody(params),
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": signTwilioRequest(IDS.twilioToken, `${IDS.publicUrl}${path}`, params),
    },
  };
}

export async function deliver(baseUrl: string, m: Message, attempt = 0): Promise<number> {
  const hook = webhookFor(m, attempt);
  const response = await fetch(`${baseUrl}${hook.path}`, {
    method: "POST",
    headers: hook.headers,
    body: hook.body,
  });
  await response.arrayBuffer();
  return response.status;
}

/** Runs `tasks` with at most `limit` at once. */
export async function inParallel<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
  return results;
}

/** Fisher–Yates with a seeded generator, so a failing order can be replayed. */
export function shuffled<T>(items: T[], seed: number): T[] {
  const list = [...items];
  let state = seed >>> 0 || 1;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

/** Successful outbound sends per channel, in arrival order, as the text that was sent. */
export function sentTexts(fakes: Fakes): { channel: Channel; text: string }[] {
  return [
    ...fakes.telegram
      .callsTo("sendMessage")
      .map((c) => ({ channel: "telegram" as const, text: String(c.params.text) })),
    ...fakes.slack.posted.map((p) => ({ channel: "slack" as const, text: p.text })),
    ...fakes.twilio.sent().map((c) => ({ channel: "whatsapp" as const, text: c.params.Body ?? "" })),
  ];
}

export interface Tally {
  /** marker → number of Quickchat calls carrying it */
  calls: Map<string, number>;
  /** marker → number of replies sent carrying it */
  replies: Map<string, number>;
  /** thread key → seqs in the order their replies were sent */
  replyOrder: Map<string, number[]>;
  /** thread key → seqs in the order Quickchat was asked */
  callOrder: Map<string, number[]>;
}

function record(order: Map<string, number[]>, counts: Map<string, number>, text: string): void {
  const match = text.match(MARKER);
  if (!match) return;
  const [marker, channel, thread, seq] = match;
  counts.set(marker!, (counts.get(marker!) ?? 0) + 1);
  const key = `${channel}-${thread}`;
  const list = order.get(key) ?? [];
  list.push(Number(seq));
  order.set(key, list);
}

export function tally(fakes: Fakes): Tally {
  const result: Tally = { calls: new Map(), replies: new Map(), replyOrder: new Map(), callOrder: new Map() };
  for (const call of fakes.quickchat.calls) record(result.callOrder, result.calls, call.body.text ?? "");
  for (const sent of sentTexts(fakes)) record(result.replyOrder, result.replies, sent.text);
  return result;
}

/** How many of `sent` have at least one reply. */
export const answeredCount = (t: Tally, sent: Message[]) =>
  sent.filter((m) => t.replies.has(markerOf(m))).length;

/** Threads whose order (first occurrence of each seq) is not ascending. */
export function outOfOrderThreads(order: Map<string, number[]>): string[] {
  const bad: string[] = [];
  for (const [key, seqs] of order) {
    const firsts = seqs.filter((s, i) => seqs.indexOf(s) === i);
    if (firsts.some((s, i) => i > 0 && s < firsts[i - 1]!)) bad.push(key);
  }
  return bad;
}
