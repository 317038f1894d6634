/**
 * The formatter's half of the adversarial scenario (bench/adversarial.ts): hostile reply shapes, and a child
 * process that times formatReply on them. A child, so that a quadratic shape can be stopped at the timeout
 * (a synchronous call cannot be interrupted in the process that makes it).
 */
import { pathToFileURL } from "node:url";
import { type ChannelName, formatReply } from "../test/support/format.js";
import { TYPICAL_REPLY } from "./format.js";

/** `unit` repeated to exactly `size` characters. */
const fill = (unit: string, size: number) => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);

/** Backtick runs of lengths 1, 2, 3… each unclosed: every run searches the rest of the text for its closer. */
function backtickLadder(size: number): string {
  let text = "";
  for (let length = 1; text.length < size; length++) text += `${"`".repeat(length)} x `;
  return text.slice(0, size);
}

/** Reply HTML of `size` characters, by shape name. */
export const FORMAT_SHAPES: Record<string, (size: number) => string> = {
  "typical replies, repeated": (size) => fill(`${TYPICAL_REPLY}\n`, size),
  "[a]( repeated (link opener, no closing paren)": (size) => fill("[a](", size),
  "``` then spaces, then ! (fence line)": (size) => `\`\`\`${" ".repeat(size - 4)}!`,
  "backtick runs of growing length, unclosed": backtickLadder,
  "<b> nested, never closed": (size) => fill("<b>", size),
  "<a\\x0b> nested (a control character in the tag name)": (size) => fill("<a\u000b>", size),
  "<span> nested, then stray </x>": (size) => fill("<span>", size / 2) + fill("</x>", size / 2),
  "<b>x nested, then stray </i>": (size) => fill("<b>x", size / 2) + fill("</i>", size / 2),
  "<ul><li>x nested lists": (size) => fill("<ul><li>x", size),
  "<pre>x nested": (size) => fill("<pre>x", size),
  "<p>x unclosed paragraphs": (size) => fill("<p>x", size),
  "<a href> links, repeated": (size) => fill('<a href="https://example.com/a">a</a> ', size),
  "[a](url) links, repeated": (size) => fill("[a](https://example.com/a) ", size),
  "alternating <b><i><u><s> runs": (size) => fill("<b>a</b><i>b</i><u>c</u><s>d</s>", size),
  "`a` repeated (inline code spans)": (size) => fill("`a` ", size),
  "* run": (size) => fill("*", size),
  "_ run": (size) => fill("_", size),
  "` run": (size) => fill("`", size),
  "*a (emphasis openers, never closed)": (size) => fill("*a ", size),
  "**a *a … a* a** (nested emphasis)": (size) => fill("**a *a ", size / 2) + fill(" a* a**", size / 2),
  "*_ … _* (alternating emphasis)": (size) => `${fill("*_", size / 2)}a${fill("_*", size / 2 - 1)}`,
  "[ run, one ](url) at the end": (size) => `${fill("[x", size - 20)}](https://a.b/)`,
  "&amp; entity flood": (size) => fill("&amp;", size),
  "&#x1F600; numeric entity flood": (size) => fill("&#x1F600;", size),
  "one word, no space (hard cuts)": (size) => fill("a", size),
  "one paragraph of words, no newline": (size) => fill("word ", size),
  "<br> flood": (size) => fill("<br>", size),
};

/** Shapes also timed on Telegram and Slack (the rest on WhatsApp, the smallest limit: the most parts). */
export const EVERY_CHANNEL_SHAPES = [
  "typical replies, repeated",
  "alternating <b><i><u><s> runs",
  "one paragraph of words, no newline",
];

export interface FormatRequest {
  shape: string;
  channel: ChannelName;
  size: number;
  runs: number;
}

export interface FormatTiming {
  /** Median milliseconds per formatReply call. */
  ms: number;
  runs: number;
  parts: number;
  error?: string;
}

/** Runs after the first are skipped when the first took longer than this: a slow shape is not noise. */
const REPEAT_BELOW_MS = 1000;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

function time(request: FormatRequest): FormatTiming {
  const make = FORMAT_SHAPES[request.shape];
  if (!make) throw new Error(`unknown shape ${request.shape}`);
  // The same shape, small, first: the timed calls then run JIT-compiled code.
  for (let i = 0; i < 3; i++) formatReply(make(4096), request.channel);
  const html = make(request.size);
  const ms: number[] = [];
  let parts = 0;
  for (let run = 0; run < request.runs; run++) {
    const started = performance.now();
    try {
      parts = formatReply(html, request.channel).length;
    } catch (error) {
      // How long it took to fail is the time that counts.
      return { ms: performance.now() - started, runs: 1, parts, error: (error as Error).name };
    }
    ms.push(performance.now() - started);
    if (ms[0]! > REPEAT_BELOW_MS) break;
  }
  return { ms: median(ms), runs: ms.length, parts };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.on("message", (message: { seq: number; request: FormatRequest }) => {
    process.send?.({ seq: message.seq, timing: time(message.request) });
  });
  process.on("disconnect", () => process.exit(0));
  process.send?.({ seq: 0 });
}
