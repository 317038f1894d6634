/**
 * Every channel's webhook authentication against near misses: the exact signature (or secret) is accepted,
 * and each value one small step from it is refused with the channel's status. The exact values are computed
 * here and in the fakes with node:crypto, as the platforms document them, never with the code under test.
 * A near miss that keeps the value's format must get past the header checks, so that only the comparison
 * can refuse it; one that breaks the format must already be refused from the headers.
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CHANNEL_NAMES, type ChannelName } from "../../src/channels/registry.js";
import { precheckSlackHeaders, verifySlackSignature } from "../../src/channels/slack/verify.js";
import { telegramSchema } from "../../src/channels/telegram/config.js";
import { verifyTelegramSecret } from "../../src/channels/telegram/verify.js";
import type { WebhookRequest } from "../../src/channels/types.js";
import { precheckTwilioRequest, verifyTwilioSignature } from "../../src/channels/whatsapp/verify.js";
import { precheckSignatureHeader, verifySignature } from "../../src/channels/whatsapp_cloud/verify.js";
import { HttpError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { signSlackRequest } from "../fakes/slack.js";
import { inboundText, signTwilioRequest, toFormBody } from "../fakes/twilio.js";
import { signCloudRequest } from "../fakes/whatsapp-cloud.js";
import { digestNearMisses, type NearMiss, secretNearMisses } from "../support/near-misses.js";

interface ChannelAuth {
  channel: ChannelName;
  /** The status every refusal answers with. */
  status: 401 | 403;
  /** The tenant's secret, which no refusal may quote. */
  secret: string;
  /** The correct header value for `request`'s body. */
  exact: string;
  misses: NearMiss[];
  /** The webhook request presenting `value` as its signature or secret. */
  request(value: string): WebhookRequest;
  verify(req: WebhookRequest): void;
  /** The check made from the headers alone, before the body is read (Telegram's is the whole check). */
  precheck?(headers: Headers): void;
}

const requestOf = (body: string, headers: Record<string, string>, url: string): WebhookRequest => ({
  rawBody: Buffer.from(body),
  headers: new Headers(headers),
  url: new URL(url),
});

const telegram = (): ChannelAuth => {
  const secret = "s3cr3t-Token_42";
  const config = telegramSchema.parse({ bot_token: "123456:AAE-fake", webhook_secret: secret });
  return {
    channel: "telegram",
    status: 401,
    secret,
    exact: secret,
    misses: [
      ...secretNearMisses(secret),
      { name: "another tenant's secret", value: "other-Token_42", keepsShape: true },
    ],
    request: (value) =>
      requestOf(
        "{}",
        { "X-Telegram-Bot-Api-Secret-Token": value },
        "http://bridge.test/webhooks/acme/telegram",
      ),
    verify: (req) => verifyTelegramSecret(req.headers, config),
  };
};

const slack = (): ChannelAuth => {
  const secret = "8f742231b10e8888abcd99yyyzzz85a5";
  const timestamp = 1_531_420_618;
  const now = timestamp * 1000;
  const body = '{"type":"event_callback","event":{"type":"app_mention","text":"Grüße 👋"}}';
  const exact = signSlackRequest(secret, body, timestamp);
  const hex = exact.slice("v0=".length);
  return {
    channel: "slack",
    status: 401,
    secret,
    exact,
    misses: [
      ...digestNearMisses(hex, "hex").map((miss) => ({
        ...miss,
        value: `v0=${miss.value}`,
      })),
      { name: "the v1= scheme", value: `v1=${hex}`, keepsShape: false },
      {
        name: "the right HMAC for another timestamp",
        value: signSlackRequest(secret, body, timestamp + 1),
        keepsShape: true,
      },
      {
        name: "another tenant's secret",
        value: signSlackRequest("other", body, timestamp),
        keepsShape: true,
      },
    ],
    request: (value) =>
      requestOf(
        body,
        { "x-slack-signature": value, "x-slack-request-timestamp": String(timestamp) },
        "http://bridge.test/webhooks/acme/slack",
      ),
    verify: (req) => verifySlackSignature(req, secret, now),
    precheck: (headers) => void precheckSlackHeaders(headers, now),
  };
};

