/**
 * Splits a reply into parts that each fit the channel's limit. Works on the flat runs, so a cut is a
 * character offset in the visible text and each part is rendered on its own: formatting open at a cut is
 * closed at the end of one part and re-opened at the start of the next.
 */
import { type Dialect, renderRuns } from "./render.js";
import type { Run } from "./runs.js";

export interface FormattedPart {
  /** The part in the channel's markup (Telegram: parse_mode HTML; Slack: mrkdwn; WhatsApp: its markup). */
  text: string;
  /** The same part as plain text, used when a channel rejects the markup. Within the limit too. */
  plain: string;
}

export interface ReplyFormat {
  limit: number;
  markup: Dialect;
  plain: Dialect;
  /** Telegram counts the text after entity parsing; Slack and WhatsApp count the markup string itself. */
  countsMarkup: boolean;
}

const SENTENCE_END = /[.!?…。]/;
const SPACE = /\s/;
/** A list item's bullet or number at the end of a look-behind window, after its indentation. */
const LIST_MARKER = /\n[ \t]*(?:•|\d+\.)$/;
const LIST_MARKER_AT_START = /(?:^|\n)[ \t]*(?:•|\d+\.)$/;
const MAX_LIST_MARKER = 40;

export function splitRuns(runs: readonly Run[], target: ReplyFormat): FormattedPart[] {
  return new Splitter(runs, target).split();
}

class Splitter {
  private readonly text: string;
  /** Offset in `text` where each run starts. */
  private readonly starts: number[] = [];

  constructor(
    private readonly runs: readonly Run[],
    private readonly target: ReplyFormat,
  ) {
    let offset = 0;
    for (const run of runs) {
      this.starts.push(offset);
      offset += run.text.length;
    }
    this.text = runs.map((run) => run.text).join("");
  }

  split(): FormattedPart[] {
    const parts: FormattedPart[] = [];
    let start = this.skipWhitespaceAfterCut(0);
    while (start < this.text.length) {
      const longest = this.longestFit(start);
      let cut = longest.end;
      let part = longest.part;
      if (cut < this.text.length) {
        const boundary = this.bestBoundary(start, cut);
        const atBoundary = boundary < cut ? this.render(start, boundary) : undefined;
        if (atBoundary?.fits) [cut, part] = [boundary, atBoundary.part];
      }
      if (part) parts.push(part);
      start = this.skipWhitespaceAfterCut(cut);
    }
    return parts;
  }

  /**
   * A far end offset whose part fits (close to the furthest), with that part. Every character costs at
   * least one unit in every rendering, so `start + limit` bounds the search, and in the common case it
   * fits at once. Otherwise markup overhead is roughly proportional to the text, so the end is guessed by
   * interpolation (usually one or two renders per part), with bisection as the safety net.
   */
  private longestFit(start: number): { end: number; part: FormattedPart | undefined } {
    const { limit } = this.target;
    const upper = Math.min(this.text.length, start + limit);
    let rendered = this.render(start, upper);
    if (rendered.fits) return { end: upper, part: rendered.part };
    let fits = start;
    let fitting: FormattedPart | undefined;
    let tooLong = upper;
    let measured = upper;
    for (let attempt = 0; tooLong - fits > 1; attempt++) {
      const interpolated = start + Math.floor(((measured - start) * limit * 0.98) / rendered.size);
      const middle =
        attempt < 4 && interpolated > fits && interpolated < tooLong ? interpolated : (fits + tooLong) >>> 1;
      rendered = this.render(start, middle);
      measured = middle;
      if (!rendered.fits) {
        tooLong = middle;
        continue;
      }
      [fits, fitting] = [middle, rendered.part];
      // Within 2 % of the limit is close enough: the cut moves back to a boundary anyway.
      if (rendered.size >= limit * 0.98) break;
    }
    const end = this.surrogateSafe(fits);
    if (end === fits && end > start) return { end, part: fitting };
    if (end > start) return { end, part: this.render(start, end).part };
    // Not even one character fits (impossible with real limits): emit it anyway rather than loop forever.
    const single = this.surrogateSafe(start + 1) === start ? start + 2 : start + 1;
    return { end: single, part: this.render(start, single).part };
  }

