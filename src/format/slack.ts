/** Slack mrkdwn: `*bold*`, `_italic_`, `~strike~`, `<url|label>`; `& < >` are control characters everywhere. */
import { type Dialect, entityEscape, markerDialect, neutralizeBackticks } from "./render.js";
import { innermostLink, type Mark } from "./runs.js";

export const escapeSlack = entityEscape({ "&": "&amp;", "<": "&lt;", ">": "&gt;" });

function escapeMrkdwn(text: string, marks: readonly Mark[]): string {
  const escaped = neutralizeBackticks(escapeSlack(text), marks);
  // A "|" would end the URL of `<url|label>` early: encoded in a URL, a look-alike (U+00A6) in a label.
  const link = innermostLink(marks);
  return link ? escaped.replaceAll("|", link.bare ? "%7C" : "\u00a6") : escaped;
}

export const slackDialect: Dialect = markerDialect(
  { bold: "*", italic: "_", strike: "~", code: "`", pre: "```" },
  "angle",
  escapeMrkdwn,
);
