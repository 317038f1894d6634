/**
 * Reply formatting: Quickchat reply HTML (with LLM Markdown inside) → parts in each channel's markup,
 * each within the channel's length limit. Pure: no I/O, no SDKs.
 *
 * Pipeline: html.ts (HTML → tree) → layout.ts (+ markdown.ts: tree → flat runs) → split.ts (cut runs into
 * parts) → render.ts with a channel dialect (telegram.ts, slack.ts, whatsapp.ts, plain.ts).
 */
import { parseHtml } from "./html.js";
import { layoutDocument, layoutLiteral } from "./layout.js";
import { plainDialect, slackPlainDialect } from "./plain.js";
import type { Run } from "./runs.js";
import { slackDialect } from "./slack.js";
import { type FormattedPart, type SplitTarget, splitRuns } from "./split.js";
import { telegramDialect } from "./telegram.js";
import { whatsappDialect } from "./whatsapp.js";

export type { FormattedPart } from "./split.js";

export type ChannelName = "telegram" | "slack" | "whatsapp";

/** Max characters per message: Telegram 4096 (after entity parsing, i.e. visible text), Slack 3000, WhatsApp 1600. */
export const CHANNEL_LIMITS: Record<ChannelName, number> = { telegram: 4096, slack: 3000, whatsapp: 1600 };

const TARGETS: Record<ChannelName, SplitTarget> = {
  telegram: {
    limit: CHANNEL_LIMITS.telegram,
    markup: telegramDialect,
    plain: plainDialect,
    countsMarkup: false,
  },
  slack: { limit: CHANNEL_LIMITS.slack, markup: slackDialect, plain: slackPlainDialect, countsMarkup: true },
  whatsapp: {
    limit: CHANNEL_LIMITS.whatsapp,
    markup: whatsappDialect,
    plain: plainDialect,
    countsMarkup: true,
  },
};

/** Quickchat reply HTML (with possible LLM Markdown inside) → ordered parts, never empty parts; [] when the reply has no visible text. */
export function formatReply(html: string, channel: ChannelName): FormattedPart[] {
  return splitRuns(wellFormed(layoutDocument(parseHtml(html))), TARGETS[channel]);
}

/** Literal text written by the bridge itself (no HTML or Markdown interpretation) → parts, escaped for the channel. */
export function formatText(text: string, channel: ChannelName): FormattedPart[] {
  return splitRuns(wellFormed(layoutLiteral(text)), TARGETS[channel]);
}

/** A lone surrogate cannot be sent as UTF-8 (Telegram rejects the whole message): show U+FFFD instead. */
function wellFormed(runs: Run[]): Run[] {
  return runs.map((run) =>
    run.text.isWellFormed() ? run : { text: run.text.toWellFormed(), marks: run.marks },
  );
}
