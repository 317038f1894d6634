import { Agent, errors, request as undiciRequest } from "undici";
import { parseRetryAfter } from "../channels/shared.js";
import {
  DEFAULT_QUICKCHAT_BASE_URL,
  LEGACY_QUICKCHAT_BASE_URL,
  type QuickchatConfig,
} from "../config/schema.js";

export interface ChatRequest {
  text: string;
  convId?: string;
  clientMetadata: Record<string, string>;
}

export interface ChatReply {
  convId: string;
  /** HTML; may be empty. */
  reply: string;
  ordNumber?: number;
}

/**
 * How a failed call must be handled:
 * - `invalid_conversation`: drop the mapping and ask again without conv_id;
 * - `misconfigured`: unknown scenario, bad token, other 4xx: no retry;
 * - `retryable`: 429, 5xx, timeout, network error: back off (at least `retryAfterMs`).
 */
export class QuickchatError extends Error {
  override name = "QuickchatError";
  constructor(
    readonly kind: "invalid_conversation" | "misconfigured" | "retryable",
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface QuickchatClient {
  chat(config: QuickchatConfig, request: ChatRequest): Promise<ChatReply>;
}

const INVALID_CONV = /Conversation conv_id .* is not valid/i;
const UNKNOWN_SCENARIO = /No implementation found for scenario_id/i;
/** What an error code looks like; anything else in a body is not repeated. */
const ERROR_CODE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * The Chat endpoint over undici's `request`: per call it costs about a third of the CPU of `fetch` (measured
 * in docs/performance.md), and a relayed message makes one call. Connections are kept alive per origin.
 * `timeoutMs` bounds the wait for the answer's headers and then for each chunk of its body.
 */
export function createQuickchatClient(options: { timeoutMs: number }): QuickchatClient {
  const dispatcher = new Agent({ headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs });
  return {
    async chat(config, request) {
      const legacy = !config.token;
      const base = config.base_url ?? (legacy ? LEGACY_QUICKCHAT_BASE_URL : DEFAULT_QUICKCHAT_BASE_URL);
      const body = {
        ...(legacy && { api_key: config.api_key }),
        scenario_id: config.scenario_id,
        text: request.text,
        ...(request.convId && { conv_id: request.convId }),
        client_metadata: request.clientMetadata,
      };
      let status: number;
      let retryAfter: string | undefined;
      let text: string;
      try {
        const response = await undiciRequest(`${base.replace(/\/+$/, "")}/chat`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(!legacy && { authorization: `Bearer ${config.token}` }),
          },
          body: JSON.stringify(body),
          dispatcher,
        });
        status = response.statusCode;
        const header = response.headers["retry-after"];
        retryAfter = Array.isArray(header) ? header[0] : header;
        text = await response.body.text();
      } catch (err) {
        throw new QuickchatError("retryable", `Quickchat request failed: ${failureReason(err)}`);
      }
      if (status >= 200 && status < 300) return parseReply(text);
      // The body is the remote's words: it is read for its error code, never repeated (errors end up in the
      // database, the admin API and the logs).
      const code = errorCode(status, text);
      const detail = `Quickchat answered ${status}${code ? ` (${code})` : ""}`;
      if (code === "INVALID_CONVERSATION") throw new QuickchatError("invalid_conversation", detail, 400);
      if (status === 429 || status >= 500) {
        throw new QuickchatError("retryable", detail, status, parseRetryAfter(retryAfter));
      }
      throw new QuickchatError("misconfigured", detail, status);
    },
  };
}

/** A short code only: one this client recognises in the Chat endpoint's plain-text errors, else a JSON
 * error shape's `code` that looks like one (`{"errors":{"root":[{"code":"…"}]}}`, Quickchat's REST shape). */
function errorCode(status: number, body: string): string | undefined {
  if (status === 400 && INVALID_CONV.test(body)) return "INVALID_CONVERSATION";
  if (status === 404 && UNKNOWN_SCENARIO.test(body)) return "UNKNOWN_SCENARIO";
  try {
    const code = (JSON.parse(body) as { errors?: { root?: { code?: unknown }[] } }).errors?.root?.[0]?.code;
    return typeof code === "string" && ERROR_CODE.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

function failureReason(err: unknown): string {
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) return "timed out";
  const { message, code } = err as { message: string; code?: string };
  // Network errors (ECONNREFUSED, ENOTFOUND…) carry their code; undici's own errors have a message.
  return code && !message.includes(code) ? `${code} ${message}`.trim() : message;
}

function parseReply(text: string): ChatReply {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new QuickchatError("retryable", "Quickchat answered 200 with a body that is not JSON");
  }
  const d = data as { conv_id?: unknown; reply?: unknown; ord_number?: unknown };
  if (typeof d.conv_id !== "string" || d.conv_id === "") {
    throw new QuickchatError("retryable", "Quickchat answered 200 without a conv_id");
  }
  return {
    convId: d.conv_id,
    reply: typeof d.reply === "string" ? d.reply : "",
    ...(typeof d.ord_number === "number" && { ordNumber: d.ord_number }),
  };
}
