/**
 * What a SIGKILL may repeat, and what it did. Between the kill and the restart, the fakes and the inbox say
 * what was in flight: a reply the channel accepted that the dead process had not recorded yet (whoever
 * resumes the message sends it again: the channels take no idempotency key), and a Quickchat call whose reply
 * was not stored yet (asked again). After the drain, every repeat must be one of those.
 */

import { allSends, type Inbox, markerIn } from "./outcomes.js";
import type { Fakes } from "./service.js";

/** Markers of the messages in flight at one kill. */
export interface InFlight {
  /** Replies a channel accepted and the inbox has no record of. */
  sends: string[];
  /** Messages Quickchat was asked for and whose reply is not stored. */
  calls: string[];
}

const markersOf = (texts: string[]) =>
  new Set(texts.map(markerIn).filter((marker): marker is string => marker !== undefined));

/**
 * What the dead process had in flight, of the messages it `held` (leased at the kill): call it after the kill
 * and before anything resumes them.
 */
export async function inFlightAt(fakes: Fakes, inbox: Inbox, held: string[]): Promise<InFlight> {
  const sent = markersOf(allSends(fakes).map((s) => s.text));
  const asked = markersOf(fakes.quickchat.calls.map((c) => c.body.text ?? ""));
  const progress = await inbox.progress(held);
  return {
    sends: held.filter((marker) => sent.has(marker) && !progress.get(marker)?.recorded),
    calls: held.filter((marker) => asked.has(marker) && progress.get(marker)?.status === "pending"),
  };
}

/** Per marker, its occurrences beyond the first. */
function repeatsOf(markers: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const marker of markers) counts.set(marker, (counts.get(marker) ?? 0) + 1);
  return new Map([...counts].filter(([, n]) => n > 1).map(([marker, n]) => [marker, n - 1]));
}

export interface Repeats {
  /** Replies sent more than once, and the sends that were in flight at the kills. */
  duplicateReplies: number;
  sendsInFlight: number;
  /** Quickchat calls made more than once, and the calls that were in flight at the kills. */
  repeatedCalls: number;
  callsInFlight: number;
  /** Markers repeated more often than they were in flight at a kill: must be empty. */
  unexplainedReplies: string[];
  unexplainedCalls: string[];
}

/** Every repeated reply and Quickchat call, against what was in flight at each kill. */
export function repeatsAfterKills(fakes: Fakes, kills: InFlight[]): Repeats {
  const replies = repeatsOf(allSends(fakes).map((s) => markerIn(s.text) ?? s.text));
  const calls = repeatsOf(fakes.quickchat.calls.map((c) => markerIn(c.body.text ?? "") ?? ""));
  const unexplained = (repeated: Map<string, number>, inFlight: (kill: InFlight) => string[]) =>
    [...repeated]
      .filter(([marker, n]) => n > kills.filter((kill) => inFlight(kill).includes(marker)).length)
      .map(([marker]) => marker);
  const sum = (counts: Iterable<number>) => [...counts].reduce((a, b) => a + b, 0);
  return {
    duplicateReplies: sum(replies.values()),
    sendsInFlight: sum(kills.map((kill) => kill.sends.length)),
    repeatedCalls: sum(calls.values()),
    callsInFlight: sum(kills.map((kill) => kill.calls.length)),
    unexplainedReplies: unexplained(replies, (kill) => kill.sends),
    unexplainedCalls: unexplained(calls, (kill) => kill.calls),
  };
}

/** One line for the test's output. */
export const describeRepeats = (r: Repeats) =>
  `duplicate replies ${r.duplicateReplies} (sends in flight at the kills: ${r.sendsInFlight}), ` +
  `repeated Quickchat calls ${r.repeatedCalls} (calls in flight at the kills: ${r.callsInFlight})`;
