import { existsSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../errors.js";
import type { Env } from "./env.js";

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Reads the YAML or JSON config file (JSON is YAML). Returns undefined when no path is given and the
 * default `./bridge.yaml` does not exist.
 */
export function readConfigFile(
  path: string | undefined,
  env: Env,
): { path: string; data: unknown } | undefined {
  const file = path ?? "bridge.yaml";
  if (!path && !existsSync(file)) return undefined;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML or JSON: ${(err as Error).message}`);
  }
  return { path: file, data: interpolate(data ?? {}, env, []) };
}

/**
 * Replaces `${NAME}` in string values after parsing, so a secret's characters can never break the YAML.
 * A missing variable is an error naming it and the key that uses it.
 */
export function interpolate(value: unknown, env: Env, path: (string | number)[]): unknown {
  if (typeof value === "string") {
    return value.replace(VARIABLE, (_, name: string) => {
      const found = env[name];
      if (found === undefined) {
        throw new ConfigError(`${path.join(".") || "(root)"}: environment variable ${name} is not set`);
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, env, [...path, i]));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, [...path, k])]));
  }
  return value;
}
