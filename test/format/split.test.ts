import { describe, expect, it } from "vitest";
import { plainDialect, slackPlainDialect } from "../../src/format/plain.js";
import type { Dialect } from "../../src/format/render.js";
import { BOLD, type Mark, type Run } from "../../src/format/runs.js";
import { slackDialect } from "../../src/format/slack.js";
import { type ReplyFormat, splitRuns } from "../../src/format/split.js";
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

const visible = (markup: string) => {
  const checked = checkTelegramHtml(markup);
  if (!checked.ok) throw new Error(checked.error);
  return checked.visibleText;
};

/** A sentence of exactly `length` characters ending with a period. */
const sentence = (length: number, letter = "a") => `${letter.repeat(length - 1)}.`;

/**
 * What a platform counts against its limit, in UTF-16 code units (the unit of Telegram's entity offsets;
 * the stricter reading of "characters" elsewhere, as an emoji takes two): Telegram the text after entity
 * parsing, Slack and WhatsApp the text as sent, markup included. A part's plain fallback is sent without
 * markup when the markup is refused, so it is counted as sent too.
 */
const counted = (channel: ChannelName, markup: string) =>
  channel === "telegram" ? visible(markup).length : markup.length;
const largest = (channel: ChannelName, part: FormattedPart) =>
  Math.max(counted(channel, part.text), part.plain.length);

const LINK = "https://example.com/";

/** The text a reader sees in the markup the fillers below produce (bold, escaped ampersands, links). */
function shown(channel: ChannelName, markup: string): string {
  if (channel === "telegram") return visible(markup);
  const text = markup.replaceAll("*", "").replaceAll(` (${LINK})`, "");
  return channel === "slack"
    ? text.replaceAll(`<${LINK}|`, "").replaceAll(">", "").replaceAll("&amp;", "&")
    : text;
}

/**
 * Replies of one kind of content whose largest count on `channel` is `units`, with the text they show.
 * Written from each platform's markup: Telegram counts the text inside the tags, mrkdwn and WhatsApp the
 * two asterisks of bold; Slack sends `&` as `&amp;` (5 units), WhatsApp as is; a link is `label (url)` in
 * plain text and WhatsApp, `<url|label>` in mrkdwn, three units besides the label and the URL either way.
 */
const FILLERS: Record<string, (channel: ChannelName, units: number) => { html: string; text: string }> = {
  letters: (_channel, units) => ({ html: "a".repeat(units), text: "a".repeat(units) }),
  emoji: (_channel, units) => {
    const text = "😀".repeat(units >> 1) + "a".repeat(units & 1);
    return { html: text, text };
  },
  bold: (channel, units) => {
    const text = "a".repeat(channel === "telegram" ? units : units - 2);
    return { html: `<b>${text}</b>`, text };
  },
  ampersands: (channel, units) => {
    const count = channel === "slack" ? Math.floor(units / 5) : units;
    const rest = "a".repeat(channel === "slack" ? units % 5 : 0);
    return { html: "&amp;".repeat(count) + rest, text: "&".repeat(count) + rest };
  },
  link: (_channel, units) => {
    const text = "a".repeat(units - LINK.length - 3);
    return { html: `<a href="${LINK}">${text}</a>`, text };
  },
};

const BOUNDARIES = (Object.keys(DOCUMENTED_LIMITS) as ChannelName[]).flatMap((channel) =>
  Object.keys(FILLERS).map((filler) => [channel, filler] as const),
);

describe("at the documented limit", () => {
  it.each(BOUNDARIES)("%s, %s: exactly the limit is one part", (channel, filler) => {
    const limit = DOCUMENTED_LIMITS[channel];
    const { html, text } = FILLERS[filler]!(channel, limit);
    const parts = formatReply(html, channel);
    expect(parts).toHaveLength(1);
    expect(largest(channel, parts[0]!)).toBe(limit);
    expect(shown(channel, parts[0]!.text)).toBe(text);
  });

  it.each(BOUNDARIES)("%s, %s: one unit more is two parts, nothing lost", (channel, filler) => {
    const limit = DOCUMENTED_LIMITS[channel];
    const { html, text } = FILLERS[filler]!(channel, limit + 1);
    const parts = formatReply(html, channel);
    expect(parts).toHaveLength(2);
    for (const part of parts) expect(largest(channel, part)).toBeLessThanOrEqual(limit);
    expect(parts.map((part) => shown(channel, part.text)).join("")).toBe(text);
  });
});

