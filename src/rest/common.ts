/**
 * Plumbing shared by the REST dialects: bounded JSON bodies and JSON responses. Each dialect renders errors in its own format; nothing here knows either format.
 */
import type { GateDeps } from "../auth/gate.js";
import { checkWellFormed, decodeJsonText, InvalidTextError } from "../domain/json-text.js";
import type { NodeRequest, NodeResponse } from "../domain/request.js";
import type { Logger } from "../log.js";
import type { ProviderUseCases } from "../service/providers.js";
import type { SecretUseCases } from "../service/secrets.js";

/** What the dialect routes need. */
export interface RestDeps extends GateDeps {
  readonly logger: Logger;
  readonly secrets: SecretUseCases;
  /** Secret providers (the Sensu dialect's /providers routes). */
  readonly providers: ProviderUseCases;
}

/** Largest request body a REST route reads; larger ones are refused before being read whole. */
export const maxBodyBytes = 256 * 1024;
/** Deepest JSON nesting accepted; no valid body of either dialect comes near it. */
export const maxJsonDepth = 32;

/** Why a body could not be read. */
export class BodyError extends Error {
  constructor(
    readonly kind: "too_large" | "malformed" | "too_deep" | "not_text",
    message: string,
    /** For not_text: the JSON path of the string that is not text ("" for the whole body). */
    readonly field = "",
    /** For not_text: what is wrong with it, without the path. */
    readonly detail = "",
  ) {
    super(message);
    this.name = "BodyError";
  }
}

/**
 * Reads and parses a JSON body of at most maxBodyBytes. A declared Content-Length over the limit
 * is refused without reading; a body that grows past it is cut off. Text that is not exactly what
 * was sent (invalid UTF-8, a lone surrogate escape) is refused naming its JSON path, never
 * rewritten to U+FFFD (see domain/json-text.ts).
 */
export async function readJson(req: NodeRequest): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > maxBodyBytes)
    throw new BodyError("too_large", `request body is larger than ${maxBodyBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes)
      throw new BodyError("too_large", `request body is larger than ${maxBodyBytes} bytes`);
    chunks.push(chunk);
  }
  const text = notText(() => decodeJsonText(Buffer.concat(chunks)));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's own message quotes the text around the error, which may be a value.
    throw new BodyError("malformed", "the request body is not valid JSON");
  }
  if (depth(parsed) > maxJsonDepth)
    throw new BodyError("too_deep", `JSON nested deeper than ${maxJsonDepth} levels`);
  notText(() => checkWellFormed(parsed));
  return parsed;
}

function notText<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvalidTextError)
      throw new BodyError("not_text", err.message, err.path, err.detail);
    throw err;
  }
}

function depth(value: unknown): number {
  // Iterative, so a hostile body cannot exhaust the stack here.
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== "object") continue;
    max = Math.max(max, d);
    if (max > maxJsonDepth) return max;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** Sends a JSON body (or none for undefined) with the status and extra headers. */
export function sendJson(
  res: NodeResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, {
    ...(body === undefined ? {} : { "content-type": "application/json" }),
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/** Splits a URL path into decoded segments; undefined when a segment is not valid percent-encoding. */
export function pathSegments(path: string): string[] | undefined {
  try {
    return path
      .split("/")
      .filter((s) => s !== "")
      .map(decodeURIComponent);
  } catch {
    return undefined;
  }
}
