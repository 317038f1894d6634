/**
 * Document tree → flat runs (see runs.ts): decides line and paragraph breaks, list bullets and
 * indentation, and collapses whitespace as a browser would (except in code blocks).
 */
import type { Node, Style } from "./html.js";
import { parseMarkdown } from "./markdown.js";
import {
  BOLD,
  blockMarksOf,
  CODE,
  commonPrefixLength,
  hasMark,
  ITALIC,
  type Mark,
  QUOTE,
  type Run,
  STRIKE,
  UNDERLINE,
} from "./runs.js";
import { labelIsUrl } from "./url.js";

const STYLE_MARKS: Record<Style, Mark> = { bold: BOLD, italic: ITALIC, underline: UNDERLINE, strike: STRIKE };
/** HTML's whitespace: other spaces (U+00A0 aside, which the parser already turned into " ") are text. */
const HTML_WHITESPACE = /[ \t\n\r\f]+/g;
/** Whether a text has whitespace to collapse: most have none, and skipping the replace takes 40% off layout. */
const COLLAPSIBLE = /[\t\n\r\f]| {2}/;
const RULE = "———";
const LIST_INDENT = "  ";
const BULLET = "•";

interface Context {
  marks: readonly Mark[];
  inLink: boolean;
  /** Inside a list item, paragraphs are separated by a line break, not a blank line. */
  tight: boolean;
  listDepth: number;
}

export function layoutDocument(nodes: readonly Node[]): Run[] {
  const builder = new RunBuilder();
  layoutNodes(nodes, { marks: [], inLink: false, tight: false, listDepth: 0 }, builder, true);
  return builder.runs;
}

/** Literal text: kept as written (whitespace included), only trimmed. */
export function layoutLiteral(text: string): Run[] {
  const trimmed = text.replace(/\r\n?/g, "\n").trim();
  return trimmed ? [{ text: trimmed, marks: [] }] : [];
}

function layoutNodes(nodes: readonly Node[], context: Context, out: RunBuilder, markdown: boolean): void {
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    if (markdown && isInlineText(node)) {
      // Markdown may span <br>s (a fenced block written line by line), so parse the whole stretch at once.
      let end = i + 1;
      while (end < nodes.length && isInlineText(nodes[end]!)) end++;
      layoutNodes(parseMarkdown(nodes.slice(i, end)), context, out, false);
      i = end - 1;
    } else {
      layoutNode(node, context, out);
    }
  }
}

function isInlineText(node: Node): boolean {
  return node.type === "text" || node.type === "break";
}

function layoutNode(node: Node, context: Context, out: RunBuilder): void {
  switch (node.type) {
    case "text":
      out.text(node.text, context.marks);
      break;
    case "break":
      out.hardBreak();
      break;
    case "style":
      layoutNodes(node.children, withMark(context, STYLE_MARKS[node.style]), out, true);
      break;
    case "code":
      // Telegram forbids formatting around code, and code inside a link would lose the link: link wins.
      out.text(node.text, context.inLink ? context.marks : [...blockMarksOf(context.marks), CODE]);
      break;
    case "link":
      layoutLink(node, context, out);
      break;
    case "paragraph":
      layoutBlock(context, out, () => layoutNodes(node.children, context, out, true));
      break;
    case "heading":
      layoutBlock(context, out, () => layoutNodes(node.children, withMark(context, BOLD), out, true));
      break;
    case "quote": {
      // Telegram cannot nest quotes: an inner quote just continues the outer one.
      const quoted = { ...context, marks: [QUOTE, ...context.marks.filter((mark) => mark !== QUOTE)] };
      layoutBlock(context, out, () => layoutNodes(node.children, quoted, out, true));
      break;
    }
    case "list":
      layoutBlock(context, out, () => layoutList(node, context, out));
      break;
    case "codeBlock":
      if (node.text.trim()) {
        const marks = [...blockMarksOf(context.marks), { kind: "pre", language: node.language } as const];
        layoutBlock(context, out, () => out.preserved(node.text, marks));
      }
      break;
    case "rule":
      layoutBlock(context, out, () => out.text(RULE, blockMarksOf(context.marks)));
      break;
  }
}

function layoutBlock(context: Context, out: RunBuilder, content: () => void): void {
  out.blockBreak(!context.tight);
  content();
  out.blockBreak(!context.tight);
}

function layoutLink(node: Extract<Node, { type: "link" }>, context: Context, out: RunBuilder): void {
  if (context.inLink) {
    layoutNodes(node.children, context, out, true);
    return;
  }
  const label = textOf(node.children);
  const bare = labelIsUrl(label, node.href);
  const linked = { ...withMark(context, { kind: "link", href: node.href, bare }), inLink: true };
  // A bare URL is shown as the link itself (Slack `<url>`), so it cannot carry inner formatting.
  if (bare) out.text(label, linked.marks);
  else layoutNodes(node.children, linked, out, true);
}