describe("splitting", () => {
  it("keeps a reply that fits in one part", () => {
    expect(formatReply("<p>short</p>", "whatsapp")).toHaveLength(1);
  });

  it("cuts at a paragraph boundary first", () => {
    const first = `${sentence(500)} ${sentence(500)}`;
    const second = `${sentence(500, "b")} ${sentence(300, "b")}`;
    const parts = formatReply(`<p>${first}</p><p>${second}</p>`, "whatsapp");
    expect(parts.map((part) => part.text)).toEqual([first, second]);
  });

  it("then at a line, then a sentence, then a word boundary", () => {
    const line = `${sentence(900)}<br>${sentence(900, "b")}`;
    expect(formatReply(line, "whatsapp").map((part) => part.text)).toEqual([
      sentence(900),
      sentence(900, "b"),
    ]);

    const sentences = `${sentence(900)} ${sentence(900, "b")}`;
    expect(formatReply(sentences, "whatsapp").map((part) => part.text)).toEqual([
      sentence(900),
      sentence(900, "b"),
    ]);

    const words = Array.from({ length: 400 }, () => "word").join(" ");
    const parts = formatReply(words, "whatsapp");
    expect(parts).toHaveLength(2);
    for (const part of parts) expect(part.text).toMatch(/^word( word)*$/);
  });

  it("hard-cuts an unbreakable run, never inside a surrogate pair", () => {
    const emoji = "😀".repeat(1000); // 2000 UTF-16 units
    const parts = formatReply(emoji, "whatsapp");
    expect(parts.map((part) => part.text.length)).toEqual([1600, 400]);
    expect(parts.map((part) => part.text).join("")).toBe(emoji);
  });

  it("closes formatting at a cut and re-opens it in the next part", () => {
    const bold = Array.from({ length: 1000 }, () => "word").join(" ");
    for (const channel of ["telegram", "slack", "whatsapp"] as const) {
      const parts = formatReply(`<b>${bold}</b>`, channel);
      expect(parts.length).toBeGreaterThan(1);
      for (const part of parts) {
        if (channel === "telegram") expect(part.text).toMatch(/^<b>word( word)*<\/b>$/);
        else expect(part.text).toMatch(/^\*word( word)*\*$/);
      }
    }
  });

  it("splits a long code block between lines and keeps indentation", () => {
    const code = Array.from({ length: 300 }, (_, i) => `    line(${i}) < x && y;`).join("\n");
    const parts = formatReply(
      `<pre><code class="language-js">${code.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</code></pre>`,
      "telegram",
    );
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) {
      expect(part.text).toMatch(/^<pre><code class="language-js"> {4}line\(\d+\)[\s\S]*<\/code><\/pre>$/);
    }
    expect(parts.map((part) => visible(part.text)).join("\n")).toBe(code);
  });

  it("counts Telegram's limit on the text after entity parsing", () => {
    const text = "&".repeat(4000); // 4000 visible characters, 20000 characters of markup
    const parts = formatText(text, "telegram");
    expect(parts).toHaveLength(1);
    expect(parts[0]!.text).toHaveLength(20_000);
  });

  it("counts Slack's limit on the escaped markup", () => {
    const parts = formatText("&".repeat(1000), "slack");
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.text.length).toBeLessThanOrEqual(DOCUMENTED_LIMITS.slack);
    expect(parts.map((part) => part.text).join("")).toBe("&amp;".repeat(1000));
  });

  it("keeps each plain fallback within the limit too", () => {
    const links = Array.from(
      { length: 200 },
      (_, i) => `<a href="https://example.com/page/${i}">page ${i}</a>`,
    );
    for (const channel of ["telegram", "slack", "whatsapp"] as const) {
      for (const part of formatReply(links.join(" "), channel)) {
        expect(part.plain.length).toBeLessThanOrEqual(DOCUMENTED_LIMITS[channel]);
      }
    }
  });

  it("never leaves a list bullet alone at the end of a part", () => {
    const items = Array.from({ length: 200 }, (_, i) => `<li>item number ${i} with some words</li>`);
    for (const part of formatReply(`<ul>${items.join("")}</ul>`, "whatsapp")) {
      expect(part.text).toMatch(/^• item number \d+[\s\S]*with some words$/);
    }
  });
});

