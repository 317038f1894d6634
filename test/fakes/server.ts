import { type ServerType, serve } from "@hono/node-server";
import type { Hono } from "hono";

export interface RunningFake {
  /** Base URL such as http://127.0.0.1:41234 */
  url: string;
  close(): Promise<void>;
}

/** Serves a fake's Hono app on an ephemeral loopback port. */
export function startFake(app: Hono): Promise<RunningFake> {
  return new Promise((resolve) => {
    const server: ServerType = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            if ("closeAllConnections" in server) server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
