/**
 * Reading docker/Dockerfile and docker/compose.yaml the way Docker and Compose read them, for tests that
 * check the container without a Docker engine (test/ops/container.test.ts).
 */

// --- Dockerfile ---------------------------------------------------------------------------------------------

export interface Instruction {
  op: string;
  args: string;
}

export interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

/** The stages and their instructions; continuation lines joined, comments dropped. */
export function parseDockerfile(text: string): Stage[] {
  const joined = text.replace(/\\\r?\n/g, " ");
  const stages: Stage[] = [];
  for (const raw of joined.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const op = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    if (op === "FROM") {
      const [base = "", , name] = args.split(/\s+/);
      stages.push({ name: name ?? String(stages.length), base, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op, args });
    }
  }
  return stages;
}

/** `ARG NAME=default` lines before the first FROM: build arguments every stage may declare and use. */
export function globalArgs(text: string): Record<string, string> {
  const head = text.split(/^FROM\s/m)[0] ?? "";
  return Object.fromEntries(
    [...head.matchAll(/^ARG\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)\s*$/gm)].map((m) => [m[1]!, m[2]!]),
  );
}

export interface Copy {
  from?: string;
  sources: string[];
  dest: string;
}

/** COPY's flags and sources (the last word is the destination). */
export function copyOf(args: string): Copy {
  const words = args.startsWith("[") ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith("--"));
  const paths = words.filter((w) => !w.startsWith("--"));
  const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
  return { ...(from && { from }), sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

export const execForm = (args: string): string[] => JSON.parse(args) as string[];

// --- compose ------------------------------------------------------------------------------------------------

export interface BindMount {
  type: "bind";
  source: string;
  target: string;
  read_only?: boolean;
  bind?: { create_host_path?: boolean };
}

export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  env_file?: string | string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] | string };
  volumes?: (string | BindMount)[];
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/**
 * compose.yaml with its commented config-file lines switched on, as docs/deploy.md tells people to: the
 * `# BRIDGE_CONFIG: …` line and the `# volumes:` block below it (its more deeply indented comment lines).
 */
export function withConfigFile(text: string): string {
  let inVolumes = false;
  return text
    .split("\n")
    .map((line) => {
      const match = /^(\s*)# (.*)$/.exec(line);
      const [, indent = "", body = ""] = match ?? [];
      if (match && (body.startsWith("BRIDGE_CONFIG:") || body === "volumes:")) {
        inVolumes = body === "volumes:";
        return indent + body;
      }
      inVolumes &&= Boolean(match) && /^\s+\S/.test(body);
      return inVolumes ? indent + body : line;
    })
    .join("\n");
}

/** Every `${NAME}` or `${NAME:-default}` compose would fill in: in values, never in comments. */
export function composeVariables(value: unknown): string[] {
  if (typeof value === "string")
    return [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}/g)].map((m) => m[1]!);
  if (Array.isArray(value)) return value.flatMap(composeVariables);
  if (value && typeof value === "object") return Object.values(value).flatMap(composeVariables);
  return [];
}
