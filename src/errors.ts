/**
 * Errors by origin. HTTP-facing code throws HttpError subclasses; `app.ts` maps them to the JSON error shape
 * `{"errors":{"root":[{"message","code"}]}}` in one place.
 */
export class HttpError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 503,
    readonly code: string,
    message: string,
    readonly details?: { message: string; code: string; path?: string }[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export const badRequest = (message: string) => new HttpError(400, "BAD_REQUEST", message);
export const unauthorized = (message: string) => new HttpError(401, "PERMISSION_DENIED", message);
export const forbidden = (message: string) => new HttpError(403, "PERMISSION_DENIED", message);
export const notFound = (message: string) => new HttpError(404, "NOT_FOUND", message);
/** Not the caller's fault and worth retrying: shutting down, the database or a channel's API unreachable. */
export const unavailable = (message: string) => new HttpError(503, "UNAVAILABLE", message);

/** Invalid configuration: startup stops with this message (it names the key path or variable). */
export class ConfigError extends Error {
  override name = "ConfigError";
}
