import { and, count, desc, eq, sql } from "drizzle-orm";
import { type Context, Hono } from "hono";
import { z } from "zod";
import { limitBody } from "../app.js";
import { CHANNEL_NAMES } from "../channels/registry.js";
import { safeEqual } from "../channels/shared.js";
import { tenantId, tenantSchema } from "../config/schema.js";
import type { Db } from "../db/client.js";
import { conversations, inboundMessages, MESSAGE_STATUSES, outboundMessages } from "../db/schema.js";
import { HttpError, notFound, unauthorized } from "../errors.js";
import { keepUnchangedSecrets, maskTenant } from "../tenants/fields.js";
import { TenantUnreadableError } from "../tenants/registry.js";
import type { TenantStore } from "../tenants/store.js";

export interface AdminDeps {
  token: string;
  db: Db;
  tenants: TenantStore;
  /** Wakes the worker pool after a retry re-queues a message. */
  wake(): void;
}

const BEARER = /^bearer +(.+)$/i;

const CHANNEL = z.enum(CHANNEL_NAMES);

const page = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(10),
  offset: z.coerce.number().int().min(0).default(0),
});

/** Validates with zod; 422 naming each failing path, in the JSON error shape. */
function validate<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((issue) => {
    const path = issue.path.join(".");
    const message =
      issue.code === "unrecognized_keys"
        ? `unknown key ${issue.keys.map((k) => (path ? `${path}.${k}` : k)).join(", ")}`
        : `${path || "(root)"}: ${issue.message}`;
    return { message, code: "VALIDATION_ERROR", path };
  });
  throw new HttpError(422, "VALIDATION_ERROR", "request failed validation", details);
}

async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch (err) {
    if (err instanceof HttpError) throw err; // the body limit (413)
    throw new HttpError(400, "BAD_REQUEST", "body is not valid JSON");
  }
}

