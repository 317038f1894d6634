/**
 * The channel contract: what every channel adapter must do, checked end to end over real HTTP. The real
 * service (startTestBridge) takes the driver's webhooks, asks the Quickchat fake, and sends through the real
 * adapter to the platform's loopback fake; the database is read to count what was stored.
 *
 * One service and one set of fakes per driver; each case uses threads of its own, so cases never see each
 * other's messages. After every case (test/support/unexpected.ts): no user got the `unavailable` text (nor
 * `unsupported`, unless the case sent media), and neither the platform's fake nor Quickchat's refused a request.
 */
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { inboundMessages, outboundMessages } from "../../src/db/schema.js";
import { QuickchatFake } from "../fakes/quickchat.js";
import { createPostgresDatabase, POSTGRES_URL, type TestDatabase } from "../support/db.js";
import { startTestBridge, type TestBridge, waitFor } from "../support/harness.js";
import { guardUnexpected } from "../support/unexpected.js";
import type { ChannelDriver, DriverThread, Webhook } from "./driver.js";

const TENANT = "contract";
const SCENARIO = "contract-scenario";
const QUICKCHAT_TOKEN = "contract-quickchat-token";
/** Distinct from the defaults, so a text that reached the user is known to be the tenant's. */
const TEXTS = {
  unavailable: "The assistant is away; try again later.",
  unsupported: "Please write to me in text.",
  reset: "Starting over.",
  greeting: "Hi there!",
};
/** Twilio signs the URL it posted to: the bridge is reached at this public address. */
const PUBLIC_URL = "https://bridge.example.com";

/**
 * The retry window of a message: Quickchat's retries, and once the reply is stored a fresh window for its
 * delivery (src/relay/message.ts), both QUICKCHAT_MAX_RETRY_SECONDS long (default 600 s). Within it a failed
 * send is retried after RETRY_BASE_MS doubling up to RETRY_MAX_DELAY_SECONDS (defaults 1000 ms and 60 s; the
 * harness sets 100 ms and 2 s), or the channel's Retry-After when longer; a retry that would start past the
 * window is not made, and the message fails (src/relay/retry.ts). Three seconds here: longer than the 1 s rate
 * limit the cases ask for, short enough for a case to run out of it.
 */
const WINDOW_SECONDS = 3;

const LONG_REQUEST = "please answer at length";
/** About 10,000 characters of plain words: several parts on every channel. */
const LONG_PARAGRAPHS = Array.from(
  { length: 80 },
  (_, i) => `Paragraph ${i + 1} says the quick brown fox jumps over the lazy dog near the river bank today.`,
);
const LONG_REPLY = LONG_PARAGRAPHS.map((p) => `<p>${p}</p>`).join("");

/** How long a case waits for the service: generous, since the drivers' services share the machine. */
const PATIENCE_MS = 15_000;

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
/** Quickchat's answer to `text`: plain words, so every channel shows it as is. */
const answerTo = (text: string) => `Answer to: ${text}`;
/** Cuts drop the whitespace there: compare texts with whitespace runs as single spaces. */
const words = (text: string) => text.replace(/\s+/g, " ").trim();

/**
 * The contract's cases for one driver. Drivers run side by side (each suite is concurrent with the others),
 * their cases one after another (`sequential`): a case that takes the channel's API down must not take
 * another case's sends with it.
 */
