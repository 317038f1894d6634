import { WebAPIPlatformError, type WebClient } from "@slack/web-api";
import type { Logger } from "../../log.js";
import { sharedOnce } from "../shared.js";
import type { SlackConfig } from "./config.js";
import type { SlackIdentity } from "./inbound.js";
import { classifySlackError, createSlackClient, fetchIdentity, fetchUserName } from "./outbound.js";

const USER_NAME_TTL_MS = 60 * 60 * 1000;
/** Bounds the name cache of a very large workspace; the oldest entries go first. */
const MAX_CACHED_NAMES = 10_000;

/** One tenant's Slack app as the adapter sees it: a Web API client, the bot's identity, user names. */
export class SlackWorkspace {
  readonly client: WebClient;
  /** auth.test once per token; concurrent callers share the lookup, a failure is retried next time. */
  readonly identity: () => Promise<SlackIdentity>;
  private readonly names = new Map<string, { name: string | undefined; expiresAt: number }>();

  constructor(
    config: SlackConfig,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    this.client = createSlackClient(config, log);
    this.identity = sharedOnce(() => fetchIdentity(this.client));
  }

  /** The user's display name, cached for an hour; undefined when Slack cannot say. Never throws. */
  async userName(userId: string): Promise<string | undefined> {
    const cached = this.names.get(userId);
    if (cached && cached.expiresAt > this.now()) return cached.name;
    try {
      const name = await fetchUserName(this.client, userId);
      this.remember(userId, name);
      return name;
    } catch (error) {
      // A definite answer (user_not_found, missing users:read scope) is remembered; a network failure is not.
      if (error instanceof WebAPIPlatformError) this.remember(userId, undefined);
      // The classified error: the WebClient's own carries Slack's whole answer in `data`.
      const err = classifySlackError("users.info", error).message;
      this.log.debug({ err }, "slack users.info failed; replying without the user's name");
      return undefined;
    }
  }

  private remember(userId: string, name: string | undefined) {
    this.names.delete(userId);
    if (this.names.size >= MAX_CACHED_NAMES) {
      const oldest = this.names.keys().next().value;
      if (oldest !== undefined) this.names.delete(oldest);
    }
    this.names.set(userId, { name, expiresAt: this.now() + USER_NAME_TTL_MS });
  }
}
