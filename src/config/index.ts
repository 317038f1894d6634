import type { z } from "zod";
import { ConfigError } from "../errors.js";
import { type Env, parseSettings, type Settings, SHORTHAND_VARIABLES, shorthandTenant } from "./env.js";
import { readConfigFile } from "./file.js";
import { configFileSchema, type TenantConfig, tenantSchema } from "./schema.js";

export interface AppConfig {
  settings: Settings;
  /** PUBLIC_URL, else the file's public_url; no trailing slash. */
  publicUrl?: string;
  /** Tenants from the config file and the environment shorthand (read-only at run time). */
  tenants: TenantConfig[];
  configPath?: string;
  /** The id of the tenant the environment shorthand describes (QUICKCHAT_* and channel variables), if any. */
  environmentTenantId?: string;
}

function describe(issues: z.core.$ZodIssue[], where: string, rename?: (path: string) => string): string {
  return issues
    .map((issue) => {
      const path = issue.path.join(".");
      const name = rename ? rename(path) : path;
      const unknown =
        issue.code === "unrecognized_keys" ? issue.keys.map((k) => (path ? `${path}.${k}` : k)) : [];
      return unknown.length > 0
        ? `  ${where}: unknown key ${unknown.join(", ")}`
        : `  ${where}: ${name || "(root)"}: ${issue.message}`;
    })
    .join("\n");
}

/** Reads and validates the whole configuration; throws ConfigError with every problem it found. */
export function loadConfig(env: Env): AppConfig {
  // Every problem is reported at once: the settings', the file's and the environment tenant's.
  const problems: string[] = [];
  const parsedSettings = parseSettings(env);
  if ("problems" in parsedSettings)
    problems.push(...parsedSettings.problems.map((line) => `  environment: ${line}`));
  const settings = "settings" in parsedSettings ? parsedSettings.settings : undefined;
  const file = readConfigFile(settings?.BRIDGE_CONFIG ?? (env.BRIDGE_CONFIG || undefined), env);
  let fromFile: TenantConfig[] = [];
  let filePublicUrl: string | undefined;

  if (file) {
    const parsed = configFileSchema.safeParse(file.data);
    if (parsed.success) {
      fromFile = parsed.data.tenants;
      filePublicUrl = parsed.data.public_url;
    } else {
      problems.push(describe(parsed.error.issues, file.path));
    }
  }

  const shorthand = shorthandTenant(env);
  const tenants = [...fromFile];
  let environmentTenantId: string | undefined;
  if (shorthand) {
    const parsed = tenantSchema.safeParse(shorthand);
    if (parsed.success) {
      tenants.push(parsed.data);
      environmentTenantId = parsed.data.id;
    } else
      problems.push(
        describe(parsed.error.issues, "environment (tenant default)", (p) => SHORTHAND_VARIABLES[p] ?? p),
      );
  }

  const seen = new Set<string>();
  for (const tenant of tenants) {
    if (seen.has(tenant.id)) problems.push(`  tenant id "${tenant.id}" is defined more than once`);
    seen.add(tenant.id);
  }
  if (problems.length > 0 || !settings) {
    throw new ConfigError(`invalid configuration:\n${problems.join("\n")}`);
  }

  const publicUrl = (settings.PUBLIC_URL ?? filePublicUrl)?.replace(/\/+$/, "");
  return {
    settings,
    tenants,
    ...(publicUrl && { publicUrl }),
    ...(file && { configPath: file.path }),
    ...(environmentTenantId && { environmentTenantId }),
  };
}
