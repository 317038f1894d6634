/** The formatter addressed by channel name, as tests and benchmarks use it: each channel's own format. */
import { CHANNEL_FORMATS, type ChannelName } from "../../src/channels/registry.js";
import * as format from "../../src/format/index.js";

export type { FormattedPart } from "../../src/format/index.js";
export type { ChannelName };

export const formatReply = (html: string, channel: ChannelName) =>
  format.formatReply(html, CHANNEL_FORMATS[channel]);

export const formatText = (text: string, channel: ChannelName) =>
  format.formatText(text, CHANNEL_FORMATS[channel]);

/**
 * Message length limits as the platforms document them, written here rather than read from the code so a
 * wrong limit in a descriptor fails the tests: Telegram's sendMessage text (4096, after entity parsing),
 * Slack's section text (3000: parts are cut to it, although chat.postMessage's `text`, which the bridge
 * posts, takes up to 40,000, as the Slack fake checks), Twilio's WhatsApp body (1600), the Cloud API's
 * `text.body` (4096).
 */
export const DOCUMENTED_LIMITS: Record<ChannelName, number> = {
  telegram: 4096,
  slack: 3000,
  whatsapp: 1600,
  whatsapp_cloud: 4096,
};
