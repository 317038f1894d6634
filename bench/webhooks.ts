/** Signed webhooks, unique per request, and the load generator (autocannon) that sends them. */
import autocannon from "autocannon";
import { slackEventHeaders, slackPayloads } from "../test/fakes/slack.js";
import { inboundText, signTwilioRequest, toFormBody, twilioSid } from "../test/fakes/twilio.js";
import { round, TENANT } from "./harness.js";
import { BENCH_IDS, now } from "./shared.js";

/** Seconds per measured load phase. */
export const DURATION = Number(process.env.BENCH_DURATION ?? 8);
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
export type Channel = "telegram" | "slack" | "whatsapp";
export const CHANNELS: Channel[] = ["telegram", "slack", "whatsapp"];

let sequence = 0;

export interface Built {
  /** The webhook's sequence number: its update id, and the key of its marker. */
  seq: number;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A signed webhook for `channel` whose text carries the marker `m<seq>w<send time>` the fakes look for. */
export function buildWebhook(channel: Channel, threads: number): Built {
  const seq = ++sequence;
  const text = `m${seq}w${now().toFixed(3)}`;
  const thread = seq % threads;
  const path = `/webhooks/${TENANT}/${channel}`;
  if (channel === "telegram") {
    const chat = 1_000_000 + thread;
    const body = JSON.stringify({
      update_id: seq,
      message: {
        message_id: seq,
        from: { id: chat, is_bot: false, first_name: "Bench", language_code: "en" },
        chat: { id: chat, type: "private", first_name: "Bench" },
        date: Math.floor(Date.now() / 1000),
        text,
      },
    });
    return {
      seq,
      path,
      body,
      headers: {
        "content-type": "application/json",
        "x-telegram-bot-api-secret-token": BENCH_IDS.telegramSecret,
      },
    };
  }
  if (channel === "slack") {
    const body = JSON.stringify(
      slackPayloads.dm({
        team: BENCH_IDS.slackTeam,
        channel: `D0BENCH${thread}`,
        user: "U0BENCHUSER",
        text,
        ts: `${1_700_000_000 + seq}.000100`,
      }),
    );
    return { seq, path, body, headers: slackEventHeaders(BENCH_IDS.slackSigningSecret, body) };
  }
  const params = inboundText(text, {
    accountSid: BENCH_IDS.twilioSid,
    to: BENCH_IDS.twilioFrom,
    from: `whatsapp:+3160${String(thread).padStart(7, "0")}`,
    messageSid: twilioSid("SM"),
  });
  return {
    seq,
    path,
    body: toFormBody(params),
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": signTwilioRequest(BENCH_IDS.twilioToken, BENCH_IDS.publicUrl + path, params),
    },
  };
}

export interface LoadOptions {
  url: string;
  build: () => Built;
  duration?: number;
  amount?: number;
  connections?: number;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  total: number;
  non2xx: number;
  errors: number;
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections ?? CONNECTIONS,
    ...(options.amount === undefined
      ? { duration: options.duration ?? DURATION }
      : { amount: options.amount }),
    requests: [
      {
        method: "POST",
        setupRequest: (request) => {
          const built = options.build();
          return { ...request, path: built.path, headers: built.headers, body: built.body };
        },
      },
    ],
  });
  return {
    rps: round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}
