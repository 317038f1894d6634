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
 * How a failed call must be handled (DESIGN 3.4):
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

export function createQuickchatClient(options: { timeoutMs: number; fetch?: typeof fetch }): QuickchatClient {
  const doFetch = options.fetch ?? fetch;
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
      let response: Response;
      try {
        response = await doFetch(`${base.replace(/\/+$/, "")}/chat`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(!legacy && { authorization: `Bearer ${config.token}` }),
          },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (err) {
        const reason = (err as Error).name === "TimeoutError" ? "timed out" : (err as Error).message;
        throw new QuickchatError("retryable", `Quickchat request failed: ${reason}`);
      }
      const text = await response.text().catch(() => "");
      if (response.ok) return parseReply(text);
      const detail = `Quickchat answered ${response.status}: ${text.slice(0, 200)}`;
      if (response.status === 400 && INVALID_CONV.test(text)) {
        throw new QuickchatError("invalid_conversation", detail, 400);
      }
      if (response.status === 429 || response.status >= 500) {
        throw new QuickchatError(
          "retryable",
          detail,
          response.status,
          parseRetryAfter(response.headers.get("retry-after")),
        );
      }
      throw new QuickchatError("misconfigured", detail, response.status);
    },
  };
}

function parseReply(text: string): ChatReply {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new QuickchatError(
      "retryable",
      `Quickchat answered 200 with a body that is not JSON: ${text.slice(0, 200)}`,
    );
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
