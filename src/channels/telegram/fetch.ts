import { STATUS_CODES } from "node:http";
import type { Readable } from "node:stream";
import type { ApiClientOptions } from "grammy";
import { Agent, request } from "undici";

/** Kept-alive connections to each Bot API server, shared by every bot of this process. */
const dispatcher = new Agent();

type GrammyFetch = NonNullable<ApiClientOptions["fetch"]>;
type GrammyInit = Parameters<GrammyFetch>[1] & { headers?: Record<string, string> };

/**
 * grammY's `fetch` option on undici's `request` instead of grammY's default, node-fetch over node:http: a Bot
 * API call costs about half the CPU (docs/performance.md). grammY sends a JSON body (a multipart stream only
 * for file uploads, which the bridge does not make), aborts through `signal` on its own timeout, and reads
 * nothing of the answer but its JSON body, whatever the status: that is what this provides.
 */
export const telegramFetch = (async (url: string, init: GrammyInit = {}) => {
  const response = await request(url, {
    method: "POST",
    headers: init.headers,
    body: init.body as string | Readable | undefined,
    signal: init.signal as AbortSignal | undefined,
    dispatcher,
  });
  const status = response.statusCode;
  return {
    status,
    json: () =>
      response.body.json().catch(() => {
        throw new NotBotApiAnswer(status);
      }),
  };
}) as unknown as GrammyFetch;

/**
 * An answer whose body is not JSON: a proxy's error page, or no Bot API server at `api_root`. It carries the
 * HTTP status, which grammY then puts in its HttpError's message ("(502: Bad Gateway)").
 */
export class NotBotApiAnswer extends Error {
  override name = "NotBotApiAnswer";
  readonly statusText: string;
  constructor(readonly status: number) {
    super(`HTTP ${status} with a body that is not JSON`);
    this.statusText = STATUS_CODES[status] ?? "";
  }
}
