/** Telegram `parse_mode: HTML`: only the tags Telegram allows; `& < >` escaped, `"` too in attributes. */
import type { Dialect } from "./render.js";
import type { Mark } from "./runs.js";

const TAGS = {
  quote: "blockquote",
  bold: "b",
  italic: "i",
  underline: "u",
  strike: "s",
  code: "code",
} as const;

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };

const SPECIAL_IN_TEXT = /[&<>]/;
const SPECIAL_IN_ATTRIBUTE = /[&<>"]/;

// The test first: most text has nothing to escape, and a replace with a callback is the costlier call.
function escapeText(text: string): string {
  return SPECIAL_IN_TEXT.test(text) ? text.replace(/[&<>]/g, (char) => ENTITIES[char]!) : text;
}

function escapeAttribute(value: string): string {
  return SPECIAL_IN_ATTRIBUTE.test(value) ? value.replace(/[&<>"]/g, (char) => ENTITIES[char]!) : value;
}

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
