import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseHtml } from "../../src/format/html.js";
import { layoutDocument } from "../../src/format/layout.js";
import { plainDialect, slackPlainDialect } from "../../src/format/plain.js";
import type { Dialect } from "../../src/format/render.js";
import { slackDialect } from "../../src/format/slack.js";
import { splitRuns } from "../../src/format/split.js";
import { telegramDialect } from "../../src/format/telegram.js";
import { whatsappDialect } from "../../src/format/whatsapp.js";
import {
  type ChannelName,
  DOCUMENTED_LIMITS,
  type FormattedPart,
  formatReply,
  formatText,
} from "../support/format.js";
import { checkTelegramHtml } from "../support/telegram-html.js";

const CHANNELS: ChannelName[] = ["telegram", "slack", "whatsapp"];

/** A random HTML fragment and the text a reader should see, whitespace aside. */
interface Sample {
  html: string;
  text: string;
}

const escapeHtml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const withoutWhitespace = (text: string) => text.replace(/\s+/g, "");

// Words that tempt a converter: markup characters, Markdown look-alikes that must stay literal, emoji.
const word = fc.constantFrom(
  "alpha",
  "beta.",
  "gamma!",
  "δέλτα",
  "😀👍",
  "a<b",
  "x&y",
  '"q"',
  "2*3",
  "snake_case",
  "end?",
);
const space = fc.constantFrom(" ", "  ", "\n", "\t", " \n ");
const textLeaf: fc.Arbitrary<Sample> = fc
  .array(fc.oneof(word, space), { maxLength: 12 })
  .map((pieces) => ({ html: escapeHtml(pieces.join("")), text: pieces.join("") }));

const wrap = (open: string, close: string) => (children: Sample[]) => ({
  html: `${open}${children.map((c) => c.html).join("")}${close}`,
  text: children.map((c) => c.text).join(""),
});

const { node: htmlTree } = fc.letrec<{ node: Sample; inline: Sample; block: Sample }>((tie) => ({
  node: fc.oneof({ depthSize: "small" }, textLeaf, tie("inline"), tie("block")),
  inline: fc.oneof(
    fc.constant({ html: "<br>", text: "" }),
    ...["b", "i", "u", "s", "em", "strong", "span", "code", "custom"].map((tag) =>
      fc.array(tie("node"), { maxLength: 3 }).map(wrap(`<${tag}>`, `</${tag}>`)),
    ),
    fc
      .array(tie("node"), { maxLength: 3 })
      .map(wrap('<a href="https://x.io/a?b=1&amp;c=&quot;2&quot;">', "</a>")),
  ),
  block: fc.oneof(
    ...["p", "div", "blockquote", "h3", "pre"].map((tag) =>
      fc.array(tie("node"), { maxLength: 3 }).map(wrap(`<${tag}>`, `</${tag}>`)),
    ),
    ...["ul", "ol"].map((tag) =>
      fc
        .array(fc.array(tie("node"), { maxLength: 3 }).map(wrap("<li>", "</li>")), { maxLength: 3 })
        .map(wrap(`<${tag}>`, `</${tag}>`)),
    ),
  ),
}));
const htmlDocument = fc.array(htmlTree, { maxLength: 6 }).map(wrap("", ""));

/** Long replies: many paragraphs of many words, some with formatting and line breaks. */
const sentence: fc.Arbitrary<Sample> = fc
  .array(word, { minLength: 5, maxLength: 30 })
  .map((words) => ({ html: escapeHtml(words.join(" ")), text: words.join(" ") }));
const longDocument = fc
  .array(fc.array(fc.oneof(sentence, htmlTree), { minLength: 3, maxLength: 20 }).map(wrap("<p>", "</p>")), {
    minLength: 20,
    maxLength: 150,
  })
  .map(wrap("", ""));

/** What the reader sees in the parts: Telegram's text after entity parsing, or the plain fallback. */
function visibleTelegramText(parts: FormattedPart[]): string {
  return parts
    .map((part) => {
      const checked = checkTelegramHtml(part.text);
      if (!checked.ok) throw new Error(`${checked.error}\n${part.text}`);
      return checked.visibleText;
    })
    .join("\n");
}

const withoutBullets = (text: string) => text.replace(/^\s*(?:•|\d+\.)(?: |$)/gm, "");

/** Whether `needle`'s characters appear in `haystack` in order (plain text adds URLs and "> "). */
function isSubsequence(needle: string, haystack: string): boolean {
  let at = 0;
  for (let i = 0; i < haystack.length && at < needle.length; i++) if (haystack[i] === needle[at]) at++;
  return at === needle.length;
}

