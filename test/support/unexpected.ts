/**
 * Unexpected failure is a failure. A test that waits for "a reply" passes on the `unavailable` text a refused
 * Quickchat request ends in, or on a reply the channel took only after refusing it once; this guard fails it.
 * After every test it reads the fakes it watches: a user got the tenant's `unavailable` or `unsupported` text,
 * or a fake refused a request on its own checks, and the test did not declare it: the test fails.
 */
import { afterEach, type ExpectStatic } from "vitest";
import { type TenantInput, textsSchema } from "../../src/config/schema.js";

/** A fake the guard reads. Both lists only grow; the guard reads what was added since it last looked. */
export interface Watched {
  /** Every text users got through the fake, in order, as they see it (a channel's fake). */
  textsToUsers?(): readonly string[];
  /** Every request the fake refused on its own checks (not an answer a test asked for), described. */
  refused(): readonly string[];
}

/** The tenant texts that tell a user something went wrong. */
export type FailureText = "unavailable" | "unsupported";

export interface UnexpectedGuard {
  /** From now on, after every test, read these fakes (from their first request on). */
  watch(...fakes: Watched[]): void;
  /** The running test sends users this tenant text on purpose. */
  expectUserText(kind: FailureText): void;
  /** The running test makes a fake refuse requests on purpose: those whose description matches. */
  expectRefusal(description: RegExp): void;
}

/**
 * Registers the check after every test of the enclosing suite (or file) and returns the guard its tests
 * declare their expected failures to. `texts`: the `texts` blocks of the tenants, when they set any.
 */
export function guardUnexpected(texts: TenantInput["texts"][] = [{}]): UnexpectedGuard {
  const failureTexts = texts.map((block) => textsSchema.parse(block ?? {}));
  /** For each watched fake, how many texts and refusals earlier tests already accounted for. */
  const seen = new Map<Watched, { texts: number; refused: number }>();
  let expectedTexts = new Set<FailureText>();
  let expectedRefusals: RegExp[] = [];

  function check(expect: ExpectStatic) {
    const texts: string[] = [];
    const refusals: string[] = [];
    for (const [fake, counts] of seen) {
      const newTexts = fake.textsToUsers?.().slice(counts.texts) ?? [];
      const newRefusals = fake.refused().slice(counts.refused);
      seen.set(fake, { texts: counts.texts + newTexts.length, refused: counts.refused + newRefusals.length });
      texts.push(...newTexts);
      refusals.push(...newRefusals);
    }
    const allowed = new Set(failureTexts.flatMap((t) => [...expectedTexts].map((kind) => t[kind])));
    const failure = new Set(failureTexts.flatMap((t) => [t.unavailable, t.unsupported]));
    const unexpected = {
      texts: texts.filter((text) => failure.has(text.trim()) && !allowed.has(text.trim())),
      refusals: refusals.filter((r) => !expectedRefusals.some((pattern) => pattern.test(r))),
    };
    expectedTexts = new Set();
    expectedRefusals = [];
    expect(unexpected, "tenant texts users got and requests fakes refused, undeclared by the test").toEqual({
      texts: [],
      refusals: [],
    });
  }

  afterEach((context) => check(context.expect));

  return {
    watch(...fakes) {
      for (const fake of fakes) if (!seen.has(fake)) seen.set(fake, { texts: 0, refused: 0 });
    },
    expectUserText(kind) {
      expectedTexts.add(kind);
    },
    expectRefusal(description) {
      expectedRefusals.push(description);
    },
  };
}
