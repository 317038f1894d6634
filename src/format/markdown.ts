/**
 * LLM-style Markdown inside the reply's text: ``` fences, `code`, [text](url), **bold**, __bold__, *italic*,
 * _italic_. Only well-formed constructs are interpreted; everything else stays literal text, so prices
 * like "2 * 3 * 4" and identifiers like snake_case_name are left alone.
 */
import type { Node } from "./html.js";
import { safeUrl } from "./url.js";

const SPECIAL = /[`[*_]/;
/**
 * Matched against trimmed lines: "\s*" on both sides of an optional language made a line of "```", many
 * spaces and a "!" backtrack quadratically (64 KB: 3 s).
 */
const FENCE_OPEN = /^(`{3,})\s*([\w#+.-]*)$/;
const FENCE_CLOSE = /^(`{3,})$/;
const WHITESPACE = /\s/;
const WORD_CHARACTER = /[\p{L}\p{N}]/u;
/** Deeper emphasis nesting is left literal, so adversarial input cannot exhaust the stack. */
const MAX_NESTING = 16;

/** Interprets Markdown in a sequence of sibling text and line-break nodes. */
export function parseMarkdown(nodes: readonly Node[]): Node[] {
  if (!nodes.some((node) => node.type === "text" && SPECIAL.test(node.text))) return [...nodes];
  const { lines, hardBreakAfter } = splitLines(nodes);
  const out: Node[] = [];
  const closers = fenceClosers(lines);
  let chunk = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = line.includes("```") ? FENCE_OPEN.exec(line.trim()) : null;
    const close = fence ? closingFence(closers, i, fence[1]!.length) : undefined;
    if (fence && close) {
      appendInline(out, chunk);
      chunk = "";
      out.push({ type: "codeBlock", language: fence[2]!, text: lines.slice(i + 1, close.line).join("\n") });
      i = close.line;
      continue;
    }
    chunk += line;
    if (i === lines.length - 1) break;
    if (hardBreakAfter[i]) {
      appendInline(out, chunk);
      chunk = "";
      out.push({ type: "break" });
    } else {
      chunk += "\n";
    }
  }
  appendInline(out, chunk);
  return out;
}

/** Lines split at <br> (hard) and at raw newlines (soft: whitespace, except inside a fence). */
function splitLines(nodes: readonly Node[]): { lines: string[]; hardBreakAfter: boolean[] } {
  const lines = [""];
  const hardBreakAfter = [false];
  for (const node of nodes) {
    if (node.type === "break") {
      hardBreakAfter[lines.length - 1] = true;
      lines.push("");
      hardBreakAfter.push(false);
    } else if (node.type === "text") {
      const [first, ...rest] = node.text.split("\n");
      lines[lines.length - 1] += first!;
      for (const line of rest) {
        lines.push(line);
        hardBreakAfter.push(false);
      }
    }
  }
  return { lines, hardBreakAfter };
}

interface Fence {
  line: number;
  length: number;
}

/** Closing-fence lines in order, and for each the index of the next longer one (or `closers.length`). */
interface Closers {
  fences: Fence[];
  nextLonger: Int32Array;
}

function fenceClosers(lines: readonly string[]): Closers {
  const fences: Fence[] = [];
  lines.forEach((line, index) => {
    const match = line.includes("```") ? FENCE_CLOSE.exec(line.trim()) : null;
    if (match) fences.push({ line: index, length: match[1]!.length });
  });
  const nextLonger = new Int32Array(fences.length).fill(fences.length);
  const waiting: number[] = [];
  fences.forEach((fence, index) => {
    while (waiting.length > 0 && fences[waiting.at(-1)!]!.length < fence.length) {
      nextLonger[waiting.pop()!] = index;
    }
    waiting.push(index);
  });
  return { fences, nextLonger };
}

/**
 * The first closing fence after line `after` at least `length` backticks long: a binary search for the
 * line, then jumps over shorter fences to the next longer one. A walk over every shorter fence made
 * "````x" lines before many "```" lines quadratic (1 MB: 15 s); a jump only ever goes to a longer fence.
 */
function closingFence({ fences, nextLonger }: Closers, after: number, length: number): Fence | undefined {
  let low = 0;
  let high = fences.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (fences[middle]!.line <= after) low = middle + 1;
    else high = middle;
  }
  let at = low;
  while (at < fences.length && fences[at]!.length < length) at = nextLonger[at]!;
  return fences[at];
}

function appendInline(out: Node[], text: string): void {
  if (!text) return;
  // One push per node: spreading a few hundred thousand nodes into push's arguments overflows the stack.
  for (const node of new InlineParser(text).parse(0, text.length, 0)) out.push(node);
}

