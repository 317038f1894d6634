/**
 * Raw HTTP for the fault suite: any method, any bytes, any header, without fetch's normalisation; and a
 * recorder of everything the service answered, for the secret search.
 */
import http from "node:http";

export interface RawRequest {
  method: string;
  /** Path and query, already percent-encoded where needed. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  ms: number;
}

const agent = new http.Agent({ keepAlive: process.env.FAULTS_KEEPALIVE !== "0", maxSockets: 64 });

/**
 * Sends one request. The service may answer early and close (413 on an oversized body) while the client is
 * still writing; the answer it sent is what counts, so a write error after a response is not a failure.
 */
export function send(baseUrl: string, req: RawRequest, timeoutMs = 30_000): Promise<RawResponse> {
  const url = new URL(baseUrl);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let responded = false;
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.path,
        headers: {
          ...req.headers,
          ...(req.body !== undefined && { "content-length": String(Buffer.byteLength(req.body)) }),
        },
        agent,
        timeout: timeoutMs,
      },
      (response) => {
        responded = true;
        const chunks: Buffer[] = [];
        response.on("data", (c: Buffer) => chunks.push(c));
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
            ms: performance.now() - started,
          }),
        );
        response.on("error", reject);
      },
    );
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    let previous = "";
    request.on("socket", (socket) => {
      const tagged = socket as typeof socket & { lastRequest?: string };
      previous = tagged.lastRequest ?? "";
      tagged.lastRequest = `${req.method} ${req.path.slice(0, 80)} (${Buffer.byteLength(req.body ?? "")} bytes)`;
    });
    request.on("error", (err) => {
      if (!responded)
        reject(new Error(`${err.message}${previous ? `; socket previously carried ${previous}` : ""}`));
    });
    request.end(req.body);
  });
}

/** Every response body and header value seen, as text, for the secret search. */
export class ResponseLog {
  readonly entries: string[] = [];

  record(
    what: string,
    status: number,
    headers: Iterable<[string, string | string[] | undefined]>,
    body: Buffer | string,
  ) {
    const lines = [...headers].map(
      ([name, value]) => `${name}: ${Array.isArray(value) ? value.join(", ") : value}`,
    );
    this.entries.push(`${what} → ${status}\n${lines.join("\n")}\n\n${body.toString()}`);
  }
}
