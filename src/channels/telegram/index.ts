import type { Api } from "grammy";
import type { Update } from "grammy/types";
import { badRequest, unavailable } from "../../errors.js";
import { plainDialect, telegramDialect } from "../../format/index.js";
import { sharedOnce, TenantClients, webhookResult } from "../shared.js";
import { defineChannel } from "../types.js";
import {
  DEFAULT_TELEGRAM_API_ROOT,
  type TelegramConfig,
  telegramSchema,
  telegramWarnings,
} from "./config.js";
import { type BotIdentity, needsBotIdentity, parseUpdate, updateProblem } from "./inbound.js";
import { classifySendError, createTelegramApi, sendTelegramMessage, sendTelegramTyping } from "./outbound.js";
import { verifyTelegramSecret } from "./verify.js";

export { getTelegramWebhookInfo, setTelegramWebhook, TelegramCallError } from "./webhook.js";

/** Telegram clears "typing…" after 5 s, so it is renewed a little before. */
const TYPING_INTERVAL_MS = 4000;

/** One tenant's bot: its client and its identity (getMe once per bot; a failure is not kept). */
interface Bot {
  api: Api;
  identity(): Promise<BotIdentity>;
}

export const telegram = defineChannel({
  name: "telegram",
  title: "Telegram",
  schema: telegramSchema,
  secrets: ["bot_token", "webhook_secret"],
  destination: { field: "api_root", default: DEFAULT_TELEGRAM_API_ROOT },
  env: {
    TELEGRAM_BOT_TOKEN: "bot_token",
    TELEGRAM_WEBHOOK_SECRET: "webhook_secret",
    TELEGRAM_API_ROOT: "api_root",
  },
  secretHeaders: ["x-telegram-bot-api-secret-token"],
  // Telegram counts the text after entity parsing: the visible characters, not the HTML.
  format: { limit: 4096, markup: telegramDialect, plain: plainDialect, countsMarkup: false },
  warnings: telegramWarnings,

  createAdapter(deps) {
    const bots = new TenantClients<Bot>();
    const botFor = (tenantId: string, config: TelegramConfig): Bot =>
      bots.get(tenantId, [config.api_root, config.bot_token], () => {
        const api = createTelegramApi(config);
        return {
          api,
          identity: sharedOnce(() => api.getMe().then((me) => ({ id: me.id, username: me.username }))),
        };
      });

    async function identityOf(tenantId: string, config: TelegramConfig): Promise<BotIdentity> {
      try {
        return await botFor(tenantId, config).identity();
      } catch (error) {
        const reason = classifySendError(error);
        deps.log.warn(
          { tenant: tenantId, reason: reason instanceof Error ? reason.message : String(reason) },
          "telegram getMe failed",
        );
        // Not the sender's fault: a non-2xx makes Telegram deliver the update again later.
        throw unavailable("Telegram bot identity unavailable, retry later");
      }
    }

    return {
      // The secret is a header: the whole check runs before the body is read; `verify` repeats it (one compare).
      precheck: (headers, config) => verifyTelegramSecret(headers, config),

      verify: (req, config) => verifyTelegramSecret(req.headers, config),

      async receive(req, config, tenant) {
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
        return webhookResult(parseUpdate(update, bot));
      },

      ack: () => new Response(null, { status: 200 }),

      send: (target, text, options) =>
        sendTelegramMessage(botFor(target.tenant.id, target.config).api, target.route, text, options),

      typing: {
        intervalMs: TYPING_INTERVAL_MS,
        send: (target) => sendTelegramTyping(botFor(target.tenant.id, target.config).api, target.route),
      },
    };
  },
});