  /**
   * Where to cut in [start, end): the last paragraph break, else line break, else sentence end, else word
   * break that keeps the part at least half full; else the last break of any kind; else a hard cut.
   */
  private bestBoundary(start: number, end: number): number {
    const half = start + (end - start) / 2;
    const paragraph = this.lastIndexAfter("\n\n", end, half);
    if (paragraph > half) return paragraph;
    const line = this.lastIndexAfter("\n", end, half);
    if (line > half) return line;
    let sentence = -1;
    let word = -1;
    for (let i = end; i > start && sentence < 0; i--) {
      if (!SPACE.test(this.text[i] ?? "") || this.followsListMarker(i)) continue;
      if (word < 0) word = i;
      if (SENTENCE_END.test(this.text[i - 1]!)) sentence = i;
    }
    if (sentence > half) return sentence;
    if (word > start) return word;
    return this.surrogateSafe(end);
  }

  /**
   * The last `needle` at or before `end` and after `floor`, else -1. lastIndexOf alone searches back to the
   * start of the whole reply when the part has none, once per part: quadratic in a long reply without
   * blank lines.
   */
  private lastIndexAfter(needle: string, end: number, floor: number): number {
    const window = this.text.slice(Math.floor(floor), end + needle.length);
    const at = window.lastIndexOf(needle);
    return at < 0 ? -1 : Math.floor(floor) + at;
  }

  /** Whether only a list bullet or number precedes `offset` on its line (never leave a bullet alone). */
  private followsListMarker(offset: number): boolean {
    const previous = this.text[offset - 1];
    if (previous !== "•" && previous !== ".") return false;
    const from = Math.max(0, offset - MAX_LIST_MARKER);
    return (from === 0 ? LIST_MARKER_AT_START : LIST_MARKER).test(this.text.slice(from, offset));
  }

  /**
   * Renders [start, end) without the whitespace at the cut (no part when that leaves nothing). `size` is
   * what the limit applies to: the channel's count or the plain fallback's length, whichever is larger.
   */
  private render(
    start: number,
    end: number,
  ): { fits: boolean; size: number; part: FormattedPart | undefined } {
    let trimmedEnd = end;
    while (trimmedEnd > start && SPACE.test(this.text[trimmedEnd - 1]!)) trimmedEnd--;
    if (trimmedEnd === start) return { fits: true, size: 0, part: undefined };
    const runs = this.slice(start, trimmedEnd);
    const text = renderRuns(runs, this.target.markup);
    const plain = renderRuns(runs, this.target.plain);
    const size = Math.max(this.target.countsMarkup ? text.length : trimmedEnd - start, plain.length);
    return { fits: size <= this.target.limit, size, part: { text, plain } };
  }

  private slice(start: number, end: number): Run[] {
    const out: Run[] = [];
    for (let index = this.runIndexAt(start); index < this.runs.length; index++) {
      const runStart = this.starts[index]!;
      if (runStart >= end) break;
      const run = this.runs[index]!;
      const from = Math.max(0, start - runStart);
      const to = Math.min(run.text.length, end - runStart);
      out.push(
        from === 0 && to === run.text.length ? run : { text: run.text.slice(from, to), marks: run.marks },
      );
    }
    return out;
  }

  private runIndexAt(offset: number): number {
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.starts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  /** Line breaks at a cut are dropped; spaces too, except inside code, where they are indentation. */
  private skipWhitespaceAfterCut(offset: number): number {
    let at = offset;
    while (at < this.text.length) {
      const char = this.text[at]!;
      if (char === "\n" || (SPACE.test(char) && !this.isCodeBlockAt(at))) at++;
      else break;
    }
    return at;
  }

  private isCodeBlockAt(offset: number): boolean {
    return this.runs[this.runIndexAt(offset)]?.marks.some((mark) => mark.kind === "pre") ?? false;
  }

  /** Moves a cut that would fall inside a surrogate pair back by one. */
  private surrogateSafe(offset: number): number {
    const code = this.text.charCodeAt(offset);
    const before = this.text.charCodeAt(offset - 1);
    const splitsPair = code >= 0xdc00 && code <= 0xdfff && before >= 0xd800 && before <= 0xdbff;
    return splitsPair ? offset - 1 : offset;
  }
}
