import { describe, expect, it } from "vitest";
import { type ChannelName, formatReply, formatText } from "../support/format.js";
import { checkTelegramHtml } from "../support/telegram-html.js";

/** The single part's markup; also checks every Telegram result against Telegram's rules. */
function render(html: string, channel: ChannelName): string {
  const parts = formatReply(html, channel);
  expect(parts).toHaveLength(1);
  const text = parts[0]!.text;
  if (channel === "telegram") expect(checkTelegramHtml(text)).toMatchObject({ ok: true });
  return text;
}

interface Row {
  name: string;
  html: string;
  telegram: string;
  slack: string;
  whatsapp: string;
}

// One row per markup rule of each channel (and the details users expect from each).
// biome-ignore format: one row per line reads as a table
const DESIGN_TABLE: Row[] = [
  { name: "text escaping", html: "a &lt; b &amp;&amp; c &gt; d", telegram: "a &lt; b &amp;&amp; c &gt; d", slack: "a &lt; b &amp;&amp; c &gt; d", whatsapp: "a < b && c > d" },
  { name: "br", html: "one<br>two<br/>three", telegram: "one\ntwo\nthree", slack: "one\ntwo\nthree", whatsapp: "one\ntwo\nthree" },
  { name: "p and div", html: "<p>one</p><p>two</p><div>three</div>", telegram: "one\n\ntwo\n\nthree", slack: "one\n\ntwo\n\nthree", whatsapp: "one\n\ntwo\n\nthree" },
  { name: "bold", html: "<b>a</b> and <strong>b</strong>", telegram: "<b>a</b> and <b>b</b>", slack: "*a* and *b*", whatsapp: "*a* and *b*" },
  { name: "italic", html: "<i>a</i> and <em>b</em>", telegram: "<i>a</i> and <i>b</i>", slack: "_a_ and _b_", whatsapp: "_a_ and _b_" },
  { name: "strike", html: "<s>a</s>, <del>b</del>, <strike>c</strike>", telegram: "<s>a</s>, <s>b</s>, <s>c</s>", slack: "~a~, ~b~, ~c~", whatsapp: "~a~, ~b~, ~c~" },
  { name: "underline", html: "<u>a</u> <ins>b</ins>", telegram: "<u>a b</u>", slack: "a b", whatsapp: "a b" },
  { name: "link", html: '<a href="https://x.com/?a=1&amp;b=2">site</a>', telegram: '<a href="https://x.com/?a=1&amp;b=2">site</a>', slack: "<https://x.com/?a=1&amp;b=2|site>", whatsapp: "site (https://x.com/?a=1&b=2)" },
  { name: "link whose text is the URL", html: '<a href="https://x.com/a">https://x.com/a</a>', telegram: '<a href="https://x.com/a">https://x.com/a</a>', slack: "<https://x.com/a>", whatsapp: "https://x.com/a" },
  { name: "link with a quote and a pipe", html: `<a href='https://x.com/"a"|b'>a|b</a>`, telegram: '<a href="https://x.com/&quot;a&quot;|b">a|b</a>', slack: '<https://x.com/"a"%7Cb|a¦b>', whatsapp: 'a|b (https://x.com/"a"|b)' },
  { name: "unsafe and empty links", html: '<a href="javascript:alert(1)">a</a> <a href="">b</a> <a>c</a>', telegram: "a b c", slack: "a b c", whatsapp: "a b c" },
  { name: "inline code", html: "<code>a &lt; b &amp; *c*</code>", telegram: "<code>a &lt; b &amp; *c*</code>", slack: "`a &lt; b &amp; *c*`", whatsapp: "`a < b & *c*`" },
  {
    name: "pre",
    html: "<pre>\nif (a &lt; b &amp;&amp; *p) {\n  x();\n}\n</pre>",
    telegram: "<pre>if (a &lt; b &amp;&amp; *p) {\n  x();\n}</pre>",
    slack: "```if (a &lt; b &amp;&amp; *p) {\n  x();\n}```",
    whatsapp: "```if (a < b && *p) {\n  x();\n}```",
  },
  { name: "pre with a language", html: '<pre><code class="language-python">print("*")</code></pre>', telegram: '<pre><code class="language-python">print("*")</code></pre>', slack: '```print("*")```', whatsapp: '```print("*")```' },
  { name: "unordered list", html: "<ul><li>a</li><li>b</li></ul>", telegram: "• a\n• b", slack: "• a\n• b", whatsapp: "• a\n• b" },
  { name: "ordered list", html: "<ol><li>a</li><li>b</li></ol><ol start='7'><li>c</li></ol>", telegram: "1. a\n2. b\n\n7. c", slack: "1. a\n2. b\n\n7. c", whatsapp: "1. a\n2. b\n\n7. c" },
  { name: "nested lists", html: "<ul><li>a<ol><li>b<ul><li>c</li></ul></li></ol></li><li>d</li></ul>", telegram: "• a\n  1. b\n    • c\n• d", slack: "• a\n  1. b\n    • c\n• d", whatsapp: "• a\n  1. b\n    • c\n• d" },
  { name: "headings", html: "<h1>Title</h1><p>text</p><h3>Sub <b>bold</b></h3>", telegram: "<b>Title</b>\n\ntext\n\n<b>Sub bold</b>", slack: "*Title*\n\ntext\n\n*Sub bold*", whatsapp: "*Title*\n\ntext\n\n*Sub bold*" },
  { name: "blockquote", html: "<p>a</p><blockquote>q1<br>q2</blockquote><p>b</p>", telegram: "a\n\n<blockquote>q1\nq2</blockquote>\n\nb", slack: "a\n\n> q1\n> q2\n\nb", whatsapp: "a\n\n> q1\n> q2\n\nb" },
  { name: "nested blockquote, flattened", html: "<blockquote>a<blockquote><b>b</b></blockquote></blockquote>", telegram: "<blockquote>a\n\n<b>b</b></blockquote>", slack: "> a\n\n> *b*", whatsapp: "> a\n\n> *b*" },
  { name: "hr", html: "<p>a</p><hr><p>b</p>", telegram: "a\n\n———\n\nb", slack: "a\n\n———\n\nb", whatsapp: "a\n\n———\n\nb" },
  { name: "bold URL as link text", html: '<a href="https://x.com"><b>https://x.com</b></a>', telegram: '<a href="https://x.com">https://x.com</a>', slack: "<https://x.com>", whatsapp: "https://x.com" },
  { name: "item with only a nested list", html: "<ol><li><ul><li>a</li></ul></li><li></li><li>b</li></ol>", telegram: "1.\n  • a\n3. b", slack: "1.\n  • a\n3. b", whatsapp: "1.\n  • a\n3. b" },
  { name: "img", html: '<img src="https://x.com/i.png" alt="A cat">', telegram: '<a href="https://x.com/i.png">A cat</a>', slack: "<https://x.com/i.png|A cat>", whatsapp: "A cat (https://x.com/i.png)" },
  { name: "img without alt", html: '<img src="https://x.com/i.png">', telegram: '<a href="https://x.com/i.png">https://x.com/i.png</a>', slack: "<https://x.com/i.png>", whatsapp: "https://x.com/i.png" },
  { name: "entities", html: "a&nbsp;b &#169; &#x1F600; &eacute; &quot;q&quot;", telegram: 'a b © 😀 é "q"', slack: 'a b © 😀 é "q"', whatsapp: 'a b © 😀 é "q"' },
  { name: "unknown tags keep their children", html: "<span>a</span> <font color=red><b>b</b></font> <custom-tag>c</custom-tag>", telegram: "a <b>b</b> c", slack: "a *b* c", whatsapp: "a *b* c" },
  {
    name: "script, style and head dropped",
    html: "<head><title>t</title></head><style>p{}</style><script>alert(1)</script><p>shown</p>",
    telegram: "shown",
    slack: "shown",
    whatsapp: "shown",
  },
  { name: "whitespace collapses like a browser", html: "  <p>\n  a   b\n\tc  </p>\n\n <p> d </p> ", telegram: "a b c\n\nd", slack: "a b c\n\nd", whatsapp: "a b c\n\nd" },
  { name: "spaces move outside markers", html: "x<b> bold </b>y", telegram: "x <b>bold</b> y", slack: "x *bold* y", whatsapp: "x *bold* y" },
  { name: "adjacent equal formatting merges", html: "<b>a</b> <b>b</b>", telegram: "<b>a b</b>", slack: "*a b*", whatsapp: "*a b*" },
  { name: "empty formatting disappears", html: "a<b></b><i> </i>b", telegram: "a b", slack: "a b", whatsapp: "a b" },
  { name: "code inside bold keeps only code", html: "<b>run <code>ls</code></b>", telegram: "<b>run</b> <code>ls</code>", slack: "*run* `ls`", whatsapp: "*run* `ls`" },
  { name: "backticks inside code", html: "<code>a`b</code>", telegram: "<code>a`b</code>", slack: "`aˋb`", whatsapp: "`aˋb`" },
  { name: "Slack control sequences stay text", html: "&lt;!channel&gt; &lt;@U123&gt;", telegram: "&lt;!channel&gt; &lt;@U123&gt;", slack: "&lt;!channel&gt; &lt;@U123&gt;", whatsapp: "<!channel> <@U123>" },
];

