/**
 * Quickchat reply HTML → a small document tree.
 *
 * Parsed with htmlparser2 rather than parse5: it is fast (a callback tokenizer, no full DOM or spec
 * tree-construction we would throw away), forgiving with the broken HTML LLM output produces (implied
 * closes, stray end tags), streams, and decodes entities (named and numeric) for us.
 */
import { Parser } from "htmlparser2";
import { safeUrl } from "./url.js";

export type Style = "bold" | "italic" | "underline" | "strike";

export type Node =
  /** Raw text as written: whitespace is collapsed later, Markdown is interpreted later. */
  | { type: "text"; text: string }
  | { type: "break" }
  | { type: "style"; style: Style; children: Node[] }
  | { type: "code"; text: string }
  | { type: "link"; href: string; children: Node[] }
  | { type: "paragraph" | "heading" | "quote"; children: Node[] }
  | { type: "list"; ordered: boolean; start: number; items: Node[][] }
  | { type: "codeBlock"; language: string; text: string }
  | { type: "rule" };

type ListNode = Extract<Node, { type: "list" }>;

const STYLE_TAGS: Record<string, Style> = {
  b: "bold",
  strong: "bold",
  i: "italic",
  em: "italic",
  cite: "italic",
  u: "underline",
  ins: "underline",
  s: "strike",
  del: "strike",
  strike: "strike",
};

const PARAGRAPH_TAGS = new Set([
  "p",
  "div",
  "section",
  "article",
  "header",
  "footer",
  "main",
  "nav",
  "aside",
  "figure",
  "figcaption",
  "address",
  "details",
  "summary",
  "center",
  "dl",
  "dt",
  "dd",
  "table",
  "tr",
  "caption",
  "form",
  "fieldset",
]);

/** Their content is not visible text. */
const DROPPED_TAGS = new Set(["script", "style", "head", "title", "template", "noscript", "iframe", "svg"]);

