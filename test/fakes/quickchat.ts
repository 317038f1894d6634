import { Hono } from "hono";
import { type RunningFake, startFake } from "./server.js";

/** One request as the fake received it. */
export interface QuickchatCall {
  authorization: string | null;
  body: {
    scenario_id?: string;
    api_key?: string;
    text?: string;
    conv_id?: string;
    client_metadata?: Record<string, unknown>;
  };
  at: number;
}

/**
 * A request the fake refused on its own checks (a body it cannot read, a missing field, an unknown scenario or
 * token, a conv_id it never issued): each one is a bug in what was sent, unless the test arranged it. The
 * answers a test asks for (`fail`, `outage`, `forgetConversations`) are not refusals.
 */
export interface QuickchatRejection {
  status: number;
  message: string;
}

interface InjectedFailure {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export interface QuickchatFakeOptions {
  /** scenario id → Bearer token (or legacy api_key when `legacy` is set). */
  scenarios: Record<string, string>;
  legacy?: boolean;
  /** Builds the HTML reply; defaults to an echo with a <br> and the message's order number. */
  reply?: (text: string, convId: string, ordNumber: number) => string;
}

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * A loopback Quickchat Chat endpoint (`POST /chat`) that behaves as quickchat-api/002 describes: Bearer token
 * (or legacy `api_key`) bound to a scenario, conv_id issuance and validation, plain-text errors, HTML replies.
 */
export class QuickchatFake {
  readonly calls: QuickchatCall[] = [];
  /** Requests refused on the fake's own checks, in arrival order. */
  readonly rejections: QuickchatRejection[] = [];
  /** Milliseconds to wait before answering each request. */
  latencyMs = 0;
  /** While set, every request is recorded and answered 503 "Service unavailable" (an outage). */
  outage = false;
  private readonly failures: InjectedFailure[] = [];
  /** While set, requests are recorded, then wait for it before being answered (see `hold`). */
  private held: Promise<void> | undefined;
  private readonly conversations = new Map<string, { scenario: string; ord: number }>();
  /** conv_ids dropped by `forgetConversations`: answered 400 as Quickchat does, but at the test's request. */
  private readonly forgotten = new Set<string>();
  private nextConv = 1;
  private server?: RunningFake;

  constructor(private readonly options: QuickchatFakeOptions) {}

  get url(): string {
    if (!this.server) throw new Error("QuickchatFake not started");
    return this.server.url;
  }

  async start(): Promise<this> {
    this.server = await startFake(this.app());
    return this;
  }

  close(): Promise<void> {
    return this.server?.close() ?? Promise.resolve();
  }

  /** The next `times` requests fail with this status and plain-text body. */
  fail(times: number, status: number, body = "Service unavailable", headers?: Record<string, string>): void {
    for (let i = 0; i < times; i++) this.failures.push({ status, body, ...(headers && { headers }) });
  }

  /**
   * Holds every answer until the returned function is called: a test can change the world between a
   * message reaching Quickchat and its reply reaching the channel. Requests are recorded on arrival.
   */
  hold(): () => void {
    let release = () => {};
    this.held = new Promise<void>((resolve) => {
      release = resolve;
    });
    return () => {
      this.held = undefined;
      release();
    };
  }

  /** Quickchat forgets every conversation: later requests with an old conv_id get 400. */
  forgetConversations(): void {
    for (const convId of this.conversations.keys()) this.forgotten.add(convId);
    this.conversations.clear();
  }

  /** Every request refused on the fake's own checks, described, for the unexpected-failure guard. */
  refused(): string[] {
    return this.rejections.map((r) => `quickchat: ${r.status} ${r.message}`);
  }

  conversationCount(): number {
    return this.conversations.size;
  }

  private app(): Hono {
    const app = new Hono();
    app.post("/chat", async (c) => {
      const at = Date.now();
      const refuse = (message: string, status: 400 | 404 = 400) => {
        this.rejections.push({ status, message });
        return c.text(message, status);
      };
      let body: QuickchatCall["body"];
      try {
        body = await c.req.json();
      } catch {
        return refuse("Invalid JSON body");
      }
      this.calls.push({ authorization: c.req.header("authorization") ?? null, body, at });
      await this.held;
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      if (this.outage) return c.text("Service unavailable", 503);

      const injected = this.failures.shift();
      if (injected) return c.text(injected.body, injected.status as 500, injected.headers);

      const scenario = body.scenario_id;
      if (!scenario) return refuse("Missing scenario_id");
      const expected = this.options.scenarios[scenario];
      if (expected === undefined) return refuse(`No implementation found for scenario_id ${scenario}`, 404);
      const presented = this.options.legacy
        ? body.api_key
        : c.req.header("authorization")?.replace(/^Bearer /, "");
      if (presented !== expected) return refuse("Request is not authenticated");
      if (typeof body.text !== "string" || body.text === "") return refuse("Missing text");
      const metadata = body.client_metadata ?? {};
      if (Object.keys(metadata).length > 5) return refuse("client_metadata can have at most 5 keys");

      let convId = body.conv_id;
      if (convId !== undefined) {
        const known = this.conversations.get(convId);
        const invalid = `Conversation conv_id ${convId} is not valid.`;
        if (this.forgotten.has(convId)) return c.text(invalid, 400);
        if (!known || known.scenario !== scenario) return refuse(invalid);
      } else {
        convId = `conv-${this.nextConv++}`;
        this.conversations.set(convId, { scenario, ord: 0 });
      }
      const conversation = this.conversations.get(convId)!;
      conversation.ord += 2;
      const reply = this.options.reply
        ? this.options.reply(body.text, convId, conversation.ord)
        : `You said: <b>${escapeHtml(body.text)}</b><br>(message ${conversation.ord})`;
      return c.json({ conv_id: convId, reply, ord_number: conversation.ord, src: 0 });
    });
    return app;
  }
}