/** The admin API, mounted at /admin when ADMIN_TOKEN is set. */
export function createAdminRoutes(deps: AdminDeps): Hono {
  const app = new Hono();
  const { db, tenants } = deps;

  app.use(async (c, next) => {
    // The scheme name is case-insensitive (RFC 9110 11.1).
    const presented = BEARER.exec(c.req.header("authorization") ?? "")?.[1] ?? "";
    if (!presented || !safeEqual(presented, deps.token)) throw unauthorized("missing or wrong admin token");
    await next();
  });
  // The webhooks' limit, after authentication: a declared Content-Length over it is refused unread, a
  // longer chunked body when it passes the limit.
  app.use(limitBody);

  const shown = (tenant: Parameters<typeof maskTenant>[0]) => ({
    ...maskTenant(tenant),
    source: tenants.source(tenant.id) ?? "api",
  });

  const existing = async (id: string) => {
    const tenant = await tenants.get(id);
    if (!tenant) throw notFound(`unknown tenant ${id}`);
    return tenant;
  };

  app.get("/tenants", async (c) => {
    const { limit, offset } = validate(page, c.req.query());
    const all = await tenants.list();
    return c.json({ items: all.slice(offset, offset + limit).map(shown), offset, limit, count: all.length });
  });

  app.post("/tenants", async (c) => {
    const tenant = validate(tenantSchema, keepUnchangedSecrets(await jsonBody(c), undefined));
    await tenants.create(tenant);
    return c.json(shown(tenant), 201);
  });

  app.get("/tenants/:id", async (c) => c.json(shown(await existing(c.req.param("id")))));

  app.put("/tenants/:id", async (c) => {
    const id = c.req.param("id");
    const body = await jsonBody(c);
    const withId = body && typeof body === "object" ? { id, ...body } : body;
    // A stored tenant this process cannot read can still be replaced, by a body that carries every secret
    // (masked values are refused: there is nothing here to keep).
    const stored = await tenants.get(id).catch((err: unknown) => {
      if (err instanceof TenantUnreadableError) return undefined;
      throw err;
    });
    const tenant = validate(tenantSchema, keepUnchangedSecrets(withId, stored));
    if (tenant.id !== id) throw new HttpError(422, "VALIDATION_ERROR", "id in the body differs from the URL");
    await tenants.replace(tenant);
    return c.json(shown(tenant));
  });

  app.delete("/tenants/:id", async (c) => {
    await tenants.remove(c.req.param("id"));
    return c.body(null, 204);
  });

  app.get("/tenants/:id/conversations", async (c) => {
    const id = (await existing(c.req.param("id"))).id;
    const query = validate(page.extend({ channel: CHANNEL.optional() }), c.req.query());
    const where = and(
      eq(conversations.tenantId, id),
      query.channel ? eq(conversations.channel, query.channel) : undefined,
    );
    const [total] = await db.select({ n: count() }).from(conversations).where(where);
    const items = await db
      .select({
        channel: conversations.channel,
        thread_key: conversations.threadKey,
        conv_id: conversations.convId,
        created_at: conversations.createdAt,
        updated_at: conversations.updatedAt,
      })
      .from(conversations)
      .where(where)
      .orderBy(desc(conversations.updatedAt))
      .limit(query.limit)
      .offset(query.offset);
    return c.json({ items, offset: query.offset, limit: query.limit, count: total?.n ?? 0 });
  });

  app.delete("/tenants/:id/conversations/:threadId", async (c) => {
    const id = (await existing(c.req.param("id"))).id;
    const { channel } = validate(z.object({ channel: CHANNEL.optional() }), {
      channel: c.req.query("channel") || undefined,
    });
    const threadId = c.req.param("threadId");
    // Thread keys never hold NUL (PostgreSQL text cannot), so no conversation matches one that does.
    if (threadId.includes("\u0000")) throw notFound("no conversation for that thread");
    const deleted = await db
      .delete(conversations)
      .where(
        and(
          eq(conversations.tenantId, id),
          eq(conversations.threadKey, threadId),
          channel ? eq(conversations.channel, channel) : undefined,
        ),
      )
      .returning({ channel: conversations.channel });
    if (deleted.length === 0) throw notFound("no conversation for that thread");
    return c.body(null, 204);
  });

  app.get("/messages", async (c) => {
    const query = validate(
      page.extend({ tenant: tenantId.optional(), status: z.enum(MESSAGE_STATUSES).optional() }),
      c.req.query(),
    );
    const where = and(
      query.tenant ? eq(inboundMessages.tenantId, query.tenant) : undefined,
      query.status ? eq(inboundMessages.status, query.status) : undefined,
    );
    const [total] = await db.select({ n: count() }).from(inboundMessages).where(where);
    const items = await db
      .select({
        id: inboundMessages.id,
        tenant: inboundMessages.tenantId,
        channel: inboundMessages.channel,
        thread_key: inboundMessages.threadKey,
        status: inboundMessages.status,
        attempts: inboundMessages.attempts,
        text: inboundMessages.text,
        error: inboundMessages.error,
        created_at: inboundMessages.createdAt,
        updated_at: inboundMessages.updatedAt,
      })
      .from(inboundMessages)
      .where(where)
      .orderBy(desc(inboundMessages.id))
      .limit(query.limit)
      .offset(query.offset);
    return c.json({ items, offset: query.offset, limit: query.limit, count: total?.n ?? 0 });
  });

  /** Re-queues a failed message from scratch: Quickchat is asked again and the new reply delivered. */
  app.post("/messages/:id/retry", async (c) => {
    const { id } = validate(z.object({ id: z.coerce.number().int().positive() }), { id: c.req.param("id") });
    const result = await db.transaction(async (tx) => {
      const [row] = await tx
        .select({ status: inboundMessages.status })
        .from(inboundMessages)
        .where(eq(inboundMessages.id, id))
        .for("update");
      if (!row) throw notFound(`unknown message ${id}`);
      if (row.status !== "failed") {
        throw new HttpError(
          409,
          "CONFLICT",
          `message ${id} is ${row.status}; only failed messages can be retried`,
        );
      }
      await tx.delete(outboundMessages).where(eq(outboundMessages.inboundId, id));
      return tx
        .update(inboundMessages)
        .set({
          status: "pending",
          attempts: 0,
          nextAttemptAt: sql`now()`,
          giveUpAt: null,
          replyHtml: null,
          error: null,
          leaseUntil: null,
          leaseOwner: null,
          updatedAt: sql`now()`,
        })
        .where(eq(inboundMessages.id, id))
        .returning({ id: inboundMessages.id, status: inboundMessages.status });
    });
    deps.wake();
    return c.json(result[0]);
  });

  return app;
}
