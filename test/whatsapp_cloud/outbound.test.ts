import { createServer } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type WhatsappCloudConfig, whatsappCloudSchema } from "../../src/channels/whatsapp_cloud/config.js";
import {
  classifyGraphError,
  sendText,
  sendTypingIndicator,
} from "../../src/channels/whatsapp_cloud/outbound.js";
import { type RunningFake, startFake } from "../fakes/server.js";
import {
  appRateLimit,
  BUSINESS,
  badGateway,
  createWhatsappCloudFake,
  type GraphFailure,
  pairRateLimit,
  somethingWentWrong,
  throughputLimit,
  tokenExpired,
  USER,
  undeliverable,
  type WhatsappCloudFake,
  windowClosed,
} from "../fakes/whatsapp-cloud.js";
import { sendError } from "../support/send-error.js";

const ACCESS_TOKEN = "EAAGm0PX4ZCpsBAtesttoken";
const ROUTE = {
  phone_number_id: BUSINESS.phoneNumberId,
  to: USER.waId!,
  recipient: USER.userId!,
  message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
};

let fake: WhatsappCloudFake;
let server: RunningFake;
let config: WhatsappCloudConfig;

beforeAll(async () => {
  fake = createWhatsappCloudFake({ accessToken: ACCESS_TOKEN, phoneNumberIds: [BUSINESS.phoneNumberId] });
  server = await startFake(fake.app);
  config = whatsappCloudSchema.parse({
    app_secret: "app-secret",
    access_token: ACCESS_TOKEN,
    verify_token: "verify",
    phone_number_id: BUSINESS.phoneNumberId,
    graph_base: server.url,
  });
});

afterAll(() => server.close());

beforeEach(() => {
  fake.calls.length = 0;
  fake.rejections.length = 0;
  fake.accessToken = ACCESS_TOKEN;
});

describe("sendText", () => {
  it("posts a text message from the route's business number and returns its wamid", async () => {
    const sent = await sendText(config, ROUTE, "Hello *there*");
    expect(fake.calls).toHaveLength(1);
    const [call] = fake.sent();
    expect(call).toMatchObject({ version: "v26.0", phoneNumberId: BUSINESS.phoneNumberId, status: 200 });
    expect(call!.body).toEqual({
      messaging_product: "whatsapp",
      recipient_type: "individual",
      to: USER.waId,
      type: "text",
      text: { body: "Hello *there*", preview_url: false },
    });
    expect(sent).toEqual({ channelMessageId: call!.id });
    expect(sent.channelMessageId).toMatch(/^wamid\./);
  });

  it("addresses a user without a known number by business-scoped user id", async () => {
    await sendText(
      config,
      { phone_number_id: BUSINESS.phoneNumberId, recipient: "BR.1502576394655843" },
      "hi",
    );
    const body = fake.sent()[0]!.body as Record<string, unknown>;
    expect(body.recipient).toBe("BR.1502576394655843");
    expect(body).not.toHaveProperty("to");
  });

  it("asks for link previews when the tenant wants them, on the configured Graph version", async () => {
    const previews = { ...config, preview_url: true, graph_version: "v25.0", graph_base: `${server.url}/` };
    await sendText(previews, ROUTE, "see https://example.com");
    const [call] = fake.sent();
    expect(call!.version).toBe("v25.0");
    expect((call!.body as { text: unknown }).text).toEqual({
      body: "see https://example.com",
      preview_url: true,
    });
  });

  it("sends a text of exactly the limit", async () => {
    await sendText(config, ROUTE, "x".repeat(4096));
    expect(fake.sent()).toHaveLength(1);
  });
});

