/** Quickchat accepts at most 5 keys in client_metadata. */
export const MAX_METADATA_KEYS = 5;

export interface MetadataInput {
  channel: string;
  channelUserId: string;
  threadKey: string;
  userName?: string;
  kbTopic?: string;
}

/**
 * The channel identity sent with every message. `kb_topic` must be on every request of a
 * conversation for the knowledge-base filter to apply, so it is always included when the tenant sets one.
 */
export function buildClientMetadata(input: MetadataInput): Record<string, string> {
  const metadata: Record<string, string> = {
    channel: input.channel,
    channel_user_id: input.channelUserId,
    channel_thread_id: input.threadKey,
  };
  if (input.userName) metadata.user_name = input.userName;
  if (input.kbTopic) metadata.kb_topic = input.kbTopic;
  return metadata;
}
