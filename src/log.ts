import { type DestinationStream, type Logger, pino } from "pino";
import prettyStream from "pino-pretty";
import { descriptors } from "./channels/registry.js";
import { databaseCause, isDatabaseError } from "./db/errors.js";

export type { Logger };

/** Keys whose values are secrets wherever they appear, besides each channel's own secret fields. */
const SECRET_KEYS = ["token", "api_key", "authorization", "password"];

/**
 * Paths whose values are secrets wherever they appear in a log object, down to three levels (a tenant's
 * block, a request's headers). Code never logs whole tenant configs or headers; this is the safety net for
 * when it does.
 */
function redactedPaths(): string[] {
  const keys = new Set([...SECRET_KEYS, ...descriptors.flatMap((channel) => channel.secrets)]);
  const headers = descriptors.flatMap((channel) => channel.secretHeaders);
  return [
    ...[...keys].flatMap((key) => [key, `*.${key}`, `*.*.${key}`]),
    ...headers.map((header) => `req.headers[${JSON.stringify(header)}]`),
  ];
}

/**
 * Where the service's lines go: stdout, as JSON lines (what log pipelines read), or as pretty, coloured lines
 * for a person at a terminal. Unset, the format follows stdout: a terminal gets pretty lines.
 */
export function logDestination(format?: "json" | "pretty"): DestinationStream {
  const pretty = format === "pretty" || (format === undefined && process.stdout.isTTY === true);
  if (!pretty) return pino.destination({ dest: 1, sync: true });
  return prettyStream({
    destination: 1,
    sync: true,
    colorize: process.stdout.isTTY === true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname",
  });
}

export function createLogger(level = "info", destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: redactedPaths(), censor: "[redacted]" },
      // "level":"warn", as the docs and a person name it, rather than pino's 40.
      formatters: { level: (label) => ({ level: label }) },
      // The safety net for a site that logs an error object as `err`: only its safe message is written (a
      // string as it is).
      serializers: { err: safeMessage },
    },
    // Synchronous: nothing is buffered at exit. pino's default buffers and flushes at exit, and that flush
    // retries forever when stdout's reader is gone (EPIPE), so a stopped service never exited; a failed
    // synchronous write just ends logging.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** What a log line says about an error: `...errorFields(err)` in the line's object. */
export interface ErrorFields {
  /** The error's own message, without the statement, its parameters or quoted values. */
  err: string;
  /** PostgreSQL's SQLSTATE, e.g. 23505. */
  sqlstate?: string;
  constraint?: string;
  table?: string;
  column?: string;
}

/**
 * The one place errors become log fields. Database errors carry users' words: drizzle's message is
 * "Failed query: <statement> params: <values>" (message texts, sender names, replies), and the server's
 * `detail` ("Failing row contains (…)", "Key (…)=(…)") and `where` quote rows and values. What an operator
 * needs is kept: the server's own message, its SQLSTATE, the constraint, table and column.
 */
export function errorFields(error: unknown): ErrorFields {
  const cause = databaseCause(error);
  const fields: ErrorFields = { err: safeMessage(cause) };
  if (!isDatabaseError(cause)) return fields;
  const e = cause as unknown as Record<string, unknown>;
  const add = (key: "sqlstate" | "constraint" | "table" | "column", ...values: unknown[]) => {
    const value = values.find((v) => typeof v === "string" && v !== "");
    if (typeof value === "string") fields[key] = value;
  };
  add("sqlstate", e.code);
  add("constraint", e.constraint, e.constraint_name);
  add("table", e.table, e.table_name);
  add("column", e.column, e.column_name);
  return fields;
}

/** The error's message as errorFields writes it. */
function safeMessage(error: unknown): string {
  const cause = databaseCause(error);
  if (!(cause instanceof Error)) return String(cause);
  // Data exceptions (SQLSTATE class 22) quote the value that failed ("invalid input syntax for type
  // integer: \"…\""), and JSON.parse quotes the text it could not read.
  const quotesValues =
    (isDatabaseError(cause) && String(cause.code).startsWith("22")) || cause instanceof SyntaxError;
  return quotesValues ? cause.message.replace(/"[^"]*"|'[^']*'/g, '"…"') : cause.message;
}

/** The stack's frames, without the message lines above them (which repeat the message, parameters and all). */
export function stackFrames(error: unknown): string | undefined {
  const stack = (error as Error | undefined)?.stack;
  return stack
    ?.split("\n")
    .filter((line) => /^\s+at /.test(line))
    .join("\n");
}
