import { types } from "node:util";
import { type DestinationStream, type Logger, pino } from "pino";
import prettyStream from "pino-pretty";
import { descriptors } from "./channels/registry.js";
import { databaseCause, isDatabaseError } from "./db/errors.js";

export type { Logger };

/**
 * The logger's safety net. Code logs no secrets (it logs ids, never whole tenant configs, settings or request
 * headers); for when it does anyway, every string or object under a secret's name is written as "[redacted]",
 * at any depth, and every error as its safe message. A name is compared without case, "-", "_" or a plural
 * "s", so `bot_token`, `botToken`, `BOT_TOKEN` and `bot_tokens` are one name: a secret's name is each
 * channel's secret fields and headers, and any name that ends in one of these.
 */
const SECRET_ENDINGS = [
  "token",
  "secret",
  "secretkey",
  "password",
  "apikey",
  "authorization",
  "signature",
  "cookie",
];
/** Names that hold a secret without ending like one: PostgreSQL's URL may carry its password. */
const SECRET_NAMES = ["databaseurl"];
/** Log objects are shallow; anything deeper than this is written as "[too deep]", unread. */
const MAX_DEPTH = 8;

const comparable = (name: string) => name.toLowerCase().replace(/[-_]/g, "");

function secretNames(): Set<string> {
  const declared = descriptors.flatMap((channel) => [...channel.secrets, ...channel.secretHeaders]);
  return new Set([...SECRET_NAMES, ...declared].map(comparable));
}

/** An error, from this realm or another: written as its safe message, never as its fields. */
const isError = (value: unknown): value is Error => value instanceof Error || types.isNativeError(value);

/** A value worth hiding under a secret's name: a flag or a count (`has_token: true`) is not one. */
const mayBeSecret = (value: unknown) =>
  typeof value === "string" || (typeof value === "object" && value !== null);

/**
 * A copy of `value` as the log line may show it: secrets redacted and errors as their safe messages, down to
 * MAX_DEPTH. An object with `toJSON` is looked at as JSON.stringify would write it. An object met twice is
 * shown the same both times, and inside itself as "[circular]".
 */
function redacted(
  value: unknown,
  isSecret: (name: string) => boolean,
  depth = 0,
  shown = new WeakMap<object, unknown>(),
): unknown {
  if (isError(value)) return safeMessage(value);
  if (typeof value !== "object" || value === null) return value;
  if (shown.has(value)) return shown.get(value);
  if (depth === MAX_DEPTH) return "[too deep]";
  shown.set(value, "[circular]");
  const { toJSON } = value as { toJSON?: unknown };
  const json = typeof toJSON === "function" ? toJSON.call(value) : value;
  const result =
    json === value ? redactedEntries(value, isSecret, depth, shown) : redacted(json, isSecret, depth, shown);
  shown.set(value, result);
  return result;
}

function redactedEntries(
  value: object,
  isSecret: (name: string) => boolean,
  depth: number,
  shown: WeakMap<object, unknown>,
): unknown {
  const inner = (item: unknown) => redacted(item, isSecret, depth + 1, shown);
  if (Array.isArray(value)) return value.map(inner);
  // Each value is read once: a getter runs once.
  return Object.fromEntries(
    Object.entries(value).map(([name, item]) => [
      name,
      mayBeSecret(item) && isSecret(name) ? "[redacted]" : inner(item),
    ]),
  );
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
  const names = secretNames();
  const isSecret = (name: string) => {
    const key = comparable(name).replace(/s$/, ""); // `tokens` as `token`
    return names.has(key) || SECRET_ENDINGS.some((ending) => key.endsWith(ending));
  };
  const safe = (value: unknown) => {
    try {
      return redacted(value, isSecret);
    } catch {
      // A getter or a proxy that throws: nothing of the object is written, and the caller's line still is.
      return { log_error: "the logged object could not be read" };
    }
  };
  const logger = pino(
    {
      level,
      // "level":"warn", as the docs and a person name it, rather than pino's 40.
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        // Every argument passes the net before pino reads it: the line's object, printf-style arguments, and
        // an error logged on its own, whose message pino would otherwise write as the line's `msg`.
        logMethod(args, write) {
          const [first, ...rest] = args as unknown[];
          const lineArgs = isError(first)
            ? [{ err: first }, ...(typeof rest[0] === "string" ? rest : [safeMessage(first), ...rest])]
            : [first, ...rest];
          return write.apply(this, lineArgs.map(safe) as Parameters<typeof write>);
        },
      },
      // What reaches `err` is a string by now, written as it is. Anything else (an error-like object that is
      // not an Error) is written as String(value), never as pino's default of message, stack and every field.
      serializers: { err: safeMessage },
    },
    // Synchronous: nothing is buffered at exit. pino's default buffers and flushes at exit, and that flush
    // retries forever when stdout's reader is gone (EPIPE), so a stopped service never exited; a failed
    // synchronous write just ends logging.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
  // Children reset pino's bindings formatter, so a child's fields pass the net here: a child inherits these
  // methods from its parent, so its own children, and fields added later, pass too.
  const { child, setBindings } = logger;
  logger.child = function (this: Logger, bindings, options) {
    return child.call(this, safe(bindings) as typeof bindings, options);
  } as Logger["child"];
  logger.setBindings = function (this: Logger, bindings) {
    setBindings.call(this, safe(bindings) as typeof bindings);
  };
  return logger;
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
  if (!isError(cause)) return String(cause);
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