function expectValidParts(
  parts: FormattedPart[],
  channel: ChannelName,
  limit = DOCUMENTED_LIMITS[channel],
): void {
  for (const part of parts) {
    expect(part.text.trim()).not.toBe("");
    expect(part.plain.length).toBeLessThanOrEqual(limit);
    if (channel === "telegram") {
      const checked = checkTelegramHtml(part.text);
      expect(checked, part.text).toMatchObject({ ok: true });
      if (checked.ok) expect(checked.visibleText.length).toBeLessThanOrEqual(limit);
    } else {
      expect(part.text.length).toBeLessThanOrEqual(limit);
    }
  }
}

function expectTextKept(parts: FormattedPart[], channel: ChannelName, expected: string): void {
  const wanted = withoutWhitespace(expected);
  if (channel === "telegram") {
    expect(withoutWhitespace(withoutBullets(visibleTelegramText(parts)))).toBe(wanted);
  }
  const plain = parts.map((part) => part.plain).join("\n");
  const unescaped =
    channel === "slack" ? plain.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&") : plain;
  expect(isSubsequence(wanted, withoutWhitespace(unescaped))).toBe(true);
}

describe("formatReply properties", () => {
  it("random HTML trees: valid markup, within limits, no text lost", () => {
    fc.assert(
      fc.property(htmlDocument, ({ html, text }) => {
        for (const channel of CHANNELS) {
          const parts = formatReply(html, channel);
          expectValidParts(parts, channel);
          expectTextKept(parts, channel, text);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("long replies are split within limits without losing text", () => {
    fc.assert(
      fc.property(longDocument, ({ html, text }) => {
        for (const channel of CHANNELS) {
          const parts = formatReply(html, channel);
          expectValidParts(parts, channel);
          expectTextKept(parts, channel, text);
        }
      }),
      { numRuns: 12 },
    );
  });

  it("arbitrary strings, as HTML or literal text, never throw and always render valid parts", () => {
    const soup = fc.oneof(
      fc.string({ unit: "binary", maxLength: 300 }),
      fc
        .array(
          fc.constantFrom(
            "<b>",
            "</b>",
            "<i>",
            "<p>",
            "</p>",
            "<br>",
            "<a href='https://x.io'>",
            "</a>",
            "<pre>",
            "<code>",
            "</code>",
            "<li>",
            "<blockquote>",
            "&",
            "&amp;",
            "&#0;",
            "&#xD800;",
            "*",
            "**",
            "_",
            "`",
            "```",
            "[x](https://x.io)",
            "\n",
            " ",
            "word",
            "\ud83d",
          ),
          { maxLength: 60 },
        )
        .map((pieces) => pieces.join("")),
    );
    fc.assert(
      fc.property(soup, (input) => {
        for (const channel of CHANNELS) {
          expectValidParts(formatReply(input, channel), channel);
          expectValidParts(formatText(input, channel), channel);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("literal text keeps every character", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (text) => {
        for (const channel of CHANNELS) {
          const parts = formatText(text, channel);
          expectValidParts(parts, channel);
          if (channel === "telegram")
            expect(withoutWhitespace(visibleTelegramText(parts))).toBe(withoutWhitespace(text));
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("splitting under tiny limits", () => {
  const targets: [ChannelName, Dialect, Dialect, boolean][] = [
    ["telegram", telegramDialect, plainDialect, false],
    ["slack", slackDialect, slackPlainDialect, true],
    ["whatsapp", whatsappDialect, plainDialect, true],
  ];

  it("every part fits, formatting re-opens across cuts, no text lost", () => {
    fc.assert(
      fc.property(htmlDocument, fc.integer({ min: 45, max: 120 }), ({ html, text }, limit) => {
        const runs = layoutDocument(parseHtml(html));
        for (const [channel, markup, plain, countsMarkup] of targets) {
          const parts = splitRuns(runs, { limit, markup, plain, countsMarkup });
          expectValidParts(parts, channel, limit);
          expectTextKept(parts, channel, text);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("hostile input", () => {
  it.each([
    ["deeply nested elements", `${"<div><b><ul><li>".repeat(3000)}x`],
    ["deeply nested emphasis", `${"*_".repeat(5000)}x${"_*".repeat(5000)}`],
    ["unmatched delimiters", "*a _b `c [d](e ``` ".repeat(2000)],
  ])("%s renders without throwing", (_name, html) => {
    for (const channel of CHANNELS) expectValidParts(formatReply(html, channel), channel);
  });
});
