/** WhatsApp: `*bold*`, `_italic_`, `~strike~`, code in backticks; no link syntax, so `label (url)`. */
import { type Dialect, markerDialect, neutralizeBackticks } from "./render.js";

export const whatsappDialect: Dialect = markerDialect(
  { bold: "*", italic: "_", strike: "~", code: "`", pre: "```" },
  "parenthesized",
  neutralizeBackticks,
);