describe("sendText: failures the relay retries", () => {
  it.each<[string, GraphFailure, string]>([
    ["throughput limit (130429)", throughputLimit(), "130429"],
    ["pair rate limit (131056)", pairRateLimit(), "131056"],
    ["app rate limit (4)", appRateLimit(), "4"],
    ["business account rate limit (80007)", { status: 400, code: 80007 }, "80007"],
    ["Graph rate limit (613)", { status: 400, code: 613 }, "613"],
    ["spam rate limit (131048)", { status: 400, code: 131048 }, "131048"],
    ["something went wrong (131000)", somethingWentWrong(), "131000"],
    ["unknown error (1)", { status: 500, code: 1 }, "1"],
    ["service unavailable (131016)", { status: 503, code: 131016 }, "131016"],
    ["an unknown code on a 5xx", { status: 500, code: 987654 }, "987654"],
    ["an unknown code on a 429", { status: 429, code: 987655 }, "987655"],
  ])("%s", async (_, failure, code) => {
    fake.failNext(failure);
    const error = await sendError(sendText(config, ROUTE, "hi"));
    expect({ kind: error.kind, code: error.code, retryAfterMs: error.retryAfterMs }).toEqual({
      kind: "retry",
      code,
      retryAfterMs: undefined,
    });
    expect(fake.sent()).toHaveLength(0);
    // Asked for by the test: not a refusal of what was sent.
    expect(fake.rejections).toEqual([]);
  });

  it("waits as long as Retry-After says when an answer has one", async () => {
    fake.failNext(throughputLimit(7));
    const error = await sendError(sendText(config, ROUTE, "hi"));
    expect(error).toMatchObject({ kind: "retry", code: "130429", retryAfterMs: 7000 });
  });

  it("a proxy's error page without a Graph error", async () => {
    fake.failNext(badGateway());
    const error = await sendError(sendText(config, ROUTE, "hi"));
    expect(error).toMatchObject({ kind: "retry", code: "502", message: "Graph API answered 502" });
  });

  it("a connection dropped before any answer", async () => {
    fake.failNext("drop");
    const error = await sendError(sendText(config, ROUTE, "hi"));
    expect(error).toMatchObject({ kind: "retry", code: "network" });
    expect(fake.calls).toHaveLength(1);
  });

  it("no answer within the timeout", async () => {
    fake.failNext("hang");
    const error = await sendError(sendText(config, ROUTE, "hi", { timeoutMs: 200 }));
    expect(error).toMatchObject({
      kind: "retry",
      code: "network",
      message: "Graph API did not answer within 200 ms",
    });
  });

  it("nobody listening at graph_base", async () => {
    const port = await closedPort();
    const error = await sendError(
      sendText({ ...config, graph_base: `http://127.0.0.1:${port}` }, ROUTE, "hi"),
    );
    expect(error).toMatchObject({
      kind: "retry",
      code: "network",
      message: "Graph API unreachable (ECONNREFUSED)",
    });
  });

  it("then sends normally once the failure is over", async () => {
    fake.failNext(somethingWentWrong());
    await sendError(sendText(config, ROUTE, "hi"));
    await expect(sendText(config, ROUTE, "hi")).resolves.toHaveProperty("channelMessageId");
  });
});