/**
 * The splitter on its own, at limits small enough to read the parts: WhatsApp's markup (it counts its
 * markers, `*bold*`), and Telegram's for code blocks (it counts only the text, so `<pre>` shows for free).
 */
const whatsappOf = (limit: number): ReplyFormat => ({
  limit,
  markup: whatsappDialect,
  plain: plainDialect,
  countsMarkup: true,
});
const telegramOf = (limit: number): ReplyFormat => ({
  limit,
  markup: telegramDialect,
  plain: plainDialect,
  countsMarkup: false,
});
const CODE_BLOCK: Mark = { kind: "pre", language: "" };

/** The parts' markup when `reply` (unformatted text, or runs) is cut to `format`. */
function cut(format: ReplyFormat, reply: string | Run[]): string[] {
  const runs = typeof reply === "string" ? [{ text: reply, marks: [] }] : reply;
  return splitRuns(runs, format).map((part) => part.text);
}

describe("where a part ends (limit 20: more than half full is past offset 10)", () => {
  it.each([
    [
      "the last paragraph break, before a later line break",
      "aaaaaaaaaaaa\n\nbb\ncc ddddddd",
      ["aaaaaaaaaaaa", "bb\ncc ddddddd"],
    ],
    [
      "a paragraph break at half is too early",
      "aaaaaaaaaa\n\nbbbbb\nccccccccccc",
      ["aaaaaaaaaa\n\nbbbbb", "ccccccccccc"],
    ],
    [
      "a paragraph break one past half",
      "aaaaaaaaaaa\n\nbbbb\nccccccccccc",
      ["aaaaaaaaaaa", "bbbb\nccccccccccc"],
    ],
    [
      "a line break at half is too early",
      "aaaaaaaaaa\nbbbbb. ccccccccccc",
      ["aaaaaaaaaa\nbbbbb.", "ccccccccccc"],
    ],
    ["a line break one past half", "aaaaaaaaaaa\nbbbb. ccccccccccc", ["aaaaaaaaaaa", "bbbb. ccccccccccc"]],
    [
      "a line break at the limit, before a sentence end",
      "aaaaaaaaaaaaaa. aaa\nbbb",
      ["aaaaaaaaaaaaaa. aaa", "bbb"],
    ],
    [
      "the last sentence end, before a later word break",
      "aaaaaaaaaaa. b. cc ddddd",
      ["aaaaaaaaaaa. b.", "cc ddddd"],
    ],
    [
      "a sentence end at half is too early: the last word break",
      "aaaaaaaaa. bbbbbbbb ccccc",
      ["aaaaaaaaa. bbbbbbbb", "ccccc"],
    ],
    ["a sentence end one past half", "aaaaaaaaaa. bbbbbbb ccccc", ["aaaaaaaaaa.", "bbbbbbb ccccc"]],
    ["the last word break", "aaa bbb ccc ddd eee fff ggg", ["aaa bbb ccc ddd eee", "fff ggg"]],
    ["a hard cut at the limit without a break", "a".repeat(45), ["a".repeat(20), "a".repeat(20), "aaaaa"]],
    ["whitespace at a cut dropped", "aaaaaaaaaaaaaaa   \n\n  bbb", ["aaaaaaaaaaaaaaa", "bbb"]],
  ])("%s", (_name, text, parts) => {
    expect(cut(whatsappOf(20), text)).toEqual(parts);
  });
});

describe("a list item's bullet or number stays with its text (limit 20)", () => {
  it.each([
    [
      "a bullet at the start of a reply longer than the look-behind",
      `• ${"a".repeat(45)}`,
      [`• ${"a".repeat(18)}`, "a".repeat(20), "a".repeat(7)],
    ],
    [
      "a bullet after a line break",
      "ab cd\n• xxxxxxxxxxxxxxxxxxxxxxx",
      ["ab cd", "• xxxxxxxxxxxxxxxxxx", "xxxxx"],
    ],
    [
      "an indented number of two digits",
      "ab cd\n  12. xxxxxxxxxxxxxxxxxx",
      ["ab cd", "12. xxxxxxxxxxxxxxxx", "xx"],
    ],
    [
      "a bullet 45 characters into the reply",
      `${"a".repeat(45)} bb\n• ${"x".repeat(25)}`,
      ["a".repeat(20), "a".repeat(20), "aaaaa bb", `• ${"x".repeat(18)}`, "x".repeat(7)],
    ],
    [
      "a sentence end inside the item is a break",
      "• abcdefghi. jkl mnopqrstuv",
      ["• abcdefghi.", "jkl mnopqrstuv"],
    ],
  ])("%s", (_name, text, parts) => {
    expect(cut(whatsappOf(20), text)).toEqual(parts);
  });
});