describe("formatReply renders each channel", () => {
  for (const channel of ["telegram", "slack", "whatsapp"] as const) {
    it.each(DESIGN_TABLE)(`${channel}: $name`, (row) => {
      expect(render(row.html, channel)).toBe(row[channel]);
    });
  }
});

// biome-ignore format: one row per line reads as a table
const MARKDOWN_TABLE: Row[] = [
  { name: "bold", html: "a **b** or __c__", telegram: "a <b>b</b> or <b>c</b>", slack: "a *b* or *c*", whatsapp: "a *b* or *c*" },
  { name: "italic", html: "a *b* or _c_", telegram: "a <i>b</i> or <i>c</i>", slack: "a _b_ or _c_", whatsapp: "a _b_ or _c_" },
  { name: "bold italic", html: "***x***", telegram: "<b><i>x</i></b>", slack: "*_x_*", whatsapp: "*_x_*" },
  { name: "not emphasis", html: "snake_case_name, 2 * 3 * 4, 2*3*4, a ** b, **unclosed, *", telegram: "snake_case_name, 2 * 3 * 4, 2*3*4, a ** b, **unclosed, *", slack: "snake_case_name, 2 * 3 * 4, 2*3*4, a ** b, **unclosed, *", whatsapp: "snake_case_name, 2 * 3 * 4, 2*3*4, a ** b, **unclosed, *" },
  { name: "inline code", html: "run `rm -rf *` and ``a`b``", telegram: "run <code>rm -rf *</code> and <code>a`b</code>", slack: "run `rm -rf *` and `aˋb`", whatsapp: "run `rm -rf *` and `aˋb`" },
  { name: "code is literal", html: "`**not bold**` and `[x](https://x.com)`", telegram: "<code>**not bold**</code> and <code>[x](https://x.com)</code>", slack: "`**not bold**` and `[x](https://x.com)`", whatsapp: "`**not bold**` and `[x](https://x.com)`" },
  { name: "link", html: "see [the **docs**](https://x.com/a_(b)).", telegram: 'see <a href="https://x.com/a_(b)">the <b>docs</b></a>.', slack: "see <https://x.com/a_(b)|the *docs*>.", whatsapp: "see the *docs* (https://x.com/a_(b))." },
  { name: "malformed or unsafe link", html: "[a](javascript:x) [b] (c) [d](no spaces allowed)", telegram: "[a](javascript:x) [b] (c) [d](no spaces allowed)", slack: "[a](javascript:x) [b] (c) [d](no spaces allowed)", whatsapp: "[a](javascript:x) [b] (c) [d](no spaces allowed)" },
  {
    name: "fence across <br>",
    html: "Code:<br>```js<br>if (a &lt; b &amp;&amp; *p) {}<br>```<br>Done",
    telegram: 'Code:\n\n<pre><code class="language-js">if (a &lt; b &amp;&amp; *p) {}</code></pre>\n\nDone',
    slack: "Code:\n\n```if (a &lt; b &amp;&amp; *p) {}```\n\nDone",
    whatsapp: "Code:\n\n```if (a < b && *p) {}```\n\nDone",
  },
  { name: "fence with raw newlines keeps indentation", html: "<p>```\ndef f():\n    return 1\n```</p>", telegram: "<pre>def f():\n    return 1</pre>", slack: "```def f():\n    return 1```", whatsapp: "```def f():\n    return 1```" },
  { name: "unclosed fence is literal", html: "```js<br>x", telegram: "```js\nx", slack: "```js\nx", whatsapp: "```js\nx" },
  { name: "mixed HTML and Markdown", html: "<p><b>Price</b>: **$5** per *item*</p><ul><li>see [site](https://x.com)</li><li><i>note</i> `code`</li></ul>", telegram: '<b>Price</b>: <b>$5</b> per <i>item</i>\n\n• see <a href="https://x.com">site</a>\n• <i>note</i> <code>code</code>', slack: "*Price*: *$5* per _item_\n\n• see <https://x.com|site>\n• _note_ `code`", whatsapp: "*Price*: *$5* per _item_\n\n• see site (https://x.com)\n• _note_ `code`" },
  { name: "no Markdown inside HTML code", html: "<code>**a**</code><pre>_b_ [c](https://x.com)</pre>", telegram: "<code>**a**</code>\n\n<pre>_b_ [c](https://x.com)</pre>", slack: "`**a**`\n\n```_b_ [c](https://x.com)```", whatsapp: "`**a**`\n\n```_b_ [c](https://x.com)```" },
];

