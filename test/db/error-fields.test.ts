/**
 * Database errors in logs: what failed (SQLSTATE, constraint, table, the server's message) and nothing of
 * the statement's parameters or the rows they came from, on both drivers, through the helper and through
 * the logger's safety net for an error object logged as is.
 */
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createLogger, errorFields } from "../../src/log.js";
import { DATABASE_KINDS, migratedDatabase } from "../support/db.js";

const PRIVATE = "Zanzibar private words";
const NAME = "Quillon Privatus";

/** An error object logged as `err`, as a site that forgot errorFields would: the lines written. */
function loggedAsIs(err: unknown): string {
  const lines: string[] = [];
  const log = createLogger("trace", { write: (line: string) => void lines.push(line) });
  log.error({ err }, "failed");
  log.error(err as Error, "failed"); // pino files a first argument that is an error under `err` too
  return lines.join("\n");
}

const insertMessage = (text: string, dedupe = "d1") => sql`
  insert into inbound_messages (tenant_id, channel, thread_key, dedupe_key, kind, sender, route, text)
  values ('acme', 'telegram', 't1', ${dedupe}, 'text', ${JSON.stringify({ id: "1", name: NAME })}::jsonb, '{}', ${text})`;

describe.each(DATABASE_KINDS)("database errors in logs (%s)", (kind) => {
  async function failure(statement: ReturnType<typeof sql>, setup?: ReturnType<typeof sql>) {
    const db = await migratedDatabase(kind);
    if (setup) await db.execute(setup);
    const err = await db.execute(statement).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    // The driver's own error (through drizzle's wrapper) quotes the parameters: the reason for all this.
    expect(JSON.stringify({ message: (err as Error).message, cause: (err as Error).cause })).toContain(
      PRIVATE,
    );
    return err;
  }

  it("a check violation: the constraint and table, not the failing row", async () => {
    const err = await failure(
      insertMessage(PRIVATE),
      sql`alter table inbound_messages add constraint no_zanzibar check (text not like '%Zanzibar%') not valid`,
    );
    expect(errorFields(err)).toEqual({
      err: 'new row for relation "inbound_messages" violates check constraint "no_zanzibar"',
      sqlstate: "23514",
      constraint: "no_zanzibar",
      table: "inbound_messages",
    });
    expect(loggedAsIs(err)).toContain("no_zanzibar");
    for (const logged of [JSON.stringify(errorFields(err)), loggedAsIs(err)]) {
      expect(logged).not.toContain("Zanzibar private");
      expect(logged).not.toContain(NAME);
      expect(logged).not.toContain("params");
    }
  });

  it("a unique violation: the constraint, not the key's values", async () => {
    const db = await migratedDatabase(kind);
    await db.execute(insertMessage("first", PRIVATE));
    const err = await db.execute(insertMessage(PRIVATE, PRIVATE)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(errorFields(err)).toMatchObject({ sqlstate: "23505", constraint: "inbound_dedupe_uq" });
    for (const logged of [JSON.stringify(errorFields(err)), loggedAsIs(err)]) {
      expect(logged).not.toContain(PRIVATE);
      expect(logged).not.toContain(NAME);
    }
  });

  it("a data exception: the server's message without the value it quotes", async () => {
    const err = await failure(sql`select ${PRIVATE}::int`);
    expect(errorFields(err)).toEqual({
      err: 'invalid input syntax for type integer: "…"',
      sqlstate: "22P02",
    });
    expect(loggedAsIs(err)).not.toContain(PRIVATE);
  });
});

describe("other errors in logs", () => {
  it("JSON.parse's excerpt of the text it could not read is left out", () => {
    const err = (() => {
      try {
        return JSON.parse(`not json: ${PRIVATE}`);
      } catch (e) {
        return e;
      }
    })();
    expect((err as Error).message).toContain("not json");
    expect(errorFields(err).err).not.toContain("not json");
    expect(loggedAsIs(err)).not.toContain("not json");
  });

  it("an error's own message stays as it is", () => {
    expect(errorFields(new Error("connect ECONNREFUSED 127.0.0.1:5432"))).toEqual({
      err: "connect ECONNREFUSED 127.0.0.1:5432",
    });
    expect(errorFields("a string")).toEqual({ err: "a string" });
  });
});
