/**
 * A strict checker of Telegram's `parse_mode: HTML` rules (Bot API "Formatting options"): only the
 * documented tags and attributes, properly nested, only &lt; &gt; &amp; &quot; and numeric entities, no bare
 * `<`, `>` or `&`. Stricter than Telegram where the docs are (e.g. no formatting around code). Used by the
 * format tests and by the fake Telegram server, so its errors mimic Telegram's.
 */

export type TelegramHtmlCheck = { ok: true; visibleText: string } | { ok: false; error: string };

/** Entities that may contain, and be part of, any other entity except pre and code. */
const STYLE_TAGS = new Set([
  "b",
  "strong",
  "i",
  "em",
  "u",
  "ins",
  "s",
  "strike",
  "del",
  "span",
  "tg-spoiler",
]);
const OTHER_TAGS = new Set(["a", "code", "pre", "blockquote", "tg-emoji", "tg-time"]);
const CODE_TAGS = new Set(["code", "pre"]);
const TEXT_ONLY_TAGS = new Set(["code", "tg-emoji", "tg-time"]);

const ENTITY = /&(?:(lt|gt|amp|quot)|#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6}));/y;
const NAMED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"' };
const TAG_NAME = /^[a-zA-Z][a-zA-Z0-9-]*/;
const ATTRIBUTE = /\s+([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/y;

class ParseError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

export function checkTelegramHtml(text: string): TelegramHtmlCheck {
  try {
    const visibleText = parse(text);
    if (!visibleText.trim()) return { ok: false, error: "Bad Request: message text is empty" };
    return { ok: true, visibleText };
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
    const byteOffset = Buffer.byteLength(text.slice(0, error.offset));
    return {
      ok: false,
      error: `Bad Request: can't parse entities: ${error.message} at byte offset ${byteOffset}`,
    };
  }
}

interface OpenTag {
  name: string;
  offset: number;
}

function parse(text: string): string {
  const stack: OpenTag[] = [];
  let visible = "";
  let i = 0;
  while (i < text.length) {
    const next = nextSpecial(text, i);
    visible += text.slice(i, next);
    if (next === text.length) break;
    i = next;
    const char = text[i];
    if (char === ">") throw new ParseError("Character '>' is reserved and must be escaped as &gt;", i);
    if (char === "&") {
      const [decoded, end] = decodeEntity(text, i);
      visible += decoded;
      i = end;
      continue;
    }
    const end = tagEnd(text, i);
    if (text[i + 1] === "/")
      closeTag(
        text
          .slice(i + 2, end - 1)
          .trim()
          .toLowerCase(),
        stack,
        i,
      );
    else openTag(text.slice(i + 1, end - 1), stack, i);
    i = end;
  }
  const unclosed = stack.at(-1);
  if (unclosed)
    throw new ParseError(`Can't find end tag corresponding to start tag "${unclosed.name}"`, unclosed.offset);
  return visible;
}

function nextSpecial(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const char = text[i];
    if (char === "<" || char === ">" || char === "&") return i;
  }
  return text.length;
}

function decodeEntity(text: string, at: number): [string, number] {
  ENTITY.lastIndex = at;
  const match = ENTITY.exec(text);
  if (!match) throw new ParseError("Character '&' is reserved and must be escaped as &amp;", at);
  const [, name, decimal, hex] = match;
  if (name) return [NAMED[name]!, ENTITY.lastIndex];
  const codePoint = decimal ? Number(decimal) : Number.parseInt(hex!, 16);
  if (codePoint > 0x10ffff) throw new ParseError(`Invalid numeric entity "${match[0]}"`, at);
  return [String.fromCodePoint(codePoint), ENTITY.lastIndex];
}

/** The offset just after the tag's ">", honouring quoted attribute values. */
function tagEnd(text: string, at: number): number {
  let quote: string | undefined;
  for (let i = at + 1; i < text.length; i++) {
    const char = text[i]!;
    if (quote) {
      if (char === quote) quote = undefined;
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if (char === ">") {
      return i + 1;
    } else if (char === "<") {
      break;
    }
  }
  throw new ParseError("Unclosed start tag", at);
}

function openTag(source: string, stack: OpenTag[], offset: number): void {
  const name = TAG_NAME.exec(source)?.[0].toLowerCase();
  if (!name || !(STYLE_TAGS.has(name) || OTHER_TAGS.has(name))) {
    throw new ParseError(`Unsupported start tag "${name ?? source}"`, offset);
  }
  const attributes = parseAttributes(source.slice(name.length), offset);
  const parent = stack.at(-1)?.name;
  checkAttributes(name, attributes, parent, offset);
  checkNesting(name, stack, offset);
  stack.push({ name, offset });
}

function parseAttributes(source: string, offset: number): Map<string, string> {
  const attributes = new Map<string, string>();
  const trimmed = source.replace(/\s*\/?$/, "");
  ATTRIBUTE.lastIndex = 0;
  while (ATTRIBUTE.lastIndex < trimmed.length) {
    const match = ATTRIBUTE.exec(trimmed);
    if (!match) throw new ParseError("Can't parse tag attributes", offset);
    const raw = match[2] ?? match[3] ?? match[4] ?? "";
    attributes.set(match[1]!.toLowerCase(), decodeAttribute(raw, offset));
  }
  return attributes;
}

function decodeAttribute(raw: string, offset: number): string {
  let out = "";
  for (let i = 0; i < raw.length; ) {
    if (raw[i] === "&") {
      const [decoded, end] = decodeEntity(raw, i);
      out += decoded;
      i = end;
    } else if (raw[i] === "<" || raw[i] === ">") {
      throw new ParseError(`Character '${raw[i]}' is reserved in attribute values`, offset);
    } else {
      out += raw[i++];
    }
  }
  return out;
}

function checkAttributes(
  name: string,
  attributes: Map<string, string>,
  parent: string | undefined,
  offset: number,
) {
  const allowed: Record<string, string[]> = {
    a: ["href"],
    code: parent === "pre" ? ["class"] : [],
    span: ["class"],
    blockquote: ["expandable"],
    "tg-emoji": ["emoji-id"],
    "tg-time": ["unix", "format"],
  };
  for (const attribute of attributes.keys()) {
    if (!(allowed[name] ?? []).includes(attribute)) {
      throw new ParseError(`Unsupported attribute "${attribute}" in tag "${name}"`, offset);
    }
  }
  if (name === "a" && !attributes.get("href")) throw new ParseError('Tag "a" must have an href', offset);
  if (name === "span" && attributes.get("class") !== "tg-spoiler") {
    throw new ParseError('Tag "span" must have class "tg-spoiler"', offset);
  }
  const language = attributes.get("class");
  if (name === "code" && language !== undefined && !/^language-\S+$/.test(language)) {
    throw new ParseError(`Unsupported class "${language}" of tag "code"`, offset);
  }
}

function checkNesting(name: string, stack: readonly OpenTag[], offset: number): void {
  const parent = stack.at(-1)?.name;
  const open = new Set(stack.map((tag) => tag.name));
  const fail = (why: string) => {
    throw new ParseError(why, offset);
  };
  if (parent && TEXT_ONLY_TAGS.has(parent)) fail(`Tag "${name}" can't be inside tag "${parent}"`);
  if (parent === "pre" && name !== "code") fail(`Tag "${name}" can't be inside tag "pre"`);
  if (CODE_TAGS.has(name) && !(name === "code" && parent === "pre")) {
    const around = stack.find(
      (tag) => STYLE_TAGS.has(tag.name) || tag.name === "a" || CODE_TAGS.has(tag.name),
    );
    if (around) fail(`Tag "${name}" can't be inside tag "${around.name}"`);
  }
  if (name === "a" && open.has("a")) fail('Tag "a" can\'t be inside tag "a"');
  if (name === "blockquote" && stack.some((tag) => !STYLE_TAGS.has(tag.name))) {
    fail(`Tag "blockquote" can't be inside tag "${stack.find((tag) => !STYLE_TAGS.has(tag.name))!.name}"`);
  }
}

function closeTag(name: string, stack: OpenTag[], offset: number): void {
  const open = stack.at(-1);
  if (!open) throw new ParseError(`Unexpected end tag "${name}"`, offset);
  if (open.name !== name) {
    throw new ParseError(`Unmatched end tag, expected "</${open.name}>", found "</${name}>"`, offset);
  }
  stack.pop();
}
