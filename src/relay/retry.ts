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
