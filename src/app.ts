import { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { HttpBindings } from "@hono/node-server";
import { type Context, Hono, type MiddlewareHandler, type Next } from "hono";
import { requestId } from "hono/request-id";
import type { AdapterMap, DeliveryStatus, WebhookRequest } from "./channels/types.js";
import type { Database } from "./db/client.js";
import { ping } from "./db/client.js";
import { type Handoff, InboxWriter } from "./db/inbox-writer.js";
import { migrationsApplied } from "./db/migrate.js";
import { updatePartStatuses } from "./db/outbound.js";
import { HttpError, notFound, unavailable } from "./errors.js";
import { errorFields, type Logger, stackFrames } from "./log.js";
import type { Metrics } from "./metrics.js";
import type { TenantRegistry } from "./tenants/registry.js";

export const MAX_BODY_BYTES = 1024 * 1024;
/** How long a connection answered before its body arrived keeps reading (and discarding) before it closes. */
const LINGER_MS = 2000;

export interface AppDeps {
  database: Database;
  tenants: TenantRegistry;
  adapters: AdapterMap;
  log: Logger;
  metrics: Metrics;
  publicUrl?: string;
  /** The admin API, when ADMIN_TOKEN is set. */
  admin?: Hono;
  /** True once shutdown began: webhooks get 503 so channels redeliver them elsewhere or later. */
  isDraining(): boolean;
  /** The worker in this process, when there is one: it takes new messages straight from the insert. */
  handoff?: Handoff;
}

type Env = { Variables: { requestId: string; tenant?: string; clientGone?: boolean } };

export function errorBody(code: string, message: string, details?: { message: string; code: string }[]) {
  return { errors: { root: [{ message, code }, ...(details ?? [])] } };
}

export function createApp(deps: AppDeps): Hono<Env> {
  const app = new Hono<Env>();
  const { log, metrics } = deps;
  const inbox = new InboxWriter(deps.database.fixedPlans, undefined, deps.handoff);

  app.use(requestId());
  app.use(async (c, next) => {
    await next();
    // Answered before the request body fully arrived (unknown tenant, 413, ...): the connection cannot be
    // reused while the client is still sending, so say it ends. An unread remainder is not worth keeping
    // the connection for; a webhook whose body was read never gets here (one property check).
    const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
    if (!(incoming instanceof IncomingMessage) || incoming.complete) return;
    c.res.headers.set("connection", "close");
    linger(incoming.socket);
  });
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    const entry = {
      req_id: c.get("requestId"),
      method: c.req.method,
      path: c.req.path,
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    // A client that left mid-request is routine (slow or impatient clients, request timeouts); so is the 503
    // that asks channels to redeliver while this process shuts down.
    if (c.get("clientGone"))
      log.debug({ ...entry, status: undefined }, "client went away before its request arrived");
    else if (status >= 500 && !(status === 503 && deps.isDraining())) log.error(entry, "request failed");
    else if (status >= 400) log.info(entry, "request rejected");
    else log.debug(entry, "request");
  });

  app.onError((err, c) => {
    // Reading the body failed because the client left (or was cut off by the request timeout): whatever the
    // handler made of that, it is not the server's failure, and nobody is there to read an answer.
    if (leftMidBody(c)) {
      c.set("clientGone", true);
      return c.body(null, 400);
    }
    if (err instanceof HttpError) return c.json(errorBody(err.code, err.message, err.details), err.status);
    const stack = log.isLevelEnabled("debug") ? { stack: stackFrames(err) } : {};
    log.error({ req_id: c.get("requestId"), ...errorFields(err), ...stack }, "unhandled error");
    return c.json(errorBody("UNKNOWN", "internal error"), 500);
  });
  app.notFound((c) => c.json(errorBody("NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`), 404));

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/metrics", async (c) =>
    c.text(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }),
  );
  app.get("/readyz", async (c) => {
    // Draining: a load balancer stops sending before the webhooks' 503s would tell it.
    if (deps.isDraining()) return c.json(errorBody("UNAVAILABLE", "shutting down"), 503);
    const ready = (await ping(deps.database.db)) && (await migrationsApplied(deps.database.db));
    return ready ? c.json({ status: "ready" }) : c.json(errorBody("UNAVAILABLE", "database not ready"), 503);
  });

  if (deps.admin) app.route("/admin", deps.admin);

  /** Resolves the tenant, the adapter and the tenant's settings for it. */
  async function channelOf(c: Context<Env>, channelName: string) {
    if (deps.isDraining()) throw unavailable("shutting down; retry later");
    const adapter = deps.adapters[channelName];
    if (!adapter) throw notFound(`unknown channel ${channelName}`);
    const tenantId = c.req.param("tenant") ?? "";
    const tenant = await deps.tenants.get(tenantId);
    const config = tenant && adapter.config(tenant);
    if (!tenant) throw notFound(`unknown tenant ${tenantId}`);
    if (config === undefined) throw notFound(`tenant ${tenantId} has no ${channelName} channel`);
    c.set("tenant", tenant.id);
    return { adapter, tenant, config };
  }

  /**
   * Resolves tenant, adapter and channel config, refuses what the headers alone refute, reads the raw body
   * and verifies the request.
   */
  async function verified(c: Context<Env>, channelName: string) {
    const { adapter, tenant, config } = await channelOf(c, channelName);
    adapter.precheck?.(c.req.raw.headers, config, tenant); // before the body is read
    const req: WebhookRequest = {
      rawBody: Buffer.from(await c.req.arrayBuffer()),
      headers: c.req.raw.headers,
      url: new URL(c.req.url),
      ...(deps.publicUrl && { publicUrl: deps.publicUrl }),
    };
    await adapter.verify(req, config, tenant);
    return { adapter, tenant, config, req };
  }

  // Rejections are counted per known tenant only: unknown tenant ids must not create label values.
  // Set only once tenant and channel are known, so the path's channel segment is a real channel name.
  app.use("/webhooks/*", async (c, next) => {
    await next();
    const tenant = c.get("tenant");
    if (c.res.status >= 400 && tenant) {
      const outcome = c.get("clientGone") ? "aborted" : "rejected";
      metrics.webhooks.inc({ tenant, channel: c.req.path.split("/")[3] ?? "", outcome });
    }
  });

  // A channel's subscription handshake (Meta's hub.challenge); the other channels have no GET route.
  app.get("/webhooks/:tenant/:channel", async (c) => {
    const channelName = c.req.param("channel");
    if (!deps.adapters[channelName]?.handshake) throw notFound(`no route for GET ${c.req.path}`);
    const { adapter, tenant, config } = await channelOf(c, channelName);
    return adapter.handshake!(new URL(c.req.url), config, tenant);
  });

  /** The channel's own body limit when it declares one (Meta batches updates into bodies of up to 3 MB). */
  const limitWebhookBody: MiddlewareHandler = (c, next) =>
    checkBodySize(c, deps.adapters[c.req.param("channel") ?? ""]?.maxBodyBytes ?? MAX_BODY_BYTES, next);

  app.post("/webhooks/:tenant/:channel", limitWebhookBody, async (c) => {
    const { adapter, tenant, config, req } = await verified(c, c.req.param("channel"));
    const result = await adapter.receive(req, config, tenant);
    if (result.type === "response") return result.response;
    await recordStatuses(tenant.id, result.statuses ?? []);
    let outcome = "ignored";
    if (result.messages.length > 0) {
      const stored = await inbox.store(tenant.id, adapter.channel, result.messages);
      outcome = stored > 0 ? "stored" : "duplicate";
    } else if (result.ignored) {
      log.debug({ tenant: tenant.id, channel: adapter.channel, reason: result.ignored }, "webhook ignored");
    }
    metrics.webhooks.inc({ tenant: tenant.id, channel: adapter.channel, outcome });
    return adapter.ack();
  });

  app.post("/webhooks/:tenant/:channel/status", limitBody, async (c) => {
    const channelName = c.req.param("channel");
    // Before any verification: the body of a route that does not exist is neither read nor hashed.
    if (!deps.adapters[channelName]?.receiveStatus) {
      throw notFound(`${channelName} has no status callbacks`);
    }
    const { adapter, tenant, config, req } = await verified(c, channelName);
    await recordStatuses(tenant.id, await adapter.receiveStatus!(req, config, tenant));
    return c.body(null, 204);
  });

  async function recordStatuses(tenantId: string, reports: DeliveryStatus[]) {
    if (reports.length > 0) await updatePartStatuses(deps.database.db, tenantId, reports);
  }

  return app;
}

/** True when the connection closed before the request's body fully arrived. */
function leftMidBody(c: Context): boolean {
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  return incoming instanceof IncomingMessage && incoming.destroyed && !incoming.complete;
}

/**
 * A body limit: 1 MiB for the admin API and webhooks, unless a channel declares more. A declared
 * Content-Length (every channel sends one) is checked up front, and the body is then read straight from the
 * socket; only a chunked body goes through the counting stream, which costs a full web Request per request.
 * Either way nothing is read here: the header checks come first. The rest of a refused body is never read:
 * the connection ends (above).
 */
async function checkBodySize(c: Context, maxBytes: number, next: Next): Promise<void> {
  const declared = c.req.header("content-length");
  if (declared === undefined) countChunkedBody(c, maxBytes);
  else if (Number(declared) > maxBytes) throw tooLarge(maxBytes);
  await next();
}

export const limitBody: MiddlewareHandler = (c, next) => checkBodySize(c, MAX_BODY_BYTES, next);

const tooLarge = (maxBytes: number) =>
  new HttpError(413, "PAYLOAD_TOO_LARGE", `body exceeds ${maxBytes} bytes`);

const lingering = new WeakSet<Socket>();

/**
 * Closes `socket` in stages once node ends the connection after a `Connection: close` answer (RFC 9112
 * §9.6): a half-close after the answer, then reading and discarding what the client still sends until it
 * closes too, or LINGER_MS pass. Node's own close destroys the socket right after the answer, and a client
 * still writing the body then gets a reset that can discard the answer before it reads it.
 */
function linger(socket: Socket): void {
  if (lingering.has(socket)) return;
  lingering.add(socket);
  let timer: NodeJS.Timeout | undefined;
  socket.destroySoon = () => {
    if (socket.writable) socket.end();
    if (timer) return;
    timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once("close", () => clearTimeout(timer));
    socket.resume();
  };
}

/**
 * Replaces a chunked request's body with one that counts while it is read and fails with 413 past
 * `maxBytes`. Unlike hono's bodyLimit it reads nothing up front, so a request refused on its headers
 * costs no body at all. Past the limit the source is left unread rather than cancelled (cancelling would
 * destroy the socket before the answer); the connection then ends after the answer.
 */
function countChunkedBody(c: Context, maxBytes: number): void {
  const source = c.req.raw.body;
  if (!source) return;
  const reader = source.getReader();
  let size = 0;
  const counted = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      size += value.byteLength;
      if (size <= maxBytes) return controller.enqueue(value);
      reader.releaseLock();
      controller.error(tooLarge(maxBytes));
    },
    cancel: (reason) => reader.cancel(reason),
  });
  c.req.raw = new Request(c.req.raw, { body: counted, duplex: "half" } as RequestInit);
}