function layoutList(list: Extract<Node, { type: "list" }>, context: Context, out: RunBuilder): void {
  const indent = LIST_INDENT.repeat(context.listDepth);
  const itemContext = { ...context, tight: true, listDepth: context.listDepth + 1 };
  list.items.forEach((item, index) => {
    out.lineBreak();
    out.linePrefix(`${indent}${list.ordered ? `${list.start + index}.` : BULLET} `);
    layoutNodes(item, itemContext, out, true);
  });
  out.dropLinePrefixes(indent.length);
}

function withMark(context: Context, mark: Mark): Context {
  return hasMark(context.marks, mark) ? context : { ...context, marks: [...context.marks, mark] };
}

function indentation(line: string): number {
  return line.length - line.trimStart().length;
}

function textOf(nodes: readonly Node[]): string {
  return nodes
    .map((node) => ("text" in node ? node.text : "children" in node ? textOf(node.children) : ""))
    .join("");
}

/**
 * Appends runs while deferring separators: breaks and collapsed spaces are only written once the next
 * visible text arrives, so there is never leading or trailing whitespace, and a space between differently
 * formatted words gets only the formatting both share (`*bold* word`, never `*bold *word`).
 */
class RunBuilder {
  readonly runs: Run[] = [];
  private lastMarks: readonly Mark[] = [];
  private started = false;
  private lineHasText = false;
  private pendingNewlines = 0;
  private pendingSpace = false;
  private pendingPrefixes: string[] = [];

  /** <br>: each one adds a line, up to one blank line. */
  hardBreak(): void {
    if (this.started) this.pendingNewlines = Math.min(2, this.pendingNewlines + 1);
  }

  lineBreak(): void {
    if (this.started) this.pendingNewlines = Math.max(1, this.pendingNewlines);
  }

  blockBreak(blank: boolean): void {
    if (this.started) this.pendingNewlines = Math.max(blank ? 2 : 1, this.pendingNewlines);
  }

  /** A list bullet, written before the next text on this line. */
  linePrefix(prefix: string): void {
    // An item whose content starts with a nested list keeps its bullet, on a line of its own, once the
    // nested item has text; a sibling's bullet that got no text is dropped.
    this.dropLinePrefixes(indentation(prefix));
    this.pendingPrefixes.push(prefix);
  }

  /** Forgets bullets indented at least `depth` that never got text (empty items, a list that ended). */
  dropLinePrefixes(depth: number): void {
    this.pendingPrefixes = this.pendingPrefixes.filter((pending) => indentation(pending) < depth);
  }

  /** Text whose whitespace collapses like HTML's. */
  text(text: string, marks: readonly Mark[]): void {
    const collapsed = COLLAPSIBLE.test(text) ? text.replace(HTML_WHITESPACE, " ") : text;
    const leadingSpace = collapsed.startsWith(" ");
    const trailingSpace = collapsed.endsWith(" ");
    const words = collapsed.slice(leadingSpace ? 1 : 0, trailingSpace ? -1 : undefined);
    if (leadingSpace && this.lineHasText) this.pendingSpace = true;
    if (words) this.visible(words, marks);
    if (trailingSpace && this.lineHasText) this.pendingSpace = true;
  }

  /** Text kept exactly as written (code blocks). */
  preserved(text: string, marks: readonly Mark[]): void {
    this.visible(text, marks);
    this.pendingSpace = false;
  }

  private visible(text: string, marks: readonly Mark[]): void {
    if (this.pendingNewlines > 0) {
      const shared = commonPrefixLength(blockMarksOf(this.lastMarks), blockMarksOf(marks));
      this.append("\n".repeat(this.pendingNewlines), marks.slice(0, shared));
      this.pendingNewlines = 0;
      this.pendingSpace = false;
    }
    if (this.pendingPrefixes.length > 0) {
      const bullets = this.pendingPrefixes.map((prefix, i, all) =>
        i < all.length - 1 ? `${prefix.trimEnd()}\n` : prefix,
      );
      this.append(bullets.join(""), blockMarksOf(marks));
      this.pendingPrefixes = [];
      this.pendingSpace = false;
    }
    if (this.pendingSpace) {
      this.append(" ", marks.slice(0, commonPrefixLength(this.lastMarks, marks)));
      this.pendingSpace = false;
    }
    this.append(text, marks);
    this.started = true;
    this.lineHasText = !text.endsWith("\n");
  }

  private append(text: string, marks: readonly Mark[]): void {
    const last = this.runs.at(-1);
    if (
      last &&
      last.marks.length === marks.length &&
      commonPrefixLength(last.marks, marks) === marks.length
    ) {
      this.runs[this.runs.length - 1] = { text: last.text + text, marks: last.marks };
    } else {
      this.runs.push({ text, marks });
    }
    this.lastMarks = marks;
  }
}
