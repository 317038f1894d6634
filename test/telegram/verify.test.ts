import { describe, expect, it } from "vitest";
import { telegramSchema } from "../../src/channels/telegram/config.js";
import { verifyTelegramSecret } from "../../src/channels/telegram/verify.js";
import { HttpError } from "../../src/errors.js";

/** The header as Telegram's setWebhook documents it. */
const SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token";

const config = telegramSchema.parse({ bot_token: "123456:AAE-fake", webhook_secret: "s3cr3t-Token_42" });

function rejection(headers: Record<string, string>): HttpError {
  try {
    verifyTelegramSecret(new Headers(headers), config);
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("verifyTelegramSecret", () => {
  it("accepts the tenant's secret, whatever the header name's case", () => {
    expect(() =>
      verifyTelegramSecret(new Headers({ [SECRET_TOKEN_HEADER]: "s3cr3t-Token_42" }), config),
    ).not.toThrow();
    expect(() =>
      verifyTelegramSecret(new Headers({ "x-telegram-bot-api-secret-token": "s3cr3t-Token_42" }), config),
    ).not.toThrow();
  });

  it("answers 401 when the header is missing", () => {
    expect(rejection({})).toMatchObject({
      status: 401,
      message: "missing X-Telegram-Bot-Api-Secret-Token header",
    });
  });

  // Near misses of the secret: test/channels/signatures.test.ts.
  it("says which header was wrong, without quoting the secret", () => {
    expect(rejection({ [SECRET_TOKEN_HEADER]: "another-tenants-secret" })).toMatchObject({
      status: 401,
      message: "wrong X-Telegram-Bot-Api-Secret-Token",
    });
  });
});
