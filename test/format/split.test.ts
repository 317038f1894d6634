import { describe, expect, it } from "vitest";
import { type ChannelName, DOCUMENTED_LIMITS, formatReply, formatText } from "../support/format.js";
import { checkTelegramHtml } from "../support/telegram-html.js";

const visible = (markup: string) => {
  const checked = checkTelegramHtml(markup);
  if (!checked.ok) throw new Error(checked.error);
  return checked.visibleText;
};

/** A sentence of exactly `length` characters ending with a period. */
const sentence = (length: number, letter = "a") => `${letter.repeat(length - 1)}.`;

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

  it("fills a part up to the channel's documented limit, not a shorter one", () => {
    for (const [channel, limit] of Object.entries(DOCUMENTED_LIMITS) as [ChannelName, number][]) {
      const parts = formatText("x".repeat(limit + 1), channel);
      expect(
        parts.map((part) => part.text.length),
        channel,
      ).toEqual([limit, 1]);
    }
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
