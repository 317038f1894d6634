/**
 * The Node flags between `node` and the script in a Dockerfile's exec-form ENTRYPOINT
 * (`["node", "--flag", ..., "bin/bridge.js"]`): the bench starts the service with them, as the container does.
 */
export function containerNodeFlags(dockerfile: string): string[] {
  const line = dockerfile.split("\n").find((l) => l.startsWith("ENTRYPOINT "));
  if (!line) throw new Error("the Dockerfile has no ENTRYPOINT");
  const command = JSON.parse(line.slice("ENTRYPOINT ".length)) as unknown;
  if (!Array.isArray(command) || command[0] !== "node") {
    throw new Error(`the ENTRYPOINT is not an exec-form node command: ${line}`);
  }
  return command.slice(1).filter((arg): arg is string => typeof arg === "string" && arg.startsWith("-"));
}
