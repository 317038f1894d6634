/**
 * Plain text, the fallback when a channel rejects a part's markup: no formatting, but links keep their URL
 * (`label (url)`) and quotes their "> ", so nothing the reader needs is lost.
 */
import { type Dialect, markerDialect } from "./render.js";
import { escapeSlack } from "./slack.js";

export const plainDialect: Dialect = markerDialect({}, "parenthesized", (text) => text);

/** Slack parses `& < >` even in plain text, so its plain fallback keeps them escaped. */
export const slackPlainDialect: Dialect = markerDialect({}, "parenthesized", escapeSlack);
