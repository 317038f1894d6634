/** Slack mrkdwn: `*bold*`, `_italic_`, `~strike~`, `<url|label>`; `& < >` are control characters everywhere. */
import { type Dialect, markerDialect, neutralizeBackticks } from "./render.js";
import { innermostLink, type Mark } from "./runs.js";

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

const SPECIAL = /[&<>]/;

/** The test first: most text has nothing to escape, and a replace with a callback is the costlier call. */
export function escapeSlack(text: string): string {
  return SPECIAL.test(text) ? text.replace(/[&<>]/g, (char) => ENTITIES[char]!) : text;
}

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
