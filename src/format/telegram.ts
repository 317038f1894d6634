/** Telegram `parse_mode: HTML`: only the tags Telegram allows; `& < >` escaped, `"` too in attributes. */
import { type Dialect, entityEscape } from "./render.js";
import type { Mark } from "./runs.js";

const TAGS = {
  quote: "blockquote",
  bold: "b",
  italic: "i",
  underline: "u",
  strike: "s",
  code: "code",
} as const;

const TEXT_ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
const escapeText = entityEscape(TEXT_ENTITIES);
const escapeAttribute = entityEscape({ ...TEXT_ENTITIES, '"': "&quot;" });

function tagOf(mark: Mark): { open: string; close: string } {
  switch (mark.kind) {
    case "link":
      return { open: `<a href="${escapeAttribute(mark.href)}">`, close: "</a>" };
    case "pre":
      return mark.language
        ? { open: `<pre><code class="language-${mark.language}">`, close: "</code></pre>" }
        : { open: "<pre>", close: "</pre>" };
    default:
      return { open: `<${TAGS[mark.kind]}>`, close: `</${TAGS[mark.kind]}>` };
  }
}

export const telegramDialect: Dialect = {
  escape: escapeText,
  open: (mark) => tagOf(mark).open,
  close: (mark) => tagOf(mark).close,
  quoteLinePrefix: "",
};