function appendText(out: Node[], text: string): void {
  if (!text) return;
  const last = out.at(-1);
  if (last?.type === "text") last.text += text;
  else out.push({ type: "text", text });
}

/**
 * A single left-to-right pass. Searches for closing delimiters are cached per delimiter: a closer's
 * validity does not depend on its opener, so a failed search never needs repeating and long texts full
 * of unmatched "*" stay linear.
 */
class InlineParser {
  private readonly searches = new Map<string, { from: number; found: number }>();
  private lastOpenBracket: { labelEnd: number; at: number } | undefined;
  private urlTables: UrlTables | undefined;
  /** Start offsets of the runs of exactly n backticks, by n; built on the first code span. */
  private backtickRuns: Map<number, number[]> | undefined;

  constructor(private readonly s: string) {}

  parse(from: number, to: number, depth: number): Node[] {
    const out: Node[] = [];
    let literalStart = from;
    let i = from;
    while (i < to) {
      const char = this.s[i]!;
      const parsed =
        char === "`"
          ? this.code(i, to)
          : char === "["
            ? this.link(i, to, depth)
            : (char === "*" || char === "_") && depth < MAX_NESTING
              ? this.emphasis(i, to, depth)
              : undefined;
      if (parsed) {
        appendText(out, this.s.slice(literalStart, i));
        for (const node of parsed.nodes) {
          if (node.type === "text") appendText(out, node.text);
          else out.push(node);
        }
        i = literalStart = parsed.end;
      } else {
        // A delimiter run that opens nothing is literal as a whole (so "**" never half-matches later).
        i += char === "`" || char === "*" || char === "_" ? this.runLength(i, char) : 1;
      }
    }
    appendText(out, this.s.slice(literalStart, to));
    return out;
  }

  private code(start: number, to: number): Parsed | undefined {
    const n = this.runLength(start, "`");
    const close = this.backtickRun(n, start + n, to);
    if (close < 0) return undefined;
    const content = this.s.slice(start + n, close);
    if (!content.trim()) return undefined;
    const end = close + n;
    if (n >= 3 && content.includes("\n")) {
      const [first, ...rest] = content.split("\n");
      const language = /^[\w#+.-]*$/.test(first!.trim()) ? first!.trim() : "";
      const text = (language ? rest : [first!, ...rest]).join("\n").replace(/^\n+/, "").trimEnd();
      return { end, nodes: [{ type: "codeBlock", language, text }] };
    }
    const spaced = content.startsWith(" ") && content.endsWith(" ") && content.length > 2;
    return { end, nodes: [{ type: "code", text: spaced ? content.slice(1, -1) : content }] };
  }

  private link(start: number, to: number, depth: number): Parsed | undefined {
    const labelEnd = this.find("]", start + 1, to);
    if (labelEnd <= start + 1 || this.s[labelEnd + 1] !== "(") return undefined;
    if (this.lastOpenBracketBefore(labelEnd) > start) return undefined;
    const urlEnd = this.urlEnd(labelEnd + 2, to);
    const href = urlEnd >= 0 ? safeUrl(this.s.slice(labelEnd + 2, urlEnd)) : undefined;
    if (!href) return undefined;
    return {
      end: urlEnd + 1,
      nodes: [{ type: "link", href, children: this.parse(start + 1, labelEnd, depth + 1) }],
    };
  }

  private emphasis(start: number, to: number, depth: number): Parsed | undefined {
    const char = this.s[start]!;
    const n = this.runLength(start, char);
    const after = this.s[start + n];
    // "_" and a single "*" must not sit inside a word (snake_case, 2*3*4); "**" may (CommonMark).
    const wordBound = char === "_" || n === 1;
    if (n > 3 || after === undefined || WHITESPACE.test(after)) return undefined;
    if (wordBound && this.isWordCharacter(start - 1)) return undefined;
    const close = this.findRun(
      char,
      n,
      start + n + 1,
      to,
      (at) => !WHITESPACE.test(this.s[at - 1]!) && !(wordBound && this.isWordCharacter(at + n)),
    );
    if (close < 0) return undefined;
    const children = this.parse(start + n, close, depth + 1);
    const nodes: Node[] =
      n === 1
        ? [{ type: "style", style: "italic", children }]
        : n === 2
          ? [{ type: "style", style: "bold", children }]
          : [{ type: "style", style: "bold", children: [{ type: "style", style: "italic", children }] }];
    return { end: close + n, nodes };
  }

  /**
   * Where a link's URL starting at `from` ends: at the first ")" that leaves its parentheses unbalanced
   * (Wikipedia URLs hold balanced ones), provided no whitespace comes first and it lies before `to`; else -1.
   * Answered from two tables built in one pass, the first time a URL is looked for: a scan from every
   * "](" to the end was quadratic ("[a](" × 40,000 took minutes).
   */
  private urlEnd(from: number, to: number): number {
    this.urlTables ??= urlTables(this.s);
    const close = this.urlTables.unbalancedClose[from]!;
    return close < to && close < this.urlTables.nextWhitespace[from]! ? close : -1;
  }

  /** The last "[" before `labelEnd`, looked up once per "]": "[" × n before one "](" asked it n times. */
  private lastOpenBracketBefore(labelEnd: number): number {
    if (this.lastOpenBracket?.labelEnd !== labelEnd) {
      this.lastOpenBracket = { labelEnd, at: this.s.lastIndexOf("[", labelEnd - 1) };
    }
    return this.lastOpenBracket.at;
  }

  /**
   * The first run of exactly `n` backticks at or after `from`, before `to`. Runs are indexed by length
   * in one pass: a search per distinct length over the whole text cost length × √length on "`" "``" "```"...
   */
  private backtickRun(n: number, from: number, to: number): number {
    if (!this.backtickRuns) {
      this.backtickRuns = new Map();
      for (let at = this.s.indexOf("`"); at >= 0; ) {
        const length = this.runLength(at, "`");
        const runs = this.backtickRuns.get(length);
        if (runs) runs.push(at);
        else this.backtickRuns.set(length, [at]);
        at = this.s.indexOf("`", at + length);
      }
    }
    const runs = this.backtickRuns.get(n) ?? [];
    let low = 0;
    let high = runs.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (runs[middle]! < from) low = middle + 1;
      else high = middle;
    }
    const found = runs[low];
    return found !== undefined && found + n <= to ? found : -1;
  }

