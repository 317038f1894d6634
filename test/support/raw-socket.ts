import { connect } from "node:net";

export interface EarlyAnswer {
  /** The answer's status line and headers; empty when none came before the client gave up. */
  head: string;
  /** What followed the head (the answer's body), as received. */
  body: string;
  /** How the connection ended: `closed` after the client sent everything, or the socket error. */
  ended: "closed" | string;
}

/**
 * Sends a request whose declared body is `bodyBytes` long on a raw socket, but only its first `sentFirst`
 * bytes before the answer; then the rest of the body, as a client that writes while reading does. With
 * `sentFirst: 0` the service gets the headers alone: an answer proves it decided without the body (one that
 * waited for it would wait forever, so the client gives up after `giveUpMs` and `head` stays empty).
 * `chunked` sends the body with `Transfer-Encoding: chunked` instead of a Content-Length.
 */
export function answerBeforeBody(
  url: string,
  path: string,
  bodyBytes: number,
  headers: Record<string, string>,
  {
    sentFirst = 1024,
    giveUpMs = 10_000,
    chunked = false,
  }: { sentFirst?: number; giveUpMs?: number; chunked?: boolean } = {},
): Promise<EarlyAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise<EarlyAnswer>((resolve) => {
    const socket = connect(Number(port), hostname);
    const giveUp = setTimeout(() => socket.destroy(), giveUpMs);
    let received = "";
    let head = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (head || !received.includes("\r\n\r\n")) return;
      head = received.slice(0, received.indexOf("\r\n\r\n"));
      // The answer came before the body: send the rest of it, then end.
      send(bodyBytes - sentFirst);
      if (chunked) socket.write("0\r\n\r\n");
      socket.end();
    });
    const done = (ended: string) => {
      clearTimeout(giveUp);
      resolve({ head, body: head ? received.slice(head.length + 4) : "", ended });
    };
    socket.on("error", (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.on("close", () => done("closed"));
    const send = (bytes: number) => {
      if (bytes <= 0) return;
      if (chunked) socket.write(`${bytes.toString(16)}\r\n`);
      socket.write(Buffer.alloc(bytes, 0x78));
      if (chunked) socket.write("\r\n");
    };
    const framing = chunked ? { "transfer-encoding": "chunked" } : { "content-length": String(bodyBytes) };
    const lines = Object.entries({ ...headers, ...framing }).map(([name, value]) => `${name}: ${value}`);
    socket.write(`POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\n${lines.join("\r\n")}\r\n\r\n`);
    send(sentFirst);
  });
}
