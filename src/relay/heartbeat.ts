/**
 * This process's heartbeat: its row in `bridge_processes`, stamped five times per TAKEOVER_SECONDS, and the
 * takeover of processes silent for TAKEOVER_SECONDS (presumed dead: a crash, an OOM kill, a lost node). Their
 * messages go back to the queue at once, instead of waiting out their leases (LEASE_SECONDS, the fallback).
 * One statement per beat, whatever the number of messages in flight; a worker waiting on a slow Quickchat is
 * never cut short, since its process keeps beating.
 */
import { randomBytes } from "node:crypto";
import type { Database } from "../db/client.js";
import { beat, register, takeOver, unregister } from "../db/processes.js";
import { errorFields, type Logger } from "../log.js";

export interface HeartbeatOptions {
  database: Database;
  log: Logger;
  /** A process silent this long is presumed dead (TAKEOVER_SECONDS). */
  takeoverMs: number;
}

/** Beats per takeover period: a process is presumed dead after missing this many in a row. */
const BEATS_PER_PERIOD = 5;

export class Heartbeat {
  /** This process's id, the prefix of its lease owner tokens (`<id>:<n>`). */
  readonly processId = randomBytes(8).toString("base64url");
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  /**
   * When this process's current run of beats on schedule began, and its last beat (its own monotonic clock).
   * It judges others only once the run has lasted a whole takeover period: after a silence of its own (a
   * database outage, a stalled event loop) every other beat looks stale too, and the others need as long as
   * a dead process would to show they are alive.
   */
  private onScheduleSince = 0;
  private lastBeat = 0;
  private failing = false;

  constructor(private readonly options: HeartbeatOptions) {}

  private get intervalMs(): number {
    return this.options.takeoverMs / BEATS_PER_PERIOD;
  }

  /** Registers this process and starts beating. */
  async start(): Promise<void> {
    await register(this.options.database.db, this.processId);
    this.lastBeat = this.onScheduleSince = performance.now();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    // The id other processes' takeover warnings name.
    this.options.log.info({ process_id: this.processId }, "heartbeat started");
  }

  /** Stops beating and removes this process's row: call once the pool has handed its messages back. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    try {
      const { messages } = await unregister(this.options.database.db, this.processId);
      if (messages > 0)
        this.options.log.warn({ returned: messages }, "returned messages still leased to this process");
    } catch (err) {
      this.options.log.warn(
        errorFields(err),
        "could not remove this process's heartbeat; other processes take over what it still holds",
      );
    }
  }

  /** One beat at a time: a database that does not answer is not piled up with more. */
  private tick(): void {
    if (this.beating) return;
    this.beating = this.beat()
      .catch((err: unknown) => {
        if (this.failing) return;
        this.failing = true;
        this.options.log.warn(
          errorFields(err),
          "heartbeat failed; other processes take this one's messages over if it stays silent for TAKEOVER_SECONDS",
        );
      })
      .finally(() => {
        this.beating = undefined;
      });
  }

  private async beat(): Promise<void> {
    const { database, log, takeoverMs } = this.options;
    const { found, silent } = await beat(database.db, this.processId, takeoverMs);
    const now = performance.now();
    this.failing = false;
    // A beat more than two intervals after the previous one (failed beats, a stalled event loop, a slow
    // database) starts a new run.
    if (now - this.lastBeat > 2 * this.intervalMs) this.onScheduleSince = now;
    this.lastBeat = now;
    if (!found) {
      await register(database.db, this.processId);
      this.onScheduleSince = now;
      log.warn(
        { process_id: this.processId },
        "this process was presumed dead (no heartbeat for TAKEOVER_SECONDS: a pause, or the database out of reach); other processes took its messages over",
      );
    }
    if (silent.length === 0 || now - this.onScheduleSince < takeoverMs) return;
    const taken = await takeOver(database.db, silent, takeoverMs);
    if (taken.processes.length > 0)
      log.warn(
        { processes: taken.processes, returned: taken.messages },
        "took over the messages of processes presumed dead (no heartbeat for TAKEOVER_SECONDS)",
      );
  }
}
