/**
 * Times formatReply (parse + layout + split + render, markup and plain) for a typical 2 KB reply and a
 * 50 KB reply on each channel. Run with `npx tsx bench/format.ts`. Not a test: numbers depend on the machine.
 */
import { pathToFileURL } from "node:url";
import { type ChannelName, formatReply } from "../test/support/format.js";

const CHANNELS: ChannelName[] = ["telegram", "slack", "whatsapp"];

/** About 2 KB of the HTML Quickchat sends: paragraphs, a list, a link, code and some LLM Markdown. */
export const TYPICAL_REPLY = [
  "<p>Hi! Thanks for reaching out. Here is how to <b>reset your password</b> in a few steps:</p>",
  '<ol><li>Open <a href="https://example.com/settings?tab=security&amp;ref=chat">Settings → Security</a>.</li>',
  "<li>Click <strong>Reset password</strong> and check your inbox (also the <i>spam</i> folder).</li>",
  "<li>Follow the link within <u>24 hours</u>; after that it expires &amp; you need a new one.</li></ol>",
  "<p>If you use the API, call it like this:<br>```bash<br>curl -X POST https://api.example.com/v1/reset \\<br>",
  '  -H "Authorization: Bearer $TOKEN" -d \'{"email": "me@example.com"}\'<br>```</p>',
  "<p>**Note:** passwords must have at least 12 characters, and `2 * 3 * 4` is not a valid one. ",
  "Some users also asked about snake_case_names in usernames: they are fine.</p>",
  "<blockquote>Security tip: never share your password, not even with our support team.</blockquote>",
  "<ul><li>Two-factor authentication: see [our guide](https://example.com/docs/2fa).</li>",
  '<li>Lost access to your email? Contact <a href="mailto:support@example.com">support@example.com</a>.</li>',
  "<li>Anything else? Just reply here &mdash; I'm happy to help!</li></ul>",
  "<p>Best regards,<br><em>Your Example assistant</em>&nbsp;🤖</p>",
  '<p>P.S. Our status page is at <a href="https://status.example.com">https://status.example.com</a> ',
  "and shows current incidents, scheduled maintenance &amp; uptime over the last 90 days.</p>",
  "<h3>Frequently asked</h3><p><b>Can I reuse an old password?</b> No: the last five passwords are ",
  "remembered, and reusing one of them is rejected. <b>How long does a reset take?</b> Usually less ",
  "than a minute; emails can take up to 10 minutes during peak hours. <b>Is my data safe?</b> Yes, ",
  'all data is encrypted at rest and in transit, see <a href="https://example.com/security">our ',
  "security page</a> for details &amp; certifications.</p>",
].join("\n");

const LONG_REPLY = TYPICAL_REPLY.repeat(Math.ceil(50_000 / TYPICAL_REPLY.length));

function millisecondsPerCall(html: string, channel: ChannelName, iterations: number): number {
  for (let i = 0; i < Math.min(iterations, 200); i++) formatReply(html, channel); // warm up the JIT
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) formatReply(html, channel);
  return Number(process.hrtime.bigint() - start) / 1e6 / iterations;
}

export interface FormatFigure {
  channel: ChannelName;
  /** ms per formatReply call for the ~2 KB reply. */
  typicalMs: number;
  /** ms per formatReply call for the ~50 KB reply. */
  longMs: number;
  longParts: number;
}

/** Times both replies on every channel (bench/run.ts uses this for its formatting figures). */
export function formatFigures(iterations = { typical: 20_000, long: 500 }): FormatFigure[] {
  return CHANNELS.map((channel) => ({
    channel,
    typicalMs: millisecondsPerCall(TYPICAL_REPLY, channel, iterations.typical),
    longMs: millisecondsPerCall(LONG_REPLY, channel, iterations.long),
    longParts: formatReply(LONG_REPLY, channel).length,
  }));
}

export const REPLY_SIZES = { typical: TYPICAL_REPLY.length, long: LONG_REPLY.length };

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`typical reply: ${TYPICAL_REPLY.length} chars, long reply: ${LONG_REPLY.length} chars`);
  console.log("channel    2 KB ms/op   50 KB ms/op   50 KB parts");
  for (const f of formatFigures()) {
    console.log(
      `${f.channel.padEnd(10)} ${f.typicalMs.toFixed(4).padStart(11)} ${f.longMs.toFixed(3).padStart(13)} ${String(f.longParts).padStart(13)}`,
    );
  }
}
