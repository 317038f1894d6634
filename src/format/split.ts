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
/** A list item's bullet or number at the end of a look-behind window, after its line break and indentation. */
const LIST_MARKER = /\n[ \t]*(?:•|\d+\.)$/;
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
    // The furthest end known to fit, and the nearest known not to (or where the search ends).
    let fits = start;
    let fitting: FormattedPart | undefined;
    if (rendered.fits) [fits, fitting] = [upper, rendered.part];
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
    if (end > start) return { end, part: end === fits ? fitting : this.render(start, end).part };
    // Not even one character fits (impossible with real limits): emit it anyway rather than loop forever.
    const single = this.splitsPairAt(start + 1) ? start + 2 : start + 1;
    return { end: single, part: this.render(start, single).part };
  }

  /**
   * Where to cut in [start, end]: the last paragraph break, else line break, else sentence end that keeps
   * the part more than half full; else the last word break; else a hard cut.
   */
  private bestBoundary(start: number, end: number): number {
    const half = start + (end - start) / 2;
    return (
      this.lastAfter("\n\n", end, half) ??
      this.lastAfter("\n", end, half) ??
      this.lastBreakAfter(end, half, (offset) => SENTENCE_END.test(this.text[offset - 1]!)) ??
      this.lastBreakAfter(end, start) ??
      end
    );
  }

  /**
   * The last `needle` at or before `end` that starts after `floor`. Only the text after `floor` is searched:
   * lastIndexOf alone searches back to the start of the whole reply when the part has none, once per part:
   * quadratic in a long reply without blank lines.
   */
  private lastAfter(needle: string, end: number, floor: number): number | undefined {
    const from = Math.floor(floor) + 1;
    const at = this.text.slice(from, end + needle.length).lastIndexOf(needle);
    return at < 0 ? undefined : from + at;
  }

  /** The last break in (floor, end] that `accept`s too. */
  private lastBreakAfter(
    end: number,
    floor: number,
    accept: (offset: number) => boolean = () => true,
  ): number | undefined {
    for (let i = end; i > floor; i--) if (this.isBreakAt(i) && accept(i)) return i;
    return undefined;
  }

  /**
   * Whether a part may end at `offset`: where whitespace begins (what follows keeps all of it that is code
   * indentation), unless only a list bullet or number precedes it on its line.
   */
  private isBreakAt(offset: number): boolean {
    const beginsWhitespace = SPACE.test(this.text[offset]!) && !SPACE.test(this.text[offset - 1]!);
    return beginsWhitespace && !this.followsListMarker(offset);
  }

  /**
   * Whether only a list bullet or number precedes `offset` on its line (a bullet alone is no part). Looks
   * back MAX_LIST_MARKER characters at most, at the start of the reply or of a line: a window of nothing but
   * indentation and a marker is a list item however deep.
   */
  private followsListMarker(offset: number): boolean {
    return LIST_MARKER.test(`\n${this.text.slice(Math.max(0, offset - MAX_LIST_MARKER), offset)}`);
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
      out.push({ text: run.text.slice(Math.max(0, start - runStart), end - runStart), marks: run.marks });
    }
    return out;
  }

  /** The last run starting at or before `offset` (a binary search: the runs of a long reply are many). */
  private runIndexAt(offset: number): number {
    let low = 0;
    let high = this.starts.length;
    while (high - low > 1) {
      const middle = (low + high) >>> 1;
      if (this.starts[middle]! <= offset) low = middle;
      else high = middle;
    }
    return low;
  }

  private skipWhitespaceAfterCut(offset: number): number {
    let at = offset;
    while (this.isDroppedAtCut(at)) at++;
    return at;
  }

  /** Line breaks at a cut are dropped; spaces too, except inside code, where they are indentation. */
  private isDroppedAtCut(offset: number): boolean {
    const char = this.text.charAt(offset);
    return char === "\n" || (SPACE.test(char) && !this.isCodeBlockAt(offset));
  }

  private isCodeBlockAt(offset: number): boolean {
    return this.runs[this.runIndexAt(offset)]!.marks.some((mark) => mark.kind === "pre");
  }

  /** Moves a cut that would fall inside a surrogate pair back by one. */
  private surrogateSafe(offset: number): number {
    return this.splitsPairAt(offset) ? offset - 1 : offset;
  }

  /**
   * Whether `offset` is on the low half of a surrogate pair. The text is well formed (index.ts replaces a lone
   * surrogate), so a low half always follows a high one.
   */
  private splitsPairAt(offset: number): boolean {
    const code = this.text.charCodeAt(offset);
    return code >= 0xdc00 && code <= 0xdfff;
  }
}
