/**
 * The intermediate every renderer and the splitter work on: the reply as a flat list of text runs, each
 * carrying the formatting that applies to it. Paragraph and line boundaries are plain "\n" characters, so
 * the splitter can cut at any character offset and let each part re-open whatever formatting is active.
 */

export type Mark =
  | { readonly kind: "quote" }
  | { readonly kind: "pre"; readonly language: string }
  | { readonly kind: "bold" | "italic" | "underline" | "strike" | "code" }
  /** `bare`: the link text is the URL itself, so channels without real links show it once. */
  | { readonly kind: "link"; readonly href: string; readonly bare: boolean };

/** Marks are ordered outermost first; a quote, when present, is always first. */
export interface Run {
  readonly text: string;
  readonly marks: readonly Mark[];
}

export const QUOTE: Mark = { kind: "quote" };
export const BOLD: Mark = { kind: "bold" };
export const ITALIC: Mark = { kind: "italic" };
export const UNDERLINE: Mark = { kind: "underline" };
export const STRIKE: Mark = { kind: "strike" };
export const CODE: Mark = { kind: "code" };

export function sameMark(a: Mark, b: Mark): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind) return false;
  if (a.kind === "link" && b.kind === "link") return a.href === b.href && a.bare === b.bare;
  if (a.kind === "pre" && b.kind === "pre") return a.language === b.language;
  return true;
}

export function hasMark(marks: readonly Mark[], mark: Mark): boolean {
  return marks.some((m) => sameMark(m, mark));
}

export function commonPrefixLength(a: readonly Mark[], b: readonly Mark[]): number {
  let i = 0;
  while (i < a.length && i < b.length && sameMark(a[i]!, b[i]!)) i++;
  return i;
}

/** The quote mark of `marks` (as a list), i.e. the formatting a separator or list bullet may share. */
export function blockMarksOf(marks: readonly Mark[]): readonly Mark[] {
  return marks[0]?.kind === "quote" ? [QUOTE] : [];
}

export function isInCode(marks: readonly Mark[]): boolean {
  return marks.some((m) => m.kind === "code" || m.kind === "pre");
}

export function innermostLink(marks: readonly Mark[]): Extract<Mark, { kind: "link" }> | undefined {
  return marks.findLast((m): m is Extract<Mark, { kind: "link" }> => m.kind === "link");
}
