/**
 * What every client command needs: the resolved global options (server, credentials, output
 * format, protocol) and Connect clients built from them.
 */
import { readFileSync } from "node:fs";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { UsageError } from "./errors.js";
import type { Io } from "./io.js";
import { type OutputFormat, outputFormats } from "./output.js";

/** The server a client talks to when neither --server nor SEALD_SERVER says otherwise. */
export const defaultServer = "http://127.0.0.1:8080";

/** The wire protocols the client can speak. */
export const protocols = ["connect", "grpc"] as const;
export type Protocol = (typeof protocols)[number];

/** The global options as commander hands them over, before validation. */
export interface RawGlobalOptions {
  readonly server?: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly output?: string;
  readonly protocol?: string;
  readonly timeout?: string;
}

/** A validated token; toString and JSON show only that it is there. */
class Token {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The bearer value for the authorization header; the only way to read the token. */
  revealForAuthorizationHeader(): string {
    return this.#value;
  }
  toString(): string {
    return "[token]";
  }
  toJSON(): string {
    return "[token]";
  }
}

/** The resolved global options and the clients built from them, for one command. */
export class Context {
  readonly io: Io;
  readonly output: OutputFormat;
  readonly server: string;
  readonly protocol: Protocol;
  readonly timeoutMs: number;
  readonly #token: Token | undefined;
  #transport: Transport | undefined;

  constructor(raw: RawGlobalOptions, io: Io) {
    this.io = io;
    this.server = parseServer(raw.server ?? nonEmpty(io.env.SEALD_SERVER) ?? defaultServer);
    this.output = pick("--output", raw.output ?? nonEmpty(io.env.SEALD_OUTPUT) ?? "table", [
      ...outputFormats,
    ]);
    this.protocol = pick("--protocol", raw.protocol ?? "connect", [...protocols]);
    this.timeoutMs = parseTimeout(raw.timeout ?? "30");
    this.#token = resolveToken(raw, io);
  }

  /** Whether a token was given at all, for the hint on an unauthenticated answer. */
  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  /** A client for one of seald's services on the configured server. */
  client<T extends DescService>(service: T): Client<T> {
    this.#transport ??= this.#createTransport();
    return createClient(service, this.#transport);
  }

  /** Writes `seald: warning: ...` on stderr. */
  warn(message: string): void {
    this.io.stderr.write(`seald: warning: ${message}\n`);
  }

  /** Writes an informational line on stderr, where it never mixes with data on stdout. */
  note(message: string): void {
    this.io.stderr.write(`${message}\n`);
  }

  #createTransport(): Transport {
    const token = this.#token;
    const auth: Interceptor = (next) => async (req) => {
      if (token !== undefined) {
        req.header.set("authorization", `Bearer ${token.revealForAuthorizationHeader()}`);
      }
      return next(req);
    };
    const options = {
      baseUrl: this.server,
      interceptors: [auth],
      defaultTimeoutMs: this.timeoutMs,
    };
    // Connect's JSON over HTTP/1.1 by default: it passes through any HTTP proxy or load
    // balancer. gRPC needs HTTP/2 end to end (h2c with prior knowledge on http:// URLs).
    return this.protocol === "grpc"
      ? createGrpcTransport(options)
      : createConnectTransport({ ...options, httpVersion: "1.1", useBinaryFormat: false });
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function pick<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  const found = choices.find((c) => c === value);
  if (found === undefined) {
    throw new UsageError(`${flag}: "${value}" is not one of ${choices.join(", ")}`);
  }
  return found;
}

function parseServer(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--server: "${value}" is not a URL (for example ${defaultServer})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--server: "${value}" must start with http:// or https://`);
  }
  if (url.username !== "" || url.password !== "") {
    // Credentials belong in the token, and a URL with them would be echoed in error messages.
    throw new UsageError("--server: the URL must not carry a user name or password");
  }
  return url.href.replace(/\/$/, "");
}

function parseTimeout(value: string): number {
  const seconds = Number(value);
  if (value.trim() === "" || !Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(`--timeout: "${value}" is not a positive number of seconds`);
  }
  return Math.round(seconds * 1000);
}

function resolveToken(raw: RawGlobalOptions, io: Io): Token | undefined {
  if (raw.token !== undefined && raw.tokenFile !== undefined) {
    throw new UsageError("--token and --token-file: give one, not both");
  }
  let value: string | undefined;
  let source: string;
  if (raw.token !== undefined) {
    io.stderr.write(
      "seald: warning: a token given with --token is visible to other users in ps and stays " +
        "in the shell history; prefer SEALD_TOKEN or --token-file\n",
    );
    value = raw.token;
    source = "--token";
  } else if (raw.tokenFile !== undefined) {
    try {
      // A trailing newline is how editors and `echo` leave a file; it is not part of the token.
      value = readFileSync(raw.tokenFile, "utf8").trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
      throw new UsageError(`--token-file: cannot read ${raw.tokenFile} (${code})`);
    }
    source = "--token-file";
  } else {
    value = nonEmpty(io.env.SEALD_TOKEN);
    source = "SEALD_TOKEN";
  }
  if (value === undefined) return undefined;
  // Checked here, without echoing the value, because an invalid header value would otherwise
  // fail inside fetch with an error message that quotes the whole header, token included.
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new UsageError(`${source}: the token must be printable ASCII without spaces`);
  }
  return new Token(value);
}
