/**
 * Issue 24: formatting costs time linear in the reply, whatever its shape (a reply may echo what a user
 * wrote). No timings here: each input is a size at which the quadratic code took tens of seconds to
 * minutes, so before the fix these tests ran into the test timeout; the assertions check the outcome.
 */
import { describe, expect, it } from "vitest";
import { plainDialect } from "../../src/format/plain.js";
import { splitRuns } from "../../src/format/split.js";
import { telegramDialect } from "../../src/format/telegram.js";
import { type ChannelName, formatReply } from "../support/format.js";

const visible = (html: string, channel: ChannelName = "telegram") =>
  formatReply(html, channel)
    .map((part) => part.plain)
    .join("");
const withoutWhitespace = (text: string) => text.replace(/\s+/g, "");

describe("Markdown", () => {
  it.each([
    ["[a](", 40_000], // 160 KB: 184 s before (the URL scan ran to the end from every "[")
    ["[x](y", 40_000],
  ])("%j × %i stays literal text", (unit, count) => {
    const reply = unit.repeat(count);
    expect(visible(reply)).toBe(reply);
  });

  it('"*[a](" × 50,000: the italics are read, the links stay literal', () => {
    expect(visible("*[a](".repeat(50_000))).toBe("[a](".repeat(50_000));
  });

  it("a link is still found after 40,000 unfinished ones", () => {
    const parts = formatReply(`${"[a](".repeat(40_000)} [docs](https://example.com/docs)`, "telegram");
    expect(parts.at(-1)?.text).toContain('<a href="https://example.com/docs">docs</a>');
  });

  it('"[" × 200,000, a long label, then "](": the label\'s "[" is looked up once', () => {
    const reply = `${"[".repeat(200_000)}${"a".repeat(200_000)}](https://example.com)`;
    const text = formatReply(reply, "telegram")
      .map((part) => part.text)
      .join("");
    expect(text).toContain('<a href="https://example.com">');
    expect(withoutWhitespace(visible(reply))).toContain("a".repeat(4000));
  });

  it("backtick runs of every length 1…1,500 (1.1 MB) stay literal", () => {
    let reply = "";
    for (let length = 1; length <= 1500; length++) reply += `${"`".repeat(length)} x `;
    const parts = formatReply(reply, "telegram");
    expect(parts.some((part) => part.text.includes("<code>"))).toBe(false);
    expect(withoutWhitespace(parts.map((part) => part.plain).join(""))).toBe(withoutWhitespace(reply));
  });

  it('"```", 500,000 spaces and "!" on one line stays literal (64 KB took 3 s before: backtracking)', () => {
    const reply = `\`\`\`${" ".repeat(500_000)}!\nafter`;
    expect(withoutWhitespace(visible(reply))).toBe("```!after");
  });

  it("a fence with spaces around it and its language is still a code block", () => {
    const text = formatReply("  ```  python  \nprint(1)\n  ```  ", "telegram")
      .map((part) => part.text)
      .join("");
    expect(text).toContain("print(1)");
    expect(text).toContain("<pre>");
  });

  it('200,000 "````x" fence lines before 200,000 "```" lines (2 MB: 53 s before)', () => {
    const reply = `${"````x\n".repeat(200_000)}${"```\n".repeat(200_000)}`;
    // Each "```" pair is an empty code block (dropped); the "````" runs pair up into code blocks whose
    // first line "x" is their language, so every second line's "x" remains.
    const plain = visible(reply);
    expect(plain.match(/x/g)).toHaveLength(100_000);
  });

  it("300,000 code spans (1.2 MB) are formatted: their nodes overflowed push's arguments", () => {
    const parts = formatReply("`a` ".repeat(300_000), "telegram");
    expect(parts[0]?.text.startsWith("<code>a a")).toBe(true);
    expect(
      parts
        .map((part) => part.plain)
        .join("")
        .match(/a/g),
    ).toHaveLength(300_000);
  });
});

describe("HTML nesting", () => {
  it('"<b>" × 100,000, then "</i>" × 100,000, is its text (htmlparser2 searched its whole stack each time)', () => {
    expect(formatReply(`${"<b>".repeat(100_000)}deep${"</i>".repeat(100_000)}`, "telegram")).toEqual([
      { text: "deep", plain: "deep" },
    ]);
  });

  it.each([
    ["<pre>", 100_000],
    ["<blockquote>", 100_000],
    ["<ul><li>x", 200_000], // 60 s before
    // A control character other than htmlparser2's whitespace is part of the tag's name: an unknown tag
    // that nothing closes, whatever the name before it (80,000 took 0.76 s while the guard disagreed).
    ["<a\u000b>", 800_000],
    ["<br\u0001>", 800_000],
  ])("%j nested %i deep is read as text", (unit, depth) => {
    const reply = `${unit.repeat(depth)}end`;
    const plain = withoutWhitespace(visible(reply, "slack"));
    expect(plain.endsWith("end")).toBe(true);
    expect(plain).not.toContain("<");
  });

  it("a nesting of 250 keeps its formatting; past 256 the text is kept, entities decoded", () => {
    expect(formatReply(`<b>${"<div>".repeat(250)}bold &amp; more`, "telegram")).toEqual([
      { text: "<b>bold &amp; more</b>", plain: "bold & more" },
    ]);
    expect(formatReply(`<b>${"<div>".repeat(300)}bold &amp; more`, "telegram")).toEqual([
      { text: "bold &amp; more", plain: "bold & more" },
    ]);
  });

  it("sloppy but flat HTML (unclosed <p> and <li>, 1,000 each) keeps its formatting", () => {
    const reply = `<ul>${"<li><b>item</b>".repeat(1000)}</ul>${"<p>para".repeat(1000)}`;
    const text = formatReply(reply, "telegram")
      .map((part) => part.text)
      .join("");
    expect(text.match(/<b>item<\/b>/g)).toHaveLength(1000);
  });
});

describe("splitting", () => {
  it("32 million characters without a blank line split into parts (a backward search per part ran to the start)", () => {
    const text = "a\n".repeat(16_000_000);
    const parts = splitRuns([{ text, marks: [] }], {
      limit: 4096,
      markup: telegramDialect,
      plain: plainDialect,
      countsMarkup: false,
    });
    expect(parts.length).toBeGreaterThan(7800);
    expect(parts.every((part) => part.plain.length <= 4096)).toBe(true);
    expect(parts.map((part) => part.plain).join("\n")).toBe(text.trimEnd());
  });
});
