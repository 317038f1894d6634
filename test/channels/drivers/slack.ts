/**
 * Slack through the real WebClient: signed Events API deliveries of DMs, replies read from the Web API fake
 * (test/fakes/slack.ts).
 */
import { type RunningFake, startFake } from "../../fakes/server.js";
import {
  createSlackFake,
  type FakeSlack,
  type FakeSlackBot,
  type SlackFault,
  slackEventHeaders,
  slackPayloads,
} from "../../fakes/slack.js";
import type { ChannelDriver, DriverThread, SendFailure, UserMessage, Webhook } from "../driver.js";

const BOT: FakeSlackBot = { token: "xoxb-contract", teamId: "T0CONTRACT", userId: "U0BOT", botId: "B0BOT" };
const SIGNING_SECRET = "contract-slack-signing-secret";
const TEAM = BOT.teamId;

/** A user's DM with the bot. */
interface SlackThread extends DriverThread {
  user: string;
  channel: string;
}

const signed = (payload: object, secret = SIGNING_SECRET, retryNum?: number): Webhook => {
  const body = JSON.stringify(payload);
  return { body, headers: slackEventHeaders(secret, body, retryNum === undefined ? {} : { retryNum }) };
};

const slackFault = (failure: SendFailure): SlackFault =>
  failure.kind === "rate_limit"
    ? { status: 429, retryAfter: String(failure.retryAfterSeconds) }
    : { status: 503 };

export function slackDriver(): ChannelDriver<SlackThread> {
  let fake: FakeSlack;
  let server: RunningFake;
  let users = 0;
  let messages = 0;
  const nextTs = () => `1710000000.${String(++messages).padStart(6, "0")}`;
  const dm = (thread: SlackThread, text: string) =>
    ({ team: TEAM, channel: thread.channel, user: thread.user, text, ts: nextTs() }) as const;

  return {
    name: "slack",
    route: "slack",
    // The bridge posts mrkdwn `text` in parts of at most 3,000 characters, the limit of a section block's
    // text (https://api.slack.com/reference/block-kit/blocks#section); chat.postMessage truncates `text`
    // past 40,000 (https://api.slack.com/methods/chat.postMessage), which the fake refuses as msg_too_long.
    partLimit: 3000,
    ack: { status: 200, body: "" },
    forgedStatus: 401,

    async start() {
      fake = createSlackFake({ bots: [BOT] });
      server = await startFake(fake.app);
    },
    stop: () => server?.close(),
    tenantBlock: () => ({
      slack: { signing_secret: SIGNING_SECRET, bot_token: BOT.token, api_url: `${server.url}/api/` },
    }),

    newThread() {
      const n = ++users;
      const user = `U0CONTRACT${n}`;
      fake.addUser({ id: user, name: `contract${n}`, realName: `Contract User ${n}` });
      const channel = `D0CONTRACT${n}`;
      return { key: `${TEAM}:${channel}`, user, channel };
    },
    text(thread, text): UserMessage {
      const fields = dm(thread, text);
      return {
        webhook: signed(slackPayloads.dm(fields)),
        dedupeKey: `${TEAM}:${thread.channel}:${fields.ts}`,
      };
    },
    unsupported(thread): UserMessage {
      const fields = dm(thread, "");
      return {
        webhook: signed(slackPayloads.fileShare(fields)),
        dedupeKey: `${TEAM}:${thread.channel}:${fields.ts}`,
      };
    },
    ignored(thread) {
      const original = dm(thread, "see you at 10");
      return signed(
        slackPayloads.messageChanged({
          ...original,
          text: "see you at 11",
          oldText: original.text,
          editTs: nextTs(),
        }),
      );
    },
    // Slack retries the same event, signed anew, with X-Slack-Retry-Num.
    redelivery: (message) => signed(JSON.parse(message.webhook.body), SIGNING_SECRET, 1),
    forged: (original) => signed(JSON.parse(original.body), "not-the-signing-secret"),

    delivered: (thread) => fake.posted.filter((m) => m.channel === thread.channel).map((m) => m.text),
    attempts: (thread) =>
      fake
        .callsTo("chat.postMessage")
        .filter((call) => call.args.channel === thread.channel)
        .map((call) => ({ at: call.at, accepted: call.ok === true })),
    failNextSend: (thread, failure, times = 1) =>
      fake.failChannel(thread.channel, "chat.postMessage", slackFault(failure), times),
    refuseConnections: () => server.refuseConnections(),
    acceptConnections: () => server.acceptConnections(),
    watched: () => fake,
  };
}