describe("surrogate pairs at a hard cut", () => {
  // U+10000 and U+10FFFF: the lowest and highest halves of a pair (D800 DC00, DBFF DFFF).
  it.each(["😀", "\u{10000}", "\u{10FFFF}"])("%s × 3 in 5 units: two, then one", (emoji) => {
    expect(cut(whatsappOf(5), emoji.repeat(3))).toEqual([emoji.repeat(2), emoji]);
  });

  // U+E000, just above the surrogates, and U+FFFD, which stands in for a lone surrogate (index.ts).
  it.each(["\uE000", "\uFFFD"])("%s at the cut is a character of its own", (char) => {
    expect(cut(whatsappOf(5), `aaaaa${char}bb`)).toEqual(["aaaaa", `${char}bb`]);
  });

  it("moves back out of a pair where the markup makes the whole window too long", () => {
    expect(cut(whatsappOf(9), [{ text: "😀".repeat(5), marks: [BOLD] }])).toEqual(["*😀😀😀*", "*😀😀*"]);
  });

  it("sends a character that alone is over the limit on its own, a pair whole", () => {
    expect(cut(whatsappOf(1), "😀a")).toEqual(["😀", "a"]);
    expect(cut(whatsappOf(3), [{ text: "😀a", marks: [BOLD] }])).toEqual(["*😀*", "*a*"]);
    const slack = { limit: 4, markup: slackDialect, plain: slackPlainDialect, countsMarkup: true };
    expect(cut(slack, "&&&")).toEqual(["&amp;", "&amp;", "&amp;"]);
  });
});

describe("formatting at a cut", () => {
  it("ends a part where formatting begins without opening it", () => {
    expect(
      cut(whatsappOf(6), [
        { text: "aaaa", marks: [] },
        { text: " bbbb", marks: [BOLD] },
      ]),
    ).toEqual(["aaaa", "*bbbb*"]);
  });

  it("keeps the indentation of a code block that begins at a cut", () => {
    const runs = [
      { text: "texts\n", marks: [] },
      { text: "    code", marks: [CODE_BLOCK] },
    ];
    expect(cut(telegramOf(9), runs)).toEqual(["texts", "<pre>    code</pre>"]);
  });

  it("keeps the indentation of a code line longer than the limit", () => {
    const codeParts = (text: string) => cut(telegramOf(10), [{ text, marks: [CODE_BLOCK] }]);
    expect(codeParts("abcdefgh\n   cccccccccccc")).toEqual([
      "<pre>abcdefgh</pre>",
      "<pre>   ccccccc</pre>",
      "<pre>ccccc</pre>",
    ]);
    expect(codeParts("ab\n   ccccccccccc")).toEqual([
      "<pre>ab</pre>",
      "<pre>   ccccccc</pre>",
      "<pre>cccc</pre>",
    ]);
  });

  it("makes no part of a code block's trailing indentation", () => {
    expect(cut(telegramOf(5), [{ text: "abcde\n     ", marks: [CODE_BLOCK] }])).toEqual(["<pre>abcde</pre>"]);
  });
});

describe("what finding a part costs", () => {
  /** Slack's format whose markup counts its renders (one escape per render of a single unformatted run). */
  function countingSlack(limit: number) {
    const counter = { renders: 0 };
    const markup: Dialect = {
      ...slackDialect,
      escape: (text, marks) => {
        counter.renders++;
        return slackDialect.escape(text, marks);
      },
    };
    return { counter, format: { limit, markup, plain: slackPlainDialect, countsMarkup: true } };
  }

  it("markup five times the text: the whole window, then its interpolated end, two renders a part", () => {
    const { counter, format } = countingSlack(3000);
    const parts = cut(format, "&".repeat(10_000));
    // Interpolation lands on 588 "&amp;", 2,940 units: within 2 % of the limit, so the search stops there.
    for (const part of parts.slice(0, -1)) expect(part.length).toBeGreaterThanOrEqual(2940);
    expect(counter.renders).toBeLessThanOrEqual(2 * parts.length);
  });
});
