import { z } from "zod";
import { descriptors } from "../channels/registry.js";
import { ConfigError } from "../errors.js";
import { keyRingProblem } from "../tenants/secrets.js";

/** The only place that reads process.env: everything else receives these settings. */
export type Env = Record<string, string | undefined>;

const int = (min: number) => z.coerce.number().int().min(min);

export const settingsSchema = z.object({
  PORT: int(0).max(65535).default(3000),
  HOST: z.string().min(1).default("0.0.0.0"),
  DATABASE_URL: z.string().min(1).optional(),
  DATA_DIR: z.string().min(1).default("./data"),
  BRIDGE_CONFIG: z.string().min(1).optional(),
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  ADMIN_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  BRIDGE_SECRET_KEY: z
    .string()
    .min(1)
    .optional()
    .superRefine((value, ctx) => {
      const problem = value === undefined ? undefined : keyRingProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** JSON lines, or pretty lines for a person; unset, pretty when stdout is a terminal. */
  LOG_FORMAT: z.enum(["json", "pretty"]).optional(),
  /** Messages processed at once by this process's worker pool (each mostly waits on Quickchat). */
  WORKER_CONCURRENCY: int(1).default(512),
  /** Messages of one tenant processed at once by this process (fairness between tenants). */
  TENANT_CONCURRENCY: int(1).default(256),
  QUICKCHAT_TIMEOUT_SECONDS: int(1).default(60),
  QUICKCHAT_MAX_RETRY_SECONDS: int(0).default(600),
  /** First backoff step; doubles per attempt up to RETRY_MAX_DELAY_SECONDS. */
  RETRY_BASE_MS: int(1).default(1000),
  RETRY_MAX_DELAY_SECONDS: int(1).default(60),
  /**
   * A process whose heartbeat is silent this long is presumed dead: the others hand its messages back to the
   * queue. It beats five times per period.
   */
  TAKEOVER_SECONDS: int(1).default(5),
  /** The fallback: a claimed message returns to the queue this long after its worker stopped renewing it. */
  LEASE_SECONDS: int(1).default(60),
  /** Fallback poll for new and due messages when no notification arrives. */
  POLL_INTERVAL_MS: int(10).default(1000),
  SHUTDOWN_TIMEOUT_SECONDS: int(0).default(25),
  /** A client must send its whole request (headers and body) within this, else it is cut off. */
  HTTP_REQUEST_TIMEOUT_SECONDS: int(1).default(30),
  /** ... and its headers within this (capped at the request timeout). */
  HTTP_HEADERS_TIMEOUT_SECONDS: int(1).default(10),
  /** Finished messages keep their text this long. */
  RETENTION_DAYS: int(1).default(30),
  /** Conversations idle this long are forgotten (the thread's next message starts a new one). */
  CONVERSATION_IDLE_DAYS: int(1).default(90),
  RETENTION_INTERVAL_MINUTES: int(1).default(60),
});

export type Settings = z.output<typeof settingsSchema>;

/** The settings, or one line per problem (`VARIABLE: what is wrong`). */
export function parseSettings(env: Env): { settings: Settings } | { problems: string[] } {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = settingsSchema.safeParse(present);
  return parsed.success
    ? { settings: parsed.data }
    : { problems: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) };
}

export function readSettings(env: Env): Settings {
  const parsed = parseSettings(env);
  if ("problems" in parsed) {
    throw new ConfigError(`invalid environment:\n${parsed.problems.map((line) => `  ${line}`).join("\n")}`);
  }
  return parsed.settings;
}

/** The shorthand's Quickchat variables; each channel's come from its descriptor. */
const QUICKCHAT_VARIABLES: Record<string, string> = {
  QUICKCHAT_SCENARIO_ID: "scenario_id",
  QUICKCHAT_TOKEN: "token",
  QUICKCHAT_API_KEY: "api_key",
  QUICKCHAT_BASE_URL: "base_url",
  QUICKCHAT_KB_TOPIC: "kb_topic",
};

const SHORTHAND_BLOCKS: [block: string, variables: Readonly<Record<string, string>>][] = [
  ["quickchat", QUICKCHAT_VARIABLES],
  ...descriptors.map((channel): [string, Readonly<Record<string, string>>] => [channel.name, channel.env]),
];

/**
 * The single-tenant shorthand: QUICKCHAT_* and channel variables describe a tenant with id `default`.
 * Returns the raw tenant object (validated later with the file's tenants) or undefined when unused.
 */
export function shorthandTenant(env: Env): Record<string, unknown> | undefined {
  const blocks: Record<string, Record<string, string>> = {};
  for (const [block, variables] of SHORTHAND_BLOCKS) {
    const set = Object.entries(variables).filter(([variable]) => env[variable]);
    if (set.length > 0)
      blocks[block] = Object.fromEntries(set.map(([variable, key]) => [key, env[variable]!]));
  }
  if (Object.keys(blocks).length === 0) return undefined;
  return { id: "default", quickchat: {}, ...blocks };
}

/** Maps a shorthand tenant's key path back to the variable a user sets, for error messages. */
export const SHORTHAND_VARIABLES: Record<string, string> = {
  quickchat: "QUICKCHAT_TOKEN or QUICKCHAT_API_KEY",
  ...Object.fromEntries(
    SHORTHAND_BLOCKS.flatMap(([block, variables]) =>
      Object.entries(variables).map(([variable, key]) => [`${block}.${key}`, variable]),
    ),
  ),
};
