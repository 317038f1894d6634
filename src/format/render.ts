/**
 * The renderer skeleton shared by every channel: walks the runs, closes and opens formatting where it
 * changes (so every part of a split reply is well formed on its own), and leaves the channel-specific
 * bits (markers, escaping, quote style) to a Dialect.
 */
import { commonPrefixLength, isInCode, type Mark, type Run } from "./runs.js";

export interface Dialect {
  /** Escapes text for the channel; `marks` say where it sits (code, a link label…). */
  escape(text: string, marks: readonly Mark[]): string;
  open(mark: Mark): string;
  close(mark: Mark): string;
  /** Written at the start of each line inside a quote, for channels without a quote element ("> "). */
  quoteLinePrefix: string;
}

export function renderRuns(runs: readonly Run[], dialect: Dialect): string {
  let out = "";
  let open: readonly Mark[] = [];
  let atLineStart = true;
  for (const { text, marks } of runs) {
    const kept = commonPrefixLength(open, marks);
    for (let i = open.length - 1; i >= kept; i--) out += dialect.close(open[i]!);
    const prefix = marks[0]?.kind === "quote" ? dialect.quoteLinePrefix : "";
    const lines = prefix ? text.split("\n") : [text];
    // The quote prefix goes before any marker opened on the same line.
    if (prefix && atLineStart && lines[0]) out += prefix;
    for (let i = kept; i < marks.length; i++) out += dialect.open(marks[i]!);
    lines.forEach((line, index) => {
      if (index > 0) out += line ? `\n${prefix}` : "\n";
      out += dialect.escape(line, marks);
    });
    open = marks;
    if (text) atLineStart = text.endsWith("\n");
  }
  for (let i = open.length - 1; i >= 0; i--) out += dialect.close(open[i]!);
  return out;
}

/**
 * An escape for these characters (each maps to its entity). It tests before it replaces: most text has nothing
 * to escape, and a replace with a callback is the costlier call.
 */
export function entityEscape(entities: Readonly<Record<string, string>>): (text: string) => string {
  const characters = `[${Object.keys(entities).join("")}]`;
  const any = new RegExp(characters);
  const every = new RegExp(characters, "g");
  return (text) => (any.test(text) ? text.replace(every, (char) => entities[char]!) : text);
}

/** Channels whose formatting is a symmetric marker around the text: `*bold*`, `_italic_`, ``` ``` ```. */
export type Markers = Partial<Record<"bold" | "italic" | "underline" | "strike" | "code" | "pre", string>>;

/** The link styles of marker channels: Slack `<url|label>`; WhatsApp and plain text `label (url)`. */
export type LinkStyle = "angle" | "parenthesized";

export function markerDialect(
  markers: Markers,
  linkStyle: LinkStyle,
  escapeText: Dialect["escape"],
): Dialect {
  const marker = (mark: Mark) =>
    mark.kind === "quote" || mark.kind === "link" ? "" : (markers[mark.kind] ?? "");
  return {
    escape: escapeText,
    quoteLinePrefix: "> ",
    open(mark) {
      if (mark.kind !== "link" || linkStyle !== "angle") return marker(mark);
      return mark.bare ? "<" : `<${escapeText(mark.href.replaceAll("|", "%7C"), [])}|`;
    },
    close(mark) {
      if (mark.kind !== "link") return marker(mark);
      if (linkStyle === "angle") return ">";
      return mark.bare ? "" : ` (${mark.href})`;
    },
  };
}

/**
 * Marker channels cannot escape a backtick inside code, so it would end the code span early: show a
 * look-alike (U+02CB) instead.
 */
export function neutralizeBackticks(text: string, marks: readonly Mark[]): string {
  return isInCode(marks) ? text.replaceAll("`", "\u02cb") : text;
}
