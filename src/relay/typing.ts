import type { ChannelAdapter, DeliveryTarget } from "../channels/types.js";
import type { Logger } from "../log.js";

/**
 * Shows the channel's "typing…" signal now and every `intervalMs` until stopped. Failures are only logged:
 * a missing typing indicator must never hold up a reply.
 */
export function startTyping<Cfg>(
  adapter: ChannelAdapter<Cfg>,
  target: DeliveryTarget<Cfg>,
  log: Logger,
): () => void {
  const typing = adapter.typing;
  if (!typing) return () => {};
  const send = () =>
    typing
      .send(target)
      .catch((err: unknown) => log.debug({ err: (err as Error).message }, "typing signal failed"));
  void send();
  const timer = setInterval(send, typing.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
