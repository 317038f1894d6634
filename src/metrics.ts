import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * The service's Prometheus metrics. Labels are bounded: tenant id, channel, outcome or class; never thread or
 * user ids. One registry per running bridge, so tests (and several bridges in one process) do not collide.
 */
export function createMetrics(readQueue: () => Promise<{ depth: number; oldest: number }>) {
  // Both queue gauges are read in one query per scrape.
  let pending: Promise<{ depth: number; oldest: number }> | undefined;
  const queue = () => {
    pending ??= readQueue().finally(() => {
      pending = undefined;
    });
    return pending;
  };
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "bridge_" });
  const metrics = {
    registry,
    webhooks: new Counter({
      name: "bridge_webhooks_total",
      help: "Inbound webhooks by tenant, channel and outcome (stored, duplicate, ignored, rejected, aborted: the client left mid-body)",
      labelNames: ["tenant", "channel", "outcome"] as const,
      registers: [registry],
    }),
    messages: new Counter({
      name: "bridge_messages_finished_total",
      help: "Messages reaching a final status (delivered, failed)",
      labelNames: ["tenant", "channel", "status"] as const,
      registers: [registry],
    }),
    quickchatLatency: new Histogram({
      name: "bridge_quickchat_request_seconds",
      help: "Quickchat Chat endpoint latency",
      labelNames: ["tenant"] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
      registers: [registry],
    }),
    quickchatErrors: new Counter({
      name: "bridge_quickchat_errors_total",
      help: "Quickchat failures by class (invalid_conversation, misconfigured, retryable)",
      labelNames: ["tenant", "class"] as const,
      registers: [registry],
    }),
    sends: new Counter({
      name: "bridge_outbound_sends_total",
      help: "Outbound message parts by channel and outcome (sent, plain_fallback, retry, permanent)",
      labelNames: ["tenant", "channel", "outcome"] as const,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: "bridge_messages_in_flight",
      help: "Messages this process is working on",
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: "bridge_queue_depth",
      help: "Unfinished messages in the inbox (all processes)",
      registers: [registry],
      async collect() {
        this.set((await queue()).depth);
      },
    }),
    oldestPendingAge: new Gauge({
      name: "bridge_queue_oldest_pending_seconds",
      help: "Age of the oldest unfinished message in the inbox",
      registers: [registry],
      async collect() {
        this.set((await queue()).oldest);
      },
    }),
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
