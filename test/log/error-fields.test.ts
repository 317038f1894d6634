/**
 * errorFields and stackFrames without a database: driver errors are built here in the shapes postgres.js and
 * PGlite give them (test/db/error-fields.test.ts makes real ones on both), so each rule has its own case.
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createLogger, errorFields, stackFrames } from "../../src/log.js";

/** A server error as a driver throws it: a SQLSTATE, a severity, and whatever fields it names. */
function databaseError(code: string, message: string, fields: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { code, severity: "ERROR", ...fields });
}

describe("errorFields", () => {
  it("keeps only the message of an error that is not the database's, whatever fields it carries", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
      code: "ECONNREFUSED",
      table: "inbound_messages",
    });
    expect(errorFields(refused)).toStrictEqual({ err: "connect ECONNREFUSED 127.0.0.1:5432" });
  });

  it("names SQLSTATE, constraint, table and column, from either driver's field names", () => {
    const postgresJs = databaseError("23505", "duplicate key value violates unique constraint", {
      constraint_name: "inbound_dedupe",
      table_name: "inbound_messages",
      column_name: "dedupe_key",
    });
    const pglite = databaseError("23505", "duplicate key value violates unique constraint", {
      constraint: "inbound_dedupe",
      table: "inbound_messages",
      column: "dedupe_key",
    });
    for (const error of [postgresJs, pglite])
      expect(errorFields(error)).toStrictEqual({
        err: "duplicate key value violates unique constraint",
        sqlstate: "23505",
        constraint: "inbound_dedupe",
        table: "inbound_messages",
        column: "dedupe_key",
      });
  });

  it("skips an empty or absent field for the other name, and writes no key for a field neither names", () => {
    const error = databaseError("23502", "null value in column violates not-null constraint", {
      table: "",
      table_name: "inbound_messages",
      column: undefined,
      column_name: "text",
      constraint: null,
    });
    expect(errorFields(error)).toStrictEqual({
      err: "null value in column violates not-null constraint",
      sqlstate: "23502",
      table: "inbound_messages",
      column: "text",
    });
  });

  it("hides the values a data exception quotes, in double or single quotes", () => {
    const error = databaseError(
      "22P02",
      `invalid input syntax for type json: "Zanzibar words" near 'Quillon P'`,
    );
    expect(errorFields(error).err).toBe('invalid input syntax for type json: "…" near "…"');
    // Other classes quote names, not values: kept.
    expect(errorFields(databaseError("42P01", 'relation "inboxes" does not exist')).err).toBe(
      'relation "inboxes" does not exist',
    );
  });
});

describe("stackFrames", () => {
  it("keeps the frames and drops the message lines above them, however the message reads", () => {
    const error = new Error("payment at Zanzibar failed\n  for Quillon at home");
    error.stack = [
      "Error: payment at Zanzibar failed",
      "  for Quillon at home",
      "    at claim (/app/dist/db/inbox.js:10:5)",
      "    at async Worker.run (/app/dist/relay/worker.js:42:7)",
    ].join("\n");
    expect(stackFrames(error)).toBe(
      "    at claim (/app/dist/db/inbox.js:10:5)\n    at async Worker.run (/app/dist/relay/worker.js:42:7)",
    );
  });

  it("is undefined for what has no stack", () => {
    expect(stackFrames(undefined)).toBeUndefined();
    expect(stackFrames({ message: "not an error" })).toBeUndefined();
  });
});

describe("createLogger", () => {
  it("writes a string logged as err as it is, and an error object as its safe message", () => {
    const lines: string[] = [];
    const log = createLogger("info", { write: (line: string) => void lines.push(line) });
    log.error({ err: 'a "plain" reason' }, "failed");
    log.error({ err: databaseError("22P02", 'invalid input syntax for type integer: "Zanzibar"') }, "failed");
    expect(lines.map((line) => JSON.parse(line).err)).toEqual([
      'a "plain" reason',
      'invalid input syntax for type integer: "…"',
    ]);
  });

  it("logs at info by default, synchronously to stdout (nothing left buffered at exit)", () => {
    const log = createLogger();
    const stream = (log as unknown as Record<symbol, { fd: number; sync: boolean }>)[pino.symbols.streamSym]!;
    expect(log.level).toBe("info");
    expect([stream.fd, stream.sync]).toEqual([1, true]);
  });
});
