import type { z } from "zod";
import { ConfigError } from "../errors.js";
import { type Env, readSettings, type Settings, SHORTHAND_VARIABLES, shorthandTenant } from "./env.js";
import { readConfigFile } from "./file.js";
import { configFileSchema, type TenantConfig, tenantSchema } from "./schema.js";

export interface AppConfig {
  settings: Settings;
  /** PUBLIC_URL, else the file's public_url; no trailing slash. */
  publicUrl?: string;
  /** Tenants from the config file and the environment shorthand (read-only at run time). */
  tenants: TenantConfig[];
  configPath?: string;
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
  const settings = readSettings(env);
  const file = readConfigFile(settings.BRIDGE_CONFIG, env);
  const problems: string[] = [];
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
  if (shorthand) {
    const parsed = tenantSchema.safeParse(shorthand);
    if (parsed.success) tenants.push(parsed.data);
    else
      problems.push(
        describe(parsed.error.issues, "environment (tenant default)", (p) => SHORTHAND_VARIABLES[p] ?? p),
      );
  }

  const seen = new Set<string>();
  for (const tenant of tenants) {
    if (seen.has(tenant.id)) problems.push(`  tenant id "${tenant.id}" is defined more than once`);
    seen.add(tenant.id);
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n${problems.join("\n")}`);

  const publicUrl = (settings.PUBLIC_URL ?? filePublicUrl)?.replace(/\/+$/, "");
  return { settings, tenants, ...(publicUrl && { publicUrl }), ...(file && { configPath: file.path }) };
}
