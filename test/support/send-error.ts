import { ChannelSendError } from "../../src/channels/types.js";

/** The ChannelSendError a send rejected with; fails the test when it resolved or threw something else. */
export async function sendError(promise: Promise<unknown>): Promise<ChannelSendError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ChannelSendError))
    throw new Error(`expected a ChannelSendError, got ${String(error)}`);
  return error;
}
