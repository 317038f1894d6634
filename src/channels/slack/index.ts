import { unavailable } from "../../errors.js";
import { slackDialect, slackPlainDialect } from "../../format/index.js";
import { TenantClients, webhookResult } from "../shared.js";
import { type AdapterDeps, type ChannelParts, type DeliveryTarget, defineChannel } from "../types.js";
import { DEFAULT_SLACK_API_URL, type SlackConfig, slackSchema, slackWarnings } from "./config.js";
import { decodeSlackPayload, parseSlackEvent, type SlackIdentity } from "./inbound.js";
import { classifySlackError, postMessage, readRoute, setThinkingStatus } from "./outbound.js";
import { precheckSlackHeaders, verifySlackSignature } from "./verify.js";
import { SlackWorkspace } from "./workspace.js";

/** Re-set before Slack's two-minute expiry of an assistant status while Quickchat is still working. */
const THINKING_INTERVAL_MS = 100_000;

export interface SlackAdapterOptions {
  /** Clock for signature timestamps and the user-name cache (tests). */
  now?: () => number;
}

/**
 * Slack Events API in, Web API out. Events are parsed by the pure `inbound.ts` rather than dispatched
 * through a Bolt App: Bolt's processEvent adds authorize, middleware and listener plumbing (~50 µs and an
 * App per tenant) to the ack path without deciding anything the parser does not already decide.
 */
export function createSlackAdapter(
  deps: AdapterDeps,
  options: SlackAdapterOptions = {},
): ChannelParts<SlackConfig> {
  const log = deps.log.child({ channel: "slack" });
  const now = options.now ?? Date.now;
  // A changed token or API URL replaces the tenant's workspace, and with it its caches.
  const workspaces = new TenantClients<SlackWorkspace>();
  const workspaceFor = (tenantId: string, config: SlackConfig) =>
    workspaces.get(
      tenantId,
      [config.api_url, config.bot_token],
      () => new SlackWorkspace(config, log.child({ tenant: tenantId }), now),
    );
  const workspaceOf = (target: DeliveryTarget<SlackConfig>) => workspaceFor(target.tenant.id, target.config);

  return {
    precheck(headers) {
      precheckSlackHeaders(headers, now());
    },

    verify(req, config) {
      verifySlackSignature(req, config.signing_secret, now());
    },

    async receive(req, config, tenant) {
      const payload = decodeSlackPayload(req.rawBody.toString("utf8"));
      if (payload.type === "url_verification") {
        return {
          type: "response",
          response: new Response(payload.challenge, { headers: { "content-type": "text/plain" } }),
        };
      }
      if (payload.type === "other") return { type: "messages", messages: [], ignored: payload.payloadType };

      const workspace = workspaceFor(tenant.id, config);
      let identity: SlackIdentity;
      try {
        identity = await workspace.identity();
      } catch (error) {
        // Without the bot's own id we could answer ourselves; a non-2xx makes Slack deliver again later.
        log.error(
          { tenant: tenant.id, err: classifySlackError("auth.test", error) },
          "slack auth.test failed",
        );
        throw unavailable("could not look up the Slack bot identity (auth.test)");
      }
      return webhookResult(parseSlackEvent(payload.envelope, identity));
    },

    ack: () => new Response(null, { status: 200 }),

    async send(target, text, { plain }) {
      return postMessage(workspaceOf(target).client, target.config, readRoute(target.route), text, plain);
    },

    // Slack has no typing indicator for bots; only assistant threads can show a status.
    typing: {
      intervalMs: THINKING_INTERVAL_MS,
      async send(target) {
        const route = readRoute(target.route);
        if (!route.assistant || !route.thread_ts) return;
        await setThinkingStatus(workspaceOf(target).client, route.channel, route.thread_ts);
      },
    },

    senderName: (target, senderId) => workspaceOf(target).userName(senderId),
  };
}

export const slack = defineChannel({
  name: "slack",
  title: "Slack",
  schema: slackSchema,
  secrets: ["signing_secret", "bot_token"],
  destination: { field: "api_url", default: DEFAULT_SLACK_API_URL },
  env: { SLACK_SIGNING_SECRET: "signing_secret", SLACK_BOT_TOKEN: "bot_token", SLACK_API_URL: "api_url" },
  secretHeaders: ["x-slack-signature"],
  // Slack counts the mrkdwn string itself; its plain fallback keeps `& < >` escaped.
  format: { limit: 3000, markup: slackDialect, plain: slackPlainDialect, countsMarkup: true },
  warnings: slackWarnings,
  createAdapter: (deps) => createSlackAdapter(deps),
});
