import { describe, expect, it } from "vitest";
import { checkTelegramHtml } from "../support/telegram-html.js";

describe("checkTelegramHtml", () => {
  it.each([
    ["plain text", "hello", "hello"],
    ["entities", "a &lt;b&gt; &amp; &quot;c&quot; &#65;&#x42;", 'a <b> & "c" AB'],
    [
      "styles",
      "<b>b <i>i <u>u <s>s</s></u></i></b> <strong>x</strong><em>y</em><ins>z</ins><del>w</del>",
      "b i u s xyzw",
    ],
    ["link", '<a href="https://x.com/?a=1&amp;b=&quot;2&quot;">x</a>', "x"],
    ["code", "<code>a &lt; b</code>", "a < b"],
    ["pre with language", '<pre><code class="language-python">x = 1</code></pre>', "x = 1"],
    ["blockquote", "<blockquote>q\n<b>bold</b></blockquote>", "q\nbold"],
    ["expandable blockquote", "<blockquote expandable>q</blockquote>", "q"],
    ["spoiler", '<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st"],
    ["styles inside a link", '<a href="https://x.com"><b>x</b></a>', "x"],
  ])("accepts %s", (_name, html, visible) => {
    expect(checkTelegramHtml(html)).toEqual({ ok: true, visibleText: visible });
  });

  it.each([
    ["<br>", "a<br>b", 'Unsupported start tag "br"'],
    ["<p>", "<p>a</p>", 'Unsupported start tag "p"'],
    ["an unclosed tag", "<b>a", 'Can\'t find end tag corresponding to start tag "b"'],
    ["bad nesting", "<b><i>a</b></i>", 'expected "</i>", found "</b>"'],
    ["a stray end tag", "a</b>", 'Unexpected end tag "b"'],
    ["a bare &", "a & b", "Character '&' is reserved"],
    ["an unknown named entity", "a &nbsp; b", "Character '&' is reserved"],
    ["a bare <", "a < b", "Unclosed start tag"],
    ["a bare >", "a > b", "Character '>' is reserved"],
    ["an attribute where none is allowed", '<b class="x">a</b>', 'Unsupported attribute "class"'],
    ["a language on standalone code", '<code class="language-js">a</code>', 'Unsupported attribute "class"'],
    ["a link without href", "<a>a</a>", 'Tag "a" must have an href'],
    ["nested blockquotes", "<blockquote>a<blockquote>b</blockquote></blockquote>", 'Tag "blockquote" can\'t'],
    ["formatting inside code", "<code><b>a</b></code>", 'Tag "b" can\'t be inside tag "code"'],
    ["code inside formatting", "<b><code>a</code></b>", 'Tag "code" can\'t be inside tag "b"'],
    [
      "a link inside a link",
      '<a href="https://a"><a href="https://b">x</a></a>',
      'Tag "a" can\'t be inside tag "a"',
    ],
  ])("rejects %s", (_name, html, message) => {
    const result = checkTelegramHtml(html);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error).toMatch(/^Bad Request: can't parse entities: .* at byte offset \d+$/);
      expect(result.error).toContain(message);
    }
  });

  it("reports the UTF-8 byte offset like Telegram", () => {
    expect(checkTelegramHtml("é<p>")).toEqual({
      ok: false,
      error: `Bad Request: can't parse entities: Unsupported start tag "p" at byte offset 2`,
    });
  });

  it("rejects an empty message", () => {
    expect(checkTelegramHtml("<b> </b>")).toEqual({ ok: false, error: "Bad Request: message text is empty" });
  });
});
