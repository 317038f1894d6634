import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

/**
 * Paths whose values are secrets wherever they appear in a log object. Code never logs whole tenant configs,
 * but this is the safety net for when it does.
 */
const REDACT = [
  "token",
  "*.token",
  "bot_token",
  "*.bot_token",
  "*.*.bot_token",
  "api_key",
  "*.api_key",
  "*.*.api_key",
  "auth_token",
  "*.auth_token",
  "*.*.auth_token",
  "signing_secret",
  "*.signing_secret",
  "*.*.signing_secret",
  "webhook_secret",
  "*.webhook_secret",
  "*.*.webhook_secret",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
  'req.headers["x-telegram-bot-api-secret-token"]',
  'req.headers["x-slack-signature"]',
  'req.headers["x-twilio-signature"]',
  "password",
  "*.password",
];

export function createLogger(level = "info", destination?: DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT, censor: "[redacted]" } }, destination);
}