const whatsapp = (): ChannelAuth => {
  const secret = "f00dfeedf00dfeedf00dfeedf00dfeed";
  const account = "AC0123456789abcdef0123456789abcdef";
  const url = "https://bridge.example.com/webhooks/acme/whatsapp";
  const params = inboundText("Grüße 👋", { accountSid: account });
  const exact = signTwilioRequest(secret, url, params);
  const log = createLogger("silent");
  return {
    channel: "whatsapp",
    status: 403,
    secret,
    exact,
    misses: [
      ...digestNearMisses(exact, "base64"),
      { name: "an HMAC-SHA256", value: signTwilioRequest(secret, url, params, "sha256"), keepsShape: false },
      {
        name: "the signature of another URL",
        value: signTwilioRequest(secret, "https://bridge.example.com/webhooks/other/whatsapp", params),
        keepsShape: true,
      },
      { name: "another tenant's token", value: signTwilioRequest("other", url, params), keepsShape: true },
    ],
    request: (value) => ({
      ...requestOf(
        toFormBody(params),
        { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": value },
        "http://10.0.0.5:3000/webhooks/acme/whatsapp",
      ),
      publicUrl: "https://bridge.example.com",
    }),
    verify: (req) => verifyTwilioSignature(req, { account_sid: account, auth_token: secret }, log, "acme"),
    precheck: (headers) => precheckTwilioRequest(headers),
  };
};

const whatsappCloud = (): ChannelAuth => {
  const secret = "6c1f0a9e3b2d4c5f8e7a9b0c1d2e3f40";
  const body = '{"object":"whatsapp_business_account","entry":[]}';
  const exact = signCloudRequest(body, secret);
  const hex = exact.slice("sha256=".length);
  return {
    channel: "whatsapp_cloud",
    status: 401,
    secret,
    exact,
    misses: [
      ...digestNearMisses(hex, "hex").map((miss) => ({ ...miss, value: `sha256=${miss.value}` })),
      { name: "the digits under sha1=", value: `sha1=${hex}`, keepsShape: false },
      {
        name: "an X-Hub-Signature HMAC-SHA1",
        value: `sha1=${createHmac("sha1", secret).update(body).digest("hex")}`,
        keepsShape: false,
      },
      { name: "another app's secret", value: signCloudRequest(body, "another-app-secret"), keepsShape: true },
    ],
    request: (value) =>
      requestOf(
        body,
        { "content-type": "application/json", "x-hub-signature-256": value },
        "http://bridge.test/webhooks/acme/whatsapp_cloud",
      ),
    verify: (req) => verifySignature(req.rawBody, req.headers, secret),
    precheck: (headers) => void precheckSignatureHeader(headers),
  };
};

const CHANNELS = [telegram(), slack(), whatsapp(), whatsappCloud()];

function refusal(call: () => void): HttpError {
  try {
    call();
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("accepted a near miss");
}

it("covers every channel", () => {
  expect(CHANNELS.map((auth) => auth.channel).sort()).toEqual([...CHANNEL_NAMES].sort());
});

describe.each(CHANNELS.map((auth) => [auth.channel, auth] as const))(
  "%s webhook authentication",
  (_, auth) => {
    it("accepts the exact value", () => {
      const req = auth.request(auth.exact);
      expect(() => auth.precheck?.(req.headers)).not.toThrow();
      expect(() => auth.verify(req)).not.toThrow();
    });

    it.each(auth.misses.map((miss) => [miss.name, miss] as const))(
      `refuses %s with ${auth.status}`,
      (_, miss) => {
        expect(miss.value).not.toBe(auth.exact);
        const req = auth.request(miss.value);
        const error = refusal(() => auth.verify(req));
        expect(error.status).toBe(auth.status);
        expect(error.message).not.toContain(auth.secret);
        if (!auth.precheck) return;
        if (miss.keepsShape) expect(() => auth.precheck?.(req.headers)).not.toThrow();
        else expect(refusal(() => auth.precheck?.(req.headers)).status).toBe(auth.status);
      },
    );
  },
);
