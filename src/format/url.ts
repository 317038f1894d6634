/** Schemes a chat client can open. Anything else (javascript:, data:, relative paths) is shown as text. */
const SAFE_URL = /^(?:https?:\/\/[^\s]+|mailto:[^\s]+|tel:[^\s]+|tg:\/\/[^\s]+)$/i;

/** Longer URLs are dropped to their label: they could not fit Slack or WhatsApp parts next to any text. */
const MAX_URL_LENGTH = 1000;

export function safeUrl(href: string | undefined): string | undefined {
  const url = href?.trim();
  return url && url.length <= MAX_URL_LENGTH && SAFE_URL.test(url) ? url : undefined;
}

/** Whether a link label just repeats its URL (ignoring a trailing slash), so it can be shown once. */
export function labelIsUrl(label: string, url: string): boolean {
  const strip = (s: string) => s.trim().replace(/\/$/, "");
  return strip(label) === strip(url);
}