describe("formatReply interprets Markdown inside text", () => {
  for (const channel of ["telegram", "slack", "whatsapp"] as const) {
    it.each(MARKDOWN_TABLE)(`${channel}: $name`, (row) => {
      expect(render(row.html, channel)).toBe(row[channel]);
    });
  }
});

describe("empty replies", () => {
  it.each([
    "",
    "   ",
    "\n\t",
    "<p> </p><br><br>",
    "<b></b>",
    "&nbsp;",
    "<script>x</script>",
    "<ul><li></li></ul>",
  ])("%j has no parts", (html) => {
    for (const channel of ["telegram", "slack", "whatsapp"] as const)
      expect(formatReply(html, channel)).toEqual([]);
  });
});

describe("plain fallback", () => {
  it("keeps link URLs and quotes, drops markup", () => {
    const html = '<p><b>Hi</b> <a href="https://x.com">site</a></p><blockquote>q &amp; a</blockquote>';
    expect(formatReply(html, "telegram")[0]!.plain).toBe("Hi site (https://x.com)\n\n> q & a");
    expect(formatReply(html, "whatsapp")[0]!.plain).toBe("Hi site (https://x.com)\n\n> q & a");
    // Slack parses & < > even in plain text.
    expect(formatReply(html, "slack")[0]!.plain).toBe("Hi site (https://x.com)\n\n> q &amp; a");
  });
});

describe("formatText", () => {
  it("escapes literal text and interprets nothing", () => {
    const text = "Sorry <b>, **not** & [x](https://x.com)\n\n  second";
    expect(formatText(text, "telegram")).toEqual([
      { text: "Sorry &lt;b&gt;, **not** &amp; [x](https://x.com)\n\n  second", plain: text },
    ]);
    expect(formatText(text, "slack")[0]!.text).toBe(
      "Sorry &lt;b&gt;, **not** &amp; [x](https://x.com)\n\n  second",
    );
    expect(formatText(text, "whatsapp")[0]!.text).toBe(text);
  });

  it("returns no parts for blank text", () => {
    expect(formatText(" \n ", "telegram")).toEqual([]);
  });
});
