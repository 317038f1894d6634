/** The driver's error under drizzle's "Failed query" wrapper. */
export function databaseCause(error: unknown): unknown {
  let current = error;
  while (current instanceof Error && current.message.startsWith("Failed query:"))
    current = current.cause ?? new Error("database query failed");
  return current;
}

/** A server error from postgres.js or PGlite: a five-character SQLSTATE and a severity. */
export function isDatabaseError(error: unknown): error is Error & { code: string } {
  const e = error as { code?: unknown; severity?: unknown };
  return (
    error instanceof Error &&
    typeof e.code === "string" &&
    /^[0-9A-Z]{5}$/.test(e.code) &&
    typeof e.severity === "string"
  );
}

const DEADLOCK_DETECTED = "40P01";

/**
 * Runs `statement` again when PostgreSQL ended it as a deadlock victim: the whole statement was rolled back, so
 * running it again is safe. The SHARE lock an insert's trigger takes on a thread's message (see insertStatement
 * in inbox.ts) can, rarely, form a cycle with a worker's grouped update; PostgreSQL breaks it after
 * `deadlock_timeout`.
 */
export async function withDeadlockRetry<T>(statement: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (err) {
      const cause = databaseCause(err);
      if (attempt >= attempts || !isDatabaseError(cause) || cause.code !== DEADLOCK_DETECTED) throw err;
    }
  }
}
