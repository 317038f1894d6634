import { z } from "zod";
import { httpUrl } from "../shared.js";
import type { ChannelWarning } from "../types.js";

export const DEFAULT_SLACK_API_URL = "https://slack.com/api/";

/** A tenant's `slack` block. */
export const slackSchema = z.strictObject({
  signing_secret: z.string().min(1),
  bot_token: z.string().min(1),
  api_url: httpUrl.default(DEFAULT_SLACK_API_URL),
  unfurl_links: z.boolean().default(false),
});

export type SlackConfig = z.output<typeof slackSchema>;

/**
 * Bot tokens start with `xoxb-` (https://docs.slack.dev/authentication/tokens), `xoxe.xoxb-` when the app
 * rotates its tokens (https://docs.slack.dev/authentication/using-token-rotation). Slack does not promise
 * the prefixes stay, so another one is warned about, not refused.
 */
const BOT_TOKEN_PREFIX = /^(xoxe\.)?xoxb-/;

/**
 * Signing secrets are 32 hexadecimal characters as the app's Basic Information page shows them; Slack's own
 * example (https://docs.slack.dev/authentication/verifying-requests-from-slack) is not even hex, so this
 * too is only a warning.
 */
const SIGNING_SECRET = /^[0-9a-f]{32}$/i;

export function slackWarnings(config: SlackConfig): ChannelWarning[] {
  const warnings: ChannelWarning[] = [];
  if (!BOT_TOKEN_PREFIX.test(config.bot_token)) {
    warnings.push({
      field: "bot_token",
      message: "bot tokens start with xoxb- (OAuth & Permissions > Bot User OAuth Token)",
    });
  }
  if (!SIGNING_SECRET.test(config.signing_secret)) {
    warnings.push({
      field: "signing_secret",
      message: "signing secrets are 32 hexadecimal characters (Basic Information > App Credentials)",
    });
  }
  return warnings;
}
