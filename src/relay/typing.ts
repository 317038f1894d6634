import type { ChannelAdapter, DeliveryTarget } from "../channels/types.js";
import { errorFields, type Logger } from "../log.js";

/**
 * A reply within this long needs no "typing…": the answer itself arrives before the signal would be seen.
 * Skipping it halves the channel calls per message when Quickchat is fast, and channels rate-limit them
 * (Telegram counts sendChatAction against the bot's limit).
 */
export const TYPING_DELAY_MS = 1000;

/**
 * Shows the channel's "typing…" signal after `delayMs` and then every `intervalMs` until stopped. Failures
 * are only logged: a missing typing indicator must never hold up a reply.
 */
export function startTyping<Cfg>(
  adapter: ChannelAdapter<Cfg>,
  target: DeliveryTarget<Cfg>,
  log: Logger,
  delayMs = TYPING_DELAY_MS,
): () => void {
  const typing = adapter.typing;
  if (!typing) return () => {};
  const send = () =>
    typing.send(target).catch((err: unknown) => log.debug(errorFields(err), "typing signal failed"));
  let timer = setTimeout(function tick() {
    void send();
    timer = setTimeout(tick, typing.intervalMs);
    timer.unref();
  }, delayMs);
  timer.unref();
  return () => clearTimeout(timer);
}
