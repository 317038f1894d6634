/**
 * Delivery of a stored reply: formats it into the channel's parts and sends them in order (the markup
 * rejected, a part goes again as plain text), records each sent part, and reschedules a failed send within
 * the message's retry window or ends the message as failed.
 */
import {
  type ChannelAdapter,
  ChannelSendError,
  type DeliveryTarget,
  type SentPart,
} from "../channels/types.js";
import type { Database } from "../db/client.js";
import type { GroupCommit } from "../db/group-commit.js";
import {
  type ClaimedMessage,
  type FinalState,
  type Lease,
  release,
  reschedule,
  updateRoute,
} from "../db/inbox.js";
import { type PartRecord, recordPart, sentParts } from "../db/outbound.js";
import { type FormattedPart, formatReply } from "../format/index.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { WorkerOptions } from "./pool.js";
import { retryOrGiveUp } from "./retry.js";

/** What delivery needs from the worker pool. */
export interface DeliveryDeps {
  database: Database;
  metrics: Metrics;
  options: WorkerOptions;
  /** Final states of concurrent messages, written together; true when the thread has a message waiting. */
  finals: GroupCommit<FinalState, boolean>;
  /** True once a stop's timeout has passed: no new send, the message is handed back. */
  abandoning: () => boolean;
}

/**
 * Sends the reply's parts in order, skipping parts a previous attempt delivered. True when the message ended
 * and its thread has a message waiting behind it.
 */
export async function deliver(
  deps: DeliveryDeps,
  row: ClaimedMessage,
  lease: Lease,
  adapter: ChannelAdapter<unknown>,
  target: DeliveryTarget<unknown>,
  reply: { html: string; error?: string },
  log: Logger,
  /** When this worker took the message (performance.now()), for the delivered line's time. */
  startedAt: number,
): Promise<boolean> {
  const db = deps.database.db;
  const labels = { tenant: row.tenantId, channel: adapter.channel };
  const count = (outcome: string) => deps.metrics.sends.inc({ ...labels, outcome });
  const done = async (status: "delivered" | "failed", error?: string, lastPart?: PartRecord) => {
    const successorWaiting = await deps.finals.submit({
      lease,
      status,
      ...(error !== undefined && { error }),
      ...(lastPart && { lastPart }),
    });
    deps.metrics.messages.inc({ ...labels, status });
    // Failures have their own lines; a delivered reply says so too (its text never: only its shape).
    if (status === "delivered") {
      log.info({ parts: parts.length, ms: Math.round(performance.now() - startedAt) }, "reply delivered");
    }
    return successorWaiting;
  };
  const parts = formatReply(reply.html, adapter.format);
  // Parts exist only once a reply was stored: a message that was pending at its claim has none.
  const alreadySent = row.status === "pending" ? new Set<number>() : await sentParts(db, row.id);
  let current = target;
  for (const [index, part] of parts.entries()) {
    if (alreadySent.has(index)) continue;
    // A stop past its timeout: no new send; the next worker resumes at this part.
    if (deps.abandoning()) {
      await release(db, [lease]);
      return false;
    }
    let sent: SentPart;
    try {
      sent = await sendPart(adapter, current, part, count);
    } catch (err) {
      // Not a classified failure: its message may quote a remote answer, so only its name is kept.
      const failure =
        err instanceof ChannelSendError
          ? err
          : new ChannelSendError("retry", `unexpected ${(err as Error)?.name ?? typeof err}`, "unknown");
      const retry =
        failure.kind === "retry" && retryOrGiveUp(row, deps.options, failure.message, failure.retryAfterMs);
      count(failure.kind === "retry" ? "retry" : "permanent");
      if (retry) {
        log.warn(
          { err: failure.message, code: failure.code, part: index, delay_ms: Math.round(retry.delayMs) },
          "send failed; retrying later",
        );
        await reschedule(db, lease, retry.delayMs, undefined, retry.giveUpAt);
        return false;
      }
      log.error(
        { err: failure.message, code: failure.code, part: index },
        "send failed permanently; message failed",
      );
      return done("failed", `${adapter.channel} send failed: ${failure.message}`, {
        inboundId: row.id,
        part: index,
        status: "failed",
        errorCode: failure.code,
      });
    }
    if (sent.route) {
      current = { ...current, route: sent.route };
      await updateRoute(db, lease, sent.route);
    }
    const record = {
      inboundId: row.id,
      part: index,
      status: "sent",
      channelMessageId: sent.channelMessageId,
    };
    // The last part's record goes with the final state, in one statement.
    if (index === parts.length - 1) return done(reply.error ? "failed" : "delivered", undefined, record);
    if (!(await recordPart(db, record, lease))) {
      log.warn({ part: index }, "lease lost during delivery; another worker has the message");
      return false;
    }
  }
  return done(reply.error ? "failed" : "delivered");
}

/** One part; when the channel rejects the markup, the same part again as plain text. */
async function sendPart(
  adapter: ChannelAdapter<unknown>,
  target: DeliveryTarget<unknown>,
  part: FormattedPart,
  count: (outcome: string) => void,
): Promise<SentPart> {
  try {
    const sent = await adapter.send(target, part.text, { plain: false });
    count("sent");
    return sent;
  } catch (err) {
    if (!(err instanceof ChannelSendError && err.kind === "markup")) throw err;
    const sent = await adapter.send(target, part.plain, { plain: true });
    count("plain_fallback");
    return sent;
  }
}
