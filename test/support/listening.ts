import type { ChildProcess } from "node:child_process";

/**
 * The address a starting `bridge serve` listens on, read from its "listening" log line (JSON on stdout).
 * Rejects, with everything the process wrote, when it fails to start, ends first (once its output is read to
 * the end, so its last words are in the error) or writes no such line within `timeoutMs`. Call it right after
 * spawning: it reads stdout and stderr alongside the caller's own listeners.
 */
export function listeningUrl(child: ChildProcess, timeoutMs = 30_000): Promise<string> {
  let stdout = "";
  let output = "";
  return new Promise((resolve, reject) => {
    const done = (error?: Error, url?: string) => {
      clearTimeout(timer);
      child.stdout?.off("data", onStdout);
      child.stderr?.off("data", onStderr);
      child.off("close", onClose);
      child.off("error", done);
      if (error) reject(error);
      else resolve(url!);
    };
    const timer = setTimeout(
      () => done(new Error(`no "listening" line within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const onStdout = (chunk: Buffer) => {
      stdout += chunk.toString();
      output += chunk.toString();
      for (const line of stdout.split("\n")) {
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === "listening" && entry.url) return done(undefined, entry.url);
        } catch {
          // not a complete JSON line (yet)
        }
      }
    };
    const onStderr = (chunk: Buffer) => {
      output += chunk.toString();
    };
    const onClose = (code: number | null, signal: NodeJS.Signals | null) =>
      done(new Error(`bridge exited with ${code ?? signal} before listening:\n${output}`));
    child.stdout?.on("data", onStdout);
    child.stderr?.on("data", onStderr);
    child.once("close", onClose);
    child.once("error", done);
  });
}