export function runChannelContract<T extends DriverThread>(driver: ChannelDriver<T>): void {
  describe.concurrent(`${driver.name} channel contract`, () => {
    const it = test.sequential;
    let quickchat: QuickchatFake;
    let database: TestDatabase | undefined;
    let bridge: TestBridge;
    const path = `/webhooks/${TENANT}/${driver.route}`;
    const guard = guardUnexpected([TEXTS]);

    beforeAll(async () => {
      quickchat = await new QuickchatFake({
        scenarios: { [SCENARIO]: QUICKCHAT_TOKEN },
        reply: (text) => (text === LONG_REQUEST ? LONG_REPLY : escapeHtml(answerTo(text))),
      }).start();
      await driver.start({ tenantId: TENANT, webhookUrl: `${PUBLIC_URL}${path}` });
      guard.watch(quickchat, driver.watched());
      database = POSTGRES_URL ? await createPostgresDatabase() : undefined;
      const adapters = driver.adapters?.();
      bridge = await startTestBridge({
        tenants: [
          {
            id: TENANT,
            quickchat: { scenario_id: SCENARIO, token: QUICKCHAT_TOKEN, base_url: quickchat.url },
            texts: TEXTS,
            ...driver.tenantBlock(),
          },
        ],
        publicUrl: PUBLIC_URL,
        ...(adapters && { adapters }),
        ...(database?.url && { databaseUrl: database.url }),
        env: { QUICKCHAT_MAX_RETRY_SECONDS: String(WINDOW_SECONDS) },
      });
    });

    afterAll(async () => {
      await bridge?.stop();
      await database?.drop();
      await driver.stop();
      await quickchat?.close();
    });

    const post = (webhook: Webhook) =>
      fetch(`${bridge.url}${path}`, { method: "POST", headers: webhook.headers, body: webhook.body });

    async function expectAck(response: Response) {
      expect(response.status).toBe(driver.ack.status);
      if (driver.ack.contentType)
        expect(response.headers.get("content-type")).toMatch(driver.ack.contentType);
      expect(await response.text()).toBe(driver.ack.body);
    }

    const db = () => bridge.database.db;
    const allRows = () => db().select().from(inboundMessages);
    const rowsOf = (thread: T) =>
      db()
        .select()
        .from(inboundMessages)
        .where(
          and(
            eq(inboundMessages.tenantId, TENANT),
            eq(inboundMessages.channel, driver.route),
            eq(inboundMessages.threadKey, thread.key),
          ),
        )
        .orderBy(inboundMessages.id);
    const partsOf = (inboundId: number) =>
      db()
        .select()
        .from(outboundMessages)
        .where(eq(outboundMessages.inboundId, inboundId))
        .orderBy(outboundMessages.part);

    /** The thread's only message, once it ended (delivered or failed). */
    async function finished(thread: T) {
      const rows = await waitFor(
        async () => {
          const rows = await rowsOf(thread);
          return rows.length > 0 && rows.every((r) => r.status === "delivered" || r.status === "failed")
            ? rows
            : undefined;
        },
        PATIENCE_MS,
        `the message in ${thread.key} to end`,
      );
      expect(rows).toHaveLength(1);
      return rows![0]!;
    }

    /** The bridge's log lines about one message, parsed. */
    const logsOf = (messageId: number) =>
      bridge.logs
        .map((line): Record<string, unknown> & { line: string } => ({ ...JSON.parse(line), line }))
        .filter((entry) => entry.msg_id === messageId);

    const askedQuickchat = (thread: T) =>
      quickchat.calls.filter((call) => call.body.client_metadata?.channel_thread_id === thread.key);

    it("answers a text with Quickchat's reply, having asked Quickchat once with that text", async () => {
      const thread = driver.newThread();
      await expectAck(await post(driver.text(thread, "What are your opening hours?").webhook));
      const row = await finished(thread);

      expect(row.status).toBe("delivered");
      expect(driver.delivered(thread)).toEqual([answerTo("What are your opening hours?")]);
      const asked = askedQuickchat(thread);
      expect(asked).toHaveLength(1);
      expect(asked[0]?.body).toMatchObject({
        scenario_id: SCENARIO,
        text: "What are your opening hours?",
        client_metadata: { channel: driver.route, channel_thread_id: thread.key },
      });
      expect(await partsOf(row.id)).toEqual([expect.objectContaining({ part: 0, status: "sent" })]);
    });

    it(`refuses a webhook with a bad signature with ${driver.forgedStatus} and stores nothing`, async () => {
      const thread = driver.newThread();
      const stored = (await allRows()).length;
      const response = await post(driver.forged(driver.text(thread, "let me in").webhook));

      expect(response.status).toBe(driver.forgedStatus);
      expect(await response.json()).toMatchObject({ errors: { root: [{ code: "PERMISSION_DENIED" }] } });
      expect(await allRows()).toHaveLength(stored);
    });

    it("stores a redelivered message once, under the same dedupe key, and answers it once", async () => {
      const thread = driver.newThread();
      const message = driver.text(thread, "only once please");
      await expectAck(await post(message.webhook));
      await expectAck(await post(driver.redelivery(message)));
      await finished(thread);
      // A redelivery after the answer went out: still the same message.
      await expectAck(await post(driver.redelivery(message)));

      const rows = await rowsOf(thread);
      expect(rows.map((r) => [r.dedupeKey, r.status])).toEqual([[message.dedupeKey, "delivered"]]);
      expect(driver.delivered(thread)).toEqual([answerTo("only once please")]);
      expect(askedQuickchat(thread)).toHaveLength(1);
    });

    it("acknowledges an update it ignores and stores nothing", async () => {
      const thread = driver.newThread();
      const stored = (await allRows()).length;
      await expectAck(await post(driver.ignored(thread)));

      // Storing happens before the acknowledgement: nothing can be stored after it.
      expect(await allRows()).toHaveLength(stored);
      expect(await rowsOf(thread)).toEqual([]);
    });

    it("stores text PostgreSQL cannot hold: NUL dropped, a lone surrogate as U+FFFD, and answers it", async () => {
      const thread = driver.newThread();
      await expectAck(await post(driver.text(thread, "a\u0000b\ud800c").webhook));
      const row = await finished(thread);

      const clean = "ab\ufffdc";
      expect(row.text).toBe(clean);
      expect(askedQuickchat(thread).map((call) => call.body.text)).toEqual([clean]);
      expect(driver.delivered(thread)).toEqual([answerTo(clean)]);
    });

    it("answers unsupported media with the tenant's unsupported text, without asking Quickchat", async () => {
      guard.expectUserText("unsupported");
      const thread = driver.newThread();
      const asked = quickchat.calls.length;
      const message = driver.unsupported(thread);
      await expectAck(await post(message.webhook));
      const row = await finished(thread);

      expect([row.kind, row.dedupeKey, row.status]).toEqual(["unsupported", message.dedupeKey, "delivered"]);
      expect(driver.delivered(thread)).toEqual([TEXTS.unsupported]);
      expect(quickchat.calls).toHaveLength(asked);
    });

    it(`delivers a long reply as ordered parts of at most ${driver.partLimit} characters`, async () => {
      const thread = driver.newThread();
      await expectAck(await post(driver.text(thread, LONG_REQUEST).webhook));
      const row = await finished(thread);

      const whole = words(LONG_PARAGRAPHS.join(" "));
      const parts = driver.delivered(thread);
      expect(parts.length).toBeGreaterThanOrEqual(Math.ceil(whole.length / driver.partLimit));
      for (const part of parts) expect(part.length).toBeLessThanOrEqual(driver.partLimit);
      expect(words(parts.join(" "))).toBe(whole);
      expect(row.status).toBe("delivered");
      expect((await partsOf(row.id)).map((p) => [p.part, p.status])).toEqual(
        parts.map((_, i) => [i, "sent"]),
      );
      // An operator sees the reply go out: who, where, how many parts, how long; never its words.
      const [delivered, ...more] = (await waitFor(
        () => {
          const lines = logsOf(row.id).filter((entry) => entry.msg === "reply delivered");
          return lines.length > 0 ? lines : undefined;
        },
        PATIENCE_MS,
        "the delivered line",
      ))!;
      expect(more).toEqual([]);
      expect(delivered).toMatchObject({
        level: "info",
        tenant: TENANT,
        channel: driver.route,
        parts: parts.length,
      });
      expect(delivered?.ms).toEqual(expect.any(Number));
      expect(delivered?.line).not.toContain("Paragraph");
    });

    it("waits out the channel's rate limit for its retry delay, then delivers", async () => {
      const thread = driver.newThread();
      driver.failNextSend(thread, { kind: "rate_limit", retryAfterSeconds: 1 });
      await expectAck(await post(driver.text(thread, "slow down").webhook));
      const row = await finished(thread);

      expect(row.status).toBe("delivered");
      const [limited, sent, ...more] = driver.attempts(thread);
      expect([limited?.accepted, sent?.accepted, more]).toEqual([false, true, []]);
      // Not sent before the channel's delay has passed.
      expect(sent!.at - limited!.at).toBeGreaterThanOrEqual(1000);
      expect(driver.delivered(thread)).toEqual([answerTo("slow down")]);
      expect(askedQuickchat(thread)).toHaveLength(1);
    });

    it("retries a send the channel answered with a 5xx, and delivers", async () => {
      const thread = driver.newThread();
      driver.failNextSend(thread, { kind: "server_error" });
      await expectAck(await post(driver.text(thread, "try again").webhook));
      const row = await finished(thread);

      expect([row.status, row.attempts]).toEqual(["delivered", 1]);
      expect(driver.attempts(thread).map((a) => a.accepted)).toEqual([false, true]);
      expect(driver.delivered(thread)).toEqual([answerTo("try again")]);
      expect(askedQuickchat(thread)).toHaveLength(1);
    });

    it("retries a send whose connection was refused, and delivers", async () => {
      const thread = driver.newThread();
      // Quickchat holds its answer until the channel is down, so the webhook's own calls still get through.
      const release = quickchat.hold();
      try {
        await expectAck(await post(driver.text(thread, "anyone there?").webhook));
        await waitFor(() => askedQuickchat(thread).length === 1, PATIENCE_MS, "Quickchat to be asked");
        await driver.refuseConnections();
      } finally {
        release();
      }
      try {
        await waitFor(
          async () => ((await rowsOf(thread))[0]?.attempts ?? 0) >= 1,
          PATIENCE_MS,
          "a refused send",
        );
      } finally {
        await driver.acceptConnections();
      }
      const row = await finished(thread);

      expect(row.status).toBe("delivered");
      // Every channel names a request that did not complete the same way, for operators and alerts.
      const retried = logsOf(row.id).filter((entry) => entry.msg === "send failed; retrying later");
      expect(retried.map((entry) => entry.code)).toEqual(["network"]);
      // The refused attempt never reached the platform.
      expect(driver.attempts(thread).map((a) => a.accepted)).toEqual([true]);
      expect(driver.delivered(thread)).toEqual([answerTo("anyone there?")]);
      expect(askedQuickchat(thread)).toHaveLength(1);
    });

    it("fails a message whose send retry window runs out, recording the error and keeping the reply", async () => {
      const thread = driver.newThread();
      // More failures than the window has room for retries.
      driver.failNextSend(thread, { kind: "server_error" }, 50);
      await expectAck(await post(driver.text(thread, "are you down?").webhook));
      const row = await finished(thread);

      expect(row.status).toBe("failed");
      expect(row.error).toMatch(new RegExp(`^${driver.route} send failed: .+`));
      // Nothing lost: the text and the reply stay stored (an operator can retry it), Quickchat was asked once.
      expect(row.text).toBe("are you down?");
      expect(row.replyHtml).toBe(answerTo("are you down?"));
      expect(askedQuickchat(thread)).toHaveLength(1);
      const [part, ...others] = await partsOf(row.id);
      expect(others).toEqual([]);
      expect(part).toMatchObject({ part: 0, status: "failed", channelMessageId: null });
      expect(part?.errorCode).toMatch(/.+/);
      // Retried within the window, every attempt reached the platform and failed; none was made after the
      // last one the window allowed (the message ended on it). Without the window it would retry on.
      const attempts = driver.attempts(thread);
      expect(row.attempts).toBeGreaterThanOrEqual(1);
      expect(attempts.map((a) => a.accepted)).toEqual(Array.from({ length: row.attempts + 1 }, () => false));
      expect(driver.delivered(thread)).toEqual([]);
    });

    it("fails a stored message whose route lacks its fields as permanent, with the code bad_route", async () => {
      const thread = driver.newThread();
      // A row as an older version or a hand edit could leave it: the route has none of the channel's fields.
      await db()
        .insert(inboundMessages)
        .values({
          tenantId: TENANT,
          channel: driver.route,
          threadKey: thread.key,
          dedupeKey: `no-route:${thread.key}`,
          kind: "text",
          sender: { id: "contract-user", name: "Contract User" },
          route: {},
          text: "where does this go?",
        });
      const row = await finished(thread);

      expect([row.status, row.attempts]).toEqual(["failed", 0]);
      expect(row.error).toMatch(new RegExp(`^${driver.route} send failed: .+`));
      expect(await partsOf(row.id)).toEqual([
        expect.objectContaining({
          part: 0,
          status: "failed",
          errorCode: "bad_route",
          channelMessageId: null,
        }),
      ]);
      expect(driver.attempts(thread)).toEqual([]);
      expect(askedQuickchat(thread)).toHaveLength(1);
    });
  });
}
