import type { SlackConfig } from "../../config/schema.js";
import { HttpError } from "../../errors.js";
import { storable } from "../shared.js";
import type { AdapterDeps, ChannelAdapter, DeliveryTarget, WebhookResult } from "../types.js";
import { decodeSlackPayload, parseSlackEvent, type SlackIdentity } from "./inbound.js";
import { classifySlackError, postMessage, readRoute, setThinkingStatus } from "./outbound.js";
import { precheckSlackHeaders, verifySlackSignature } from "./verify.js";
import { SlackWorkspaces } from "./workspace.js";

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
): ChannelAdapter<SlackConfig> {
  const log = deps.log.child({ channel: "slack" });
  const now = options.now ?? Date.now;
  const workspaces = new SlackWorkspaces(log, now);

  const workspaceOf = (target: DeliveryTarget<SlackConfig>) =>
    workspaces.get(target.tenant.id, target.config);

  return {
    channel: "slack",

    config: (tenant) => tenant.slack,

    precheck(headers) {
      precheckSlackHeaders(headers, now());
    },

    verify(req, config) {
      verifySlackSignature(req, config.signing_secret, now());
    },

    async receive(req, config, tenant): Promise<WebhookResult> {
      const payload = decodeSlackPayload(req.rawBody.toString("utf8"));
      if (payload.type === "url_verification") {
        return {
          type: "response",
          response: new Response(payload.challenge, { headers: { "content-type": "text/plain" } }),
        };
      }
      if (payload.type === "other") return { type: "messages", messages: [], ignored: payload.payloadType };

      const workspace = workspaces.get(tenant.id, config);
      let identity: SlackIdentity;
      try {
        identity = await workspace.identity();
      } catch (error) {
        // Without the bot's own id we could answer ourselves; a non-2xx makes Slack deliver again later.
        log.error(
          { tenant: tenant.id, err: classifySlackError("auth.test", error) },
          "slack auth.test failed",
        );
        throw new HttpError(503, "UNAVAILABLE", "could not look up the Slack bot identity (auth.test)");
      }
      const result = parseSlackEvent(payload.envelope, identity);
      if (result.type === "ignored") return { type: "messages", messages: [], ignored: result.reason };
      return { type: "messages", messages: [storable(result.message)] };
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
