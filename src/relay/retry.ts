import type { ClaimedMessage } from "../db/inbox.js";

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * Exponential backoff with "equal jitter" (half fixed, half random), so a burst of failures spreads out
 * instead of retrying in lockstep; never sooner than the server's Retry-After.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  retryAfterMs = 0,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  const delay = exp / 2 + random() * (exp / 2);
  return Math.max(delay, retryAfterMs);
}

/** A later retry of a message: when, why, and when its retries stop. */
export interface Retry {
  type: "retry";
  delayMs: number;
  error: string;
  giveUpAt: Date;
}

/** A retry while the message is within its retry window, else undefined (give up). */
export function retryOrGiveUp(
  row: Pick<ClaimedMessage, "attempts" | "giveUpAt">,
  options: { maxRetryMs: number; backoff: BackoffPolicy },
  error: string,
  retryAfterMs?: number,
): Retry | undefined {
  const giveUpAt = row.giveUpAt ?? new Date(Date.now() + options.maxRetryMs);
  const delayMs = backoffDelay(row.attempts, options.backoff, retryAfterMs);
  if (Date.now() + delayMs > giveUpAt.getTime()) return undefined;
  return { type: "retry", delayMs, error, giveUpAt };
}
