import { z } from "zod";
import { httpUrl } from "../shared.js";

export const DEFAULT_SLACK_API_URL = "https://slack.com/api/";

/** A tenant's `slack` block. */
export const slackSchema = z.strictObject({
  signing_secret: z.string().min(1),
  bot_token: z.string().min(1),
  api_url: httpUrl.default(DEFAULT_SLACK_API_URL),
  unfurl_links: z.boolean().default(false),
});

export type SlackConfig = z.output<typeof slackSchema>;