const HEADING = /^h[1-6]$/;
const MAX_NESTING = 64;
const LANGUAGE_CLASS = /(?:^|\s)(?:language|lang)-([\w#+.-]{1,32})(?:\s|$)/;

/** Where the children of an open element go. `code`/`pre` gather their whole subtree as text instead. */
interface Frame {
  tag: string;
  children: Node[];
  list?: ListNode;
  collector?: { text: string; language: string };
  finish?: () => void;
}

/**
 * Past this nesting the reply is read as text without its tags. htmlparser2 keeps its open elements in an
 * array it `unshift`s on every open tag and searches on every close tag, so each tag costs the current
 * depth: "<b>" × 40,000 took seconds. No real reply nests anywhere near this deep.
 */
const MAX_PARSED_NESTING = 256;

export function parseHtml(html: string): Node[] {
  return parseTree(nestingExceeds(html, MAX_PARSED_NESTING) ? withoutTags(html) : html);
}

function parseTree(html: string): Node[] {
  const root: Node[] = [];
  const stack: Frame[] = [{ tag: "", children: root }];
  const top = () => stack[stack.length - 1]!;
  /**
   * How many frames of each tag are open: a close tag nothing matches is dropped without searching the
   * stack ("<b>" × n then "</i>" × n searched n frames n times).
   */
  const open = new Map<string, number>();
  const push = (frame: Frame) => {
    stack.push(frame);
    open.set(frame.tag, (open.get(frame.tag) ?? 0) + 1);
  };

  const parser = new Parser(
    {
      onopentag(tag, attributes) {
        // Deeper elements are flattened into their ancestor, so hostile nesting cannot exhaust the stack.
        const tooDeep = stack.length > MAX_NESTING && !top().collector;
        push(tooDeep ? transparent(tag, top()) : openFrame(tag, attributes, top()));
      },
      ontext(text) {
        const frame = top();
        if (frame.collector) frame.collector.text += text;
        else appendText(frame, text);
      },
      onclosetag(tag) {
        if (!open.get(tag)) return;
        // Every frame searched past is popped below: the search costs no more than the pushes did.
        const index = stack.findLastIndex((frame) => frame.tag === tag);
        while (stack.length > index) {
          const frame = stack.pop()!;
          open.set(frame.tag, open.get(frame.tag)! - 1);
          frame.finish?.();
        }
      },
    },
    { decodeEntities: true },
  );
  parser.write(html);
  parser.end();
  return root;
}

/** Void elements never stay open (htmlparser2's list). */
const VOID_TAGS = new Set(
  "area base basefont br col command embed frame hr img input isindex keygen link meta param source track wbr".split(
    " ",
  ),
);
const PARAGRAPH_CLOSERS = [
  ..."address article aside blockquote details div dl fieldset figcaption figure footer form header hr main nav ol pre section table ul".split(
    " ",
  ),
  ..."h1 h2 h3 h4 h5 h6".split(" "),
];
/**
 * Open tags that close the element on top of the stack, a subset of what htmlparser2 closes (so the depth
 * counted below is never less than htmlparser2's): sloppy "<li>a<li>b" and "<p>a<p>b" stay flat.
 */
const IMPLIED_CLOSES = new Map<string, readonly string[]>([
  ["li", ["li"]],
  ["p", ["p"]],
  ["a", ["a"]],
  ["option", ["option"]],
  ["optgroup", ["optgroup", "option"]],
  ["dd", ["dd", "dt"]],
  ["dt", ["dd", "dt"]],
  ["tr", ["tr", "th", "td"]],
  ["th", ["th"]],
  ["td", ["th", "td"]],
  ["rt", ["rt", "rp"]],
  ["rp", ["rt", "rp"]],
  ...PARAGRAPH_CLOSERS.map((tag) => [tag, ["p"]] as const),
]);

const isLetter = (code: number) => (code | 0x20) >= 0x61 && (code | 0x20) <= 0x7a;
/**
 * What htmlparser2 reads as a tag name: up to its whitespace (space, \t, \n, \f, \r), "/" or ">". Any other
 * control character belongs to the name, so "<a\x0b>" is a tag of its own that nothing closes.
 */
const TAG_NAME_ENDS = new Set([0x20, 0x09, 0x0a, 0x0c, 0x0d, 0x2f, 0x3e]);
const endsTagName = (code: number) => TAG_NAME_ENDS.has(code) || Number.isNaN(code);

/**
 * Whether the open elements ever exceed `limit`: one linear pass that follows open and close tags the way
 * htmlparser2 does (a close tag pops everything above its element; one nothing matches is dropped), and
 * counts a little high rather than low (it does not know raw-text elements or every implied close).
 */
function nestingExceeds(html: string, limit: number): boolean {
  // A reply with no more tags than the limit cannot nest past it: the usual reply skips the pass below.
  let tags = 0;
  for (let at = html.indexOf("<"); at >= 0 && tags <= limit; at = html.indexOf("<", at + 1)) tags++;
  if (tags <= limit) return false;
  const stack: string[] = [];
  const open = new Map<string, number>();
  const pop = () => {
    const tag = stack.pop()!;
    open.set(tag, open.get(tag)! - 1);
  };
  for (let at = html.indexOf("<"); at >= 0; ) {
    const closing = html.charCodeAt(at + 1) === 0x2f;
    const start = at + (closing ? 2 : 1);
    let end = start;
    while (!endsTagName(html.charCodeAt(end))) end++;
    if (end > start && isLetter(html.charCodeAt(start))) {
      const tag = html.slice(start, end).toLowerCase();
      if (closing) {
        if (open.get(tag)) while (stack.length > 0 && stack.at(-1) !== tag) pop();
        if (open.get(tag)) pop();
      } else {
        const closes = IMPLIED_CLOSES.get(tag);
        while (closes && stack.length > 0 && closes.includes(stack.at(-1)!)) pop();
        if (!VOID_TAGS.has(tag)) {
          stack.push(tag);
          open.set(tag, (open.get(tag) ?? 0) + 1);
          if (stack.length > limit) return true;
        }
      }
    }
    at = html.indexOf("<", Math.max(end, at + 1));
  }
  return false;
}

/**
 * The reply's text without its tags, for htmlparser2 to decode entities in: each tag becomes a space, and
 * a "<" without a ">" after it is escaped. Linear: each search starts where the previous tag ended.
 */
function withoutTags(html: string): string {
  let out = "";
  let cursor = 0;
  for (let at = html.indexOf("<"); at >= 0; at = html.indexOf("<", cursor)) {
    const closer = html.indexOf(">", at);
    out += html.slice(cursor, at);
    if (closer < 0) {
      cursor = at;
      break;
    }
    out += " ";
    cursor = closer + 1;
  }
  return `${out}${html.slice(cursor)}`.replaceAll("<", "&lt;");
}

function openFrame(tag: string, attributes: Record<string, string>, parent: Frame): Frame {
  const discard: Node[] = [];
  if (DROPPED_TAGS.has(tag)) return { tag, children: discard, collector: { text: "", language: "" } };
  if (parent.collector) {
    // Inside code: markup only contributes its text (and line breaks); a language may sit on <code>.
    const collector = parent.collector;
    if (tag === "br") collector.text += "\n";
    if (tag === "code" && !collector.language) collector.language = languageOf(attributes.class);
    return { tag, children: discard, collector: parent.collector };
  }

  const style = STYLE_TAGS[tag];
  if (style) return container(tag, parent, { type: "style", style, children: [] });
  if (PARAGRAPH_TAGS.has(tag)) return container(tag, parent, { type: "paragraph", children: [] });
  if (HEADING.test(tag)) return container(tag, parent, { type: "heading", children: [] });

  switch (tag) {
    case "br":
      appendNode(parent, { type: "break" });
      return { tag, children: discard };
    case "hr":
      appendNode(parent, { type: "rule" });
      return { tag, children: discard };
    case "img": {
      const src = safeUrl(attributes.src);
      const alt = attributes.alt?.trim() ?? "";
      if (src)
        appendNode(parent, { type: "link", href: src, children: [{ type: "text", text: alt || src }] });
      else if (alt) appendText(parent, alt);
      return { tag, children: discard };
    }
    case "a": {
      const href = safeUrl(attributes.href);
      return href ? container(tag, parent, { type: "link", href, children: [] }) : transparent(tag, parent);
    }
    case "blockquote":
      return container(tag, parent, { type: "quote", children: [] });
    case "ul":
    case "ol": {
      const start = Number.parseInt(attributes.start ?? "", 10);
      const list: ListNode = {
        type: "list",
        ordered: tag === "ol",
        start: Number.isSafeInteger(start) ? start : 1,
        items: [],
      };
      appendNode(parent, list);
      return { tag, children: discard, list };
    }
    case "li":
      return { tag, children: newListItem(parent) };
    case "td":
    case "th":
      appendText(parent, " ");
      return transparent(tag, parent);
    case "code":
    case "pre": {
      const collector = { text: "", language: languageOf(attributes.class) };
      return {
        tag,
        children: discard,
        collector,
        finish: () => appendNode(parent, collected(tag, collector)),
      };
    }
    default:
      return transparent(tag, parent);
  }
}

function container(tag: string, parent: Frame, node: Node & { children: Node[] }): Frame {
  appendNode(parent, node);
  return { tag, children: node.children };
}

/** Unknown elements and unsafe links keep their children in place. */
function transparent(tag: string, parent: Frame): Frame {
  return { tag, children: parent.children, list: parent.list };
}

function collected(tag: string, { text, language }: { text: string; language: string }): Node {
  if (tag === "code") return { type: "code", text };
  // Browsers drop the newline right after <pre>; trailing blank lines are noise in a chat message.
  return { type: "codeBlock", language, text: text.replace(/^\r?\n/, "").trimEnd() };
}

function languageOf(className: string | undefined): string {
  return (className && LANGUAGE_CLASS.exec(className)?.[1]) || "";
}

/** An <li> outside any list still becomes a bullet: it joins the list just before it, or starts one. */
function newListItem(parent: Frame): Node[] {
  let list = parent.list;
  if (!list) {
    const previous = parent.children.at(-1);
    list = previous?.type === "list" ? previous : { type: "list", ordered: false, start: 1, items: [] };
    if (list !== previous) parent.children.push(list);
  }
  const item: Node[] = [];
  list.items.push(item);
  return item;
}

/** Content directly inside <ul>/<ol> (outside any <li>) joins the last item. */
function targetOf(frame: Frame): Node[] {
  return frame.list ? (frame.list.items.at(-1) ?? newListItem(frame)) : frame.children;
}

function appendNode(frame: Frame, node: Node): void {
  targetOf(frame).push(node);
}

function appendText(frame: Frame, raw: string): void {
  // Non-breaking spaces become plain spaces so they collapse and never split a bold/italic marker.
  const text = raw.includes("\u00a0") ? raw.replaceAll("\u00a0", " ") : raw;
  if (frame.list && !text.trim()) return;
  const target = targetOf(frame);
  const last = target.at(-1);
  if (last?.type === "text") last.text += text;
  else target.push({ type: "text", text });
}
