/** Types and constants shared by the bench orchestrator (bench/run.ts) and its child processes. */

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export const now = (): number => performance.timeOrigin + performance.now();

/** Credentials of the benchmark tenant, known to both the service's config file and the fakes. */
export const BENCH_IDS = {
  scenario: "bench-scenario",
  quickchatToken: "bench-quickchat-token",
  telegramToken: "7000001:bench-telegram-token",
  telegramSecret: "bench-telegram-secret",
  slackSigningSecret: "bench-slack-signing-secret",
  slackBotToken: "xoxb-bench-slack-token",
  slackTeam: "T0BENCH",
  twilioSid: "AC0000000000000000000000000000bec4",
  twilioToken: "bench-twilio-auth-token",
  twilioFrom: "whatsapp:+14155238886",
  publicUrl: "http://bench.invalid",
};

export interface MessageTimeline {
  id: number;
  webhookAt: number;
  qcArrive?: number;
  qcDone?: number;
  firstSend?: number;
}

export type FakesRequest =
  | { type: "latency"; ms: number }
  | { type: "reset" }
  /** Quickchat stops answering: requests are held open, unanswered, until `answer`. */
  | { type: "hold" }
  /** Quickchat answers again: the held requests at once, and every later one (as `latency` says). */
  | { type: "answer" }
  | { type: "counts" }
  | { type: "timelines" };

export type FakesReply =
  | { type: "ok" }
  /** `at`: the moment the held requests were let through. */
  | { type: "answered"; at: number }
  | { type: "ready"; urls: { quickchat: string; telegram: string; slack: string; twilio: string } }
  | {
      type: "counts";
      sends: number;
      qcCalls: number;
      qcPending: number;
      /** Arrival of the first Quickchat request since the last reset (0: none yet). */
      firstQuickchatAt: number;
      firstSendAt: number;
      lastSendAt: number;
    }
  | { type: "timelines"; list: MessageTimeline[] };