  private runLength(at: number, char: string): number {
    let end = at;
    while (this.s[end] === char) end++;
    return end - at;
  }

  private isWordCharacter(at: number): boolean {
    const char = this.s[at];
    return char !== undefined && WORD_CHARACTER.test(char);
  }

  /** The first run of exactly `n` × `char` at or after `from` (and before `to`) that `valid` accepts. */
  private findRun(char: string, n: number, from: number, to: number, valid: (at: number) => boolean): number {
    return this.search(`${char}${n}`, char.repeat(n), from, to, (at) => {
      return this.s[at - 1] !== char && this.s[at + n] !== char && valid(at);
    });
  }

  private find(char: string, from: number, to: number): number {
    return this.search(char, char, from, to, () => true);
  }

  private search(
    key: string,
    needle: string,
    from: number,
    to: number,
    valid: (at: number) => boolean,
  ): number {
    const cached = this.searches.get(key);
    let found: number;
    if (cached && from >= cached.from && (cached.found < 0 || from <= cached.found)) {
      found = cached.found;
    } else {
      found = -1;
      for (let at = this.s.indexOf(needle, from); at >= 0; at = this.s.indexOf(needle, at + 1)) {
        if (valid(at)) {
          found = at;
          break;
        }
      }
      this.searches.set(key, { from, found });
    }
    return found >= 0 && found + needle.length <= to ? found : -1;
  }
}

interface UrlTables {
  /** For each offset, the first ")" at or after it that closes more than it opened; the length if none. */
  unbalancedClose: Int32Array;
  /** For each offset, the first whitespace at or after it; the length if none. */
  nextWhitespace: Int32Array;
}

/**
 * With `depth[i]` the count of "(" minus ")" before offset i, the ")" that ends a URL from `from` is the one
 * after which the depth first falls below `depth[from]`: a next-smaller-element search, one pass with a stack.
 */
function urlTables(s: string): UrlTables {
  const n = s.length;
  const depth = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) depth[i + 1] = depth[i]! + (s[i] === "(" ? 1 : s[i] === ")" ? -1 : 0);
  const unbalancedClose = new Int32Array(n + 1).fill(n);
  const waiting: number[] = [];
  for (let i = 0; i <= n; i++) {
    while (waiting.length > 0 && depth[waiting.at(-1)!]! > depth[i]!) unbalancedClose[waiting.pop()!] = i - 1;
    waiting.push(i);
  }
  const nextWhitespace = new Int32Array(n + 1).fill(n);
  for (let i = n - 1; i >= 0; i--) {
    const char = s[i]!;
    nextWhitespace[i] = (char <= " " || char > "~") && WHITESPACE.test(char) ? i : nextWhitespace[i + 1]!;
  }
  return { unbalancedClose, nextWhitespace };
}

interface Parsed {
  end: number;
  nodes: Node[];
}
