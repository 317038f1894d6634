import { type ServerType, serve } from "@hono/node-server";
import type { Hono } from "hono";

export interface RunningFake {
  /** Base URL such as http://127.0.0.1:41234 */
  url: string;
  close(): Promise<void>;
  /**
   * Stops listening and drops the open connections: until `acceptConnections`, a client's next request
   * finds nothing at this address (ECONNREFUSED), as when the platform's API cannot be reached.
   */
  refuseConnections(): Promise<void>;
  /** Listens again on the same port. */
  acceptConnections(): Promise<void>;
}

/** Serves a fake's Hono app on an ephemeral loopback port. */
export function startFake(app: Hono): Promise<RunningFake> {
  return new Promise((resolve) => {
    const server: ServerType = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => {
      const stop = () =>
        new Promise<void>((done) => {
          if (!server.listening) return done();
          server.close(() => done());
          // After close(): kept-alive connections would otherwise still reach the app.
          if ("closeAllConnections" in server) server.closeAllConnections();
        });
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: stop,
        refuseConnections: stop,
        acceptConnections: () =>
          new Promise<void>((done) => {
            if (server.listening) return done();
            server.listen(info.port, "127.0.0.1", () => done());
          }),
      });
    });
  });
}
