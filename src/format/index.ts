/**
 * Reply formatting: Quickchat reply HTML (with LLM Markdown inside) → parts in a channel's markup, each
 * within the channel's length limit. Pure: no I/O, no SDKs. Each channel's descriptor names its
 * `ReplyFormat`: a limit and the dialects below.
 *
 * Pipeline: html.ts (HTML → tree) → layout.ts (+ markdown.ts: tree → flat runs) → split.ts (cut runs into
 * parts) → render.ts with a channel dialect (telegram.ts, slack.ts, whatsapp.ts, plain.ts).
 */
import { parseHtml } from "./html.js";
import { layoutDocument, layoutLiteral } from "./layout.js";
import type { Run } from "./runs.js";
import { type FormattedPart, type ReplyFormat, splitRuns } from "./split.js";

export { plainDialect, slackPlainDialect } from "./plain.js";
export { slackDialect } from "./slack.js";
export type { FormattedPart, ReplyFormat } from "./split.js";
export { telegramDialect } from "./telegram.js";
export { whatsappDialect } from "./whatsapp.js";

/** Quickchat reply HTML (with possible LLM Markdown inside) → ordered parts, never empty parts; [] when the reply has no visible text. */
export function formatReply(html: string, format: ReplyFormat): FormattedPart[] {
  return splitRuns(wellFormed(layoutDocument(parseHtml(html))), format);
}

/** Literal text written by the bridge itself (no HTML or Markdown interpretation) → parts, escaped for the channel. */
export function formatText(text: string, format: ReplyFormat): FormattedPart[] {
  return splitRuns(wellFormed(layoutLiteral(text)), format);
}

/** A lone surrogate cannot be sent as UTF-8 (Telegram rejects the whole message): show U+FFFD instead. */
function wellFormed(runs: Run[]): Run[] {
  return runs.map((run) =>
    run.text.isWellFormed() ? run : { text: run.text.toWellFormed(), marks: run.marks },
  );
}