describe("sendText: failures that end the message", () => {
  it.each<[string, GraphFailure, string, RegExp]>([
    ["24-hour window closed (131047)", windowClosed(), "131047", /24 hours/],
    ["undeliverable (131026)", undeliverable(), "131026", /undeliverable/],
    ["token expired (190)", tokenExpired(), "190", /#190\/463.*access token expired or invalid/],
    [
      "recipient not allowed on a test number (131030)",
      { status: 400, code: 131030 },
      "131030",
      /allowed list/,
    ],
    ["account temporarily blocked (368)", { status: 403, code: 368 }, "368", /blocked for policy violations/],
    ["permission missing (200-299)", { status: 403, code: 200 }, "200", /permission missing/],
    ["invalid parameter (100)", { status: 400, code: 100 }, "100", /invalid parameter/],
    [
      "an unknown code on a 4xx",
      { status: 400, code: 987656 },
      "987656",
      /^Graph API answered 400 \(#987656\)/,
    ],
  ])("%s", async (_, failure, code, message) => {
    fake.failNext(failure);
    const error = await sendError(sendText(config, ROUTE, "hi"));
    expect({ kind: error.kind, code: error.code }).toEqual({ kind: "permanent", code });
    expect(error.message).toMatch(message);
  });

  it("never repeats the answer's message text, and names Meta's trace id", async () => {
    fake.failNext({ status: 400, code: 131047, message: "<script>whatever the server wrote</script>" });
    const error = await sendError(sendText(config, ROUTE, "hi"));
    expect(error.message).not.toContain("whatever");
    expect(error.message).toMatch(/\[fbtrace_id [A-Za-z0-9_-]+\]$/);
  });

  it("an access token Meta does not accept", async () => {
    fake.accessToken = "rotated";
    const error = await sendError(sendText(config, ROUTE, "hi"));
    expect(error).toMatchObject({ kind: "permanent", code: "190" });
    expect(error.message).not.toContain(ACCESS_TOKEN);
    expect(fake.rejections).toEqual([expect.objectContaining({ status: 401, code: 190 })]);
  });

  it("a text over 4096 characters", async () => {
    const error = await sendError(sendText(config, ROUTE, "x".repeat(4097)));
    expect(error).toMatchObject({ kind: "permanent", code: "100" });
    expect(fake.sent()).toHaveLength(0);
    expect(fake.rejections).toEqual([
      expect.objectContaining({ status: 400, code: 100, message: "(#100) Invalid parameter" }),
    ]);
  });

  it("a business number the token cannot send from", async () => {
    const error = await sendError(sendText(config, { ...ROUTE, phone_number_id: "100000000000001" }, "hi"));
    expect(error).toMatchObject({ kind: "permanent", code: "100" });
    expect(error.message).toMatch(/#100\/33/);
  });

  it("an accepted answer without a message id: not retried, it may have been sent", async () => {
    fake.failNext({ status: 200, contentType: "application/json", raw: '{"messaging_product":"whatsapp"}' });
    const error = await sendError(sendText(config, ROUTE, "hi"));
    expect(error).toMatchObject({ kind: "permanent", code: "no_message_id" });
  });

  it.each<[string, Record<string, string | number>]>([
    ["no phone_number_id", { to: "16505551234" }],
    ["a phone_number_id that is not digits", { phone_number_id: "../../me", to: "16505551234" }],
    ["a numeric phone_number_id", { phone_number_id: 106540352242922, to: "16505551234" }],
    ["no recipient", { phone_number_id: BUSINESS.phoneNumberId }],
    ["an empty recipient", { phone_number_id: BUSINESS.phoneNumberId, to: "", recipient: "" }],
  ])("a route with %s, without calling Meta", async (_, route) => {
    const error = await sendError(sendText(config, route, "hi"));
    expect(error).toMatchObject({ kind: "permanent", code: "bad_route" });
    expect(fake.calls).toHaveLength(0);
  });
});

describe("sendTypingIndicator", () => {
  it("marks the user's message as read with a typing indicator", async () => {
    await sendTypingIndicator(config, ROUTE);
    const [call] = fake.typings();
    expect(call).toMatchObject({ version: "v26.0", phoneNumberId: BUSINESS.phoneNumberId, status: 200 });
    expect(call!.body).toEqual({
      messaging_product: "whatsapp",
      status: "read",
      message_id: ROUTE.message_id,
      typing_indicator: { type: "text" },
    });
    expect(fake.sent()).toHaveLength(0);
  });

  it("fails like a send does", async () => {
    fake.failNext(pairRateLimit());
    const error = await sendError(sendTypingIndicator(config, ROUTE));
    expect(error).toMatchObject({ kind: "retry", code: "131056" });
  });

  it("needs the user's message id in the route", async () => {
    const { message_id: _, ...withoutMessage } = ROUTE;
    const error = await sendError(sendTypingIndicator(config, withoutMessage));
    expect(error).toMatchObject({ kind: "permanent", code: "bad_route" });
    expect(fake.calls).toHaveLength(0);
  });
});

describe("classifyGraphError", () => {
  it("reads a code written as a string, and ignores one that is not a number", () => {
    const asString = classifyGraphError(400, { error: { code: "131047" } }, new Headers());
    const garbage = classifyGraphError(400, { error: { code: "13104x" } }, new Headers());
    expect({ kind: asString.kind, code: asString.code }).toEqual({ kind: "permanent", code: "131047" });
    expect({ kind: garbage.kind, code: garbage.code, message: garbage.message }).toEqual({
      kind: "permanent",
      code: "400",
      message: "Graph API answered 400",
    });
  });
});

/** A loopback port nothing listens on: bound, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
