import type { Api } from "grammy";
import type { Update } from "grammy/types";
import type { TelegramConfig } from "../../config/schema.js";
import { badRequest, HttpError } from "../../errors.js";
import { storable } from "../shared.js";
import type { AdapterDeps, ChannelAdapter, DeliveryTarget, WebhookResult } from "../types.js";
import { type BotIdentity, needsBotIdentity, parseUpdate, updateProblem } from "./inbound.js";
import { classifySendError, createTelegramApi, sendTelegramMessage, sendTelegramTyping } from "./outbound.js";
import { verifyTelegramSecret } from "./verify.js";

export { getTelegramWebhookInfo, setTelegramWebhook } from "./outbound.js";

/** Telegram clears "typing…" after 5 s, so it is renewed a little before. */
const TYPING_INTERVAL_MS = 4000;

/** One tenant's bot: its client and its identity, valid while the token and API root stay the same. */
interface BotClient {
  key: string;
  api: Api;
  identity?: Promise<BotIdentity>;
}

export function createTelegramAdapter(deps: AdapterDeps): ChannelAdapter<TelegramConfig> {
  const bots = new Map<string, BotClient>();

  /** A changed token or API root replaces the tenant's client, so the change takes effect at once. */
  function botFor(tenantId: string, config: TelegramConfig): BotClient {
    const key = `${config.api_root}\n${config.bot_token}`;
    let bot = bots.get(tenantId);
    if (bot?.key !== key) {
      bot = { key, api: createTelegramApi(config) };
      bots.set(tenantId, bot);
    }
    return bot;
  }

  /** getMe once per bot; concurrent webhooks share the call, a failure is not cached. */
  async function identityOf(tenantId: string, config: TelegramConfig): Promise<BotIdentity> {
    const bot = botFor(tenantId, config);
    bot.identity ??= bot.api.getMe().then((me) => ({ id: me.id, username: me.username }));
    const pending = bot.identity;
    try {
      return await pending;
    } catch (error) {
      if (bot.identity === pending) bot.identity = undefined;
      const reason = classifySendError(error);
      deps.log.warn(
        { tenant: tenantId, reason: reason instanceof Error ? reason.message : String(reason) },
        "telegram getMe failed",
      );
      // Not the sender's fault: a non-2xx makes Telegram deliver the update again later.
      throw new HttpError(503, "CHANNEL_UNAVAILABLE", "Telegram bot identity unavailable, retry later");
    }
  }

  return {
    channel: "telegram",

    config: (tenant) => tenant.telegram,

    // The secret is a header: the whole check runs before the body is read; `verify` repeats it (one compare).
    precheck: (headers, config) => verifyTelegramSecret(headers, config),

    verify: (req, config) => verifyTelegramSecret(req.headers, config),

    async receive(req, config, tenant): Promise<WebhookResult> {
      let body: unknown;
      try {
        body = JSON.parse(req.rawBody.toString("utf8"));
      } catch {
        throw badRequest("body is not valid JSON");
      }
      const problem = updateProblem(body);
      if (problem) throw badRequest(`not a Telegram Update: ${problem}`);
      const update = body as Update;

      const bot = needsBotIdentity(update) ? await identityOf(tenant.id, config) : undefined;
      const result = parseUpdate(update, bot);
      return result.type === "message"
        ? { type: "messages", messages: [storable(result.message)] }
        : { type: "messages", messages: [], ignored: result.reason };
    },

    ack: () => new Response(null, { status: 200 }),

    send: (target: DeliveryTarget<TelegramConfig>, text, options) =>
      sendTelegramMessage(botFor(target.tenant.id, target.config).api, target.route, text, options),

    typing: {
      intervalMs: TYPING_INTERVAL_MS,
      send: (target) => sendTelegramTyping(botFor(target.tenant.id, target.config).api, target.route),
    },
  };
}
