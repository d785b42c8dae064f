/**
 * Server configuration. Every setting comes from a command-line flag or, failing that, its SEALD_*
 * environment variable, or its default. parseConfig reads no global state: main.ts and the CLI's
 * `serve` pass it argv and the environment; it is parsed and
 * validated once, and a bad setting becomes a ConfigError naming the variable.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { ConnectionString } from "mongodb-connection-string-url";
import { type LogLevel, logLevels } from "./log.js";
import type { EdgeLimits } from "./server/listener.js";

/** A validated, immutable configuration. */
export interface Config {
  readonly listen: { readonly host: string; readonly port: number };
  /** The external MongoDB URI, or undefined to start the embedded database. */
  readonly mongodbUri: string | undefined;
  readonly database: string;
  readonly dataDir: string;
  readonly masterKeys: string | undefined;
  readonly masterKeysFile: string | undefined;
  readonly bootstrapToken: string | undefined;
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly logLevel: LogLevel;
  readonly shutdownTimeoutMs: number;
  /**
   * The most one database call may take: server selection, connecting, and each socket read or
   * write. A call that takes longer fails as Unavailable.
   */
  readonly dbTimeoutMs: number;
  /** Failed authentications from one address within the window before it is refused. */
  readonly authMaxFailures: number;
  readonly authFailureWindowMs: number;
  /** Requests without credentials from one address, within the window, before it is refused. */
  readonly authMaxAnonymous: number;
  readonly maxValueBytes: number;
  readonly maxVersions: number;
  /** Only environment variables starting with this resolve through the env keeper; unset: none. */
  readonly envProviderPrefix: string | undefined;
  /** How long a namespace's previous sealing key is accepted after RotatePublicKey. */
  readonly publicKeyGraceMs: number;
  /** What one connection, stream or caller may hold at the edge. */
  readonly edge: EdgeLimits;
  /** Where every audit record is also written as a JSON line: a file path, "-" for stdout, or none. */
  readonly auditFile: string | undefined;
}

/** A configuration problem; its message is one line that starts with the variable's name. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = "ConfigError";
  }
}

/** The outcome of parsing: a configuration to run with, or text to print and an exit code. */
export type ParseResult =
  | { readonly kind: "run"; readonly config: Config }
  | { readonly kind: "exit"; readonly code: number; readonly output: string };

interface Setting {
  readonly env: string;
  readonly flag: string;
  readonly description: string;
  readonly default?: string;
  /** Set for settings that carry key material or credentials: never echoed anywhere. */
  readonly secret?: boolean;
}

/** Every setting, in the order --help lists them. */
export const settings = {
  listen: {
    env: "SEALD_LISTEN",
    flag: "--listen <host:port>",
    description: "address of the one port serving gRPC, gRPC-Web, Connect and REST",
    default: "127.0.0.1:8080",
  },
  mongodbUri: {
    env: "SEALD_MONGODB_URI",
    flag: "--mongodb-uri <uri>",
    description: "MongoDB connection string; unset starts the embedded database in the data dir",
    secret: true,
  },
  database: {
    env: "SEALD_DATABASE",
    flag: "--database <name>",
    description: "MongoDB database name",
    default: "seald",
  },
  dataDir: {
    env: "SEALD_DATA_DIR",
    flag: "--data-dir <path>",
    description: "directory for the embedded database and a generated development master key",
    default: "./data",
  },
  masterKeys: {
    env: "SEALD_MASTER_KEYS",
    flag: "--master-keys <id:base64,...>",
    description: "master keys, the first one active (prefer the variable: flags show in ps)",
    secret: true,
  },
  masterKeysFile: {
    env: "SEALD_MASTER_KEYS_FILE",
    flag: "--master-keys-file <path>",
    description: "file holding master keys in the SEALD_MASTER_KEYS format (mode 0600)",
  },
  bootstrapToken: {
    env: "SEALD_BOOTSTRAP_TOKEN",
    flag: "--bootstrap-token <token>",
    description: "token of the first admin on an empty database (prefer the variable)",
    secret: true,
  },
  tlsCert: {
    env: "SEALD_TLS_CERT",
    flag: "--tls-cert <path>",
    description: "PEM certificate chain; with --tls-key, serve TLS (ALPN h2, http/1.1)",
  },
  tlsKey: {
    env: "SEALD_TLS_KEY",
    flag: "--tls-key <path>",
    description: "PEM private key for --tls-cert",
  },
  logLevel: {
    env: "SEALD_LOG_LEVEL",
    flag: "--log-level <level>",
    description: `log level: ${logLevels.join(", ")}`,
    default: "info",
  },
  shutdownTimeout: {
    env: "SEALD_SHUTDOWN_TIMEOUT",
    flag: "--shutdown-timeout <seconds>",
    description: "how long in-flight calls may run after SIGTERM or SIGINT",
    default: "10",
  },
  dbTimeout: {
    env: "SEALD_DB_TIMEOUT",
    flag: "--db-timeout <seconds>",
    description:
      "the most one database call may take before the request fails with Unavailable / 503",
    default: "2",
  },
  authMaxFailures: {
    env: "SEALD_AUTH_MAX_FAILURES",
    flag: "--auth-max-failures <count>",
    description: "failed authentications from one address, within the window, before it is refused",
    default: "10",
  },
  authMaxAnonymous: {
    env: "SEALD_AUTH_MAX_ANONYMOUS",
    flag: "--auth-max-anonymous <count>",
    description:
      "requests without credentials from one address, within the window, before they are refused",
    default: "100",
  },
  authFailureWindow: {
    env: "SEALD_AUTH_FAILURE_WINDOW",
    flag: "--auth-failure-window <seconds>",
    description:
      "window over which failed authentications are counted, and how long a refusal lasts",
    default: "60",
  },
  maxValueBytes: {
    env: "SEALD_MAX_VALUE_BYTES",
    flag: "--max-value-bytes <bytes>",
    description: "largest secret value accepted",
    default: "65536",
  },
  maxVersions: {
    env: "SEALD_MAX_VERSIONS",
    flag: "--max-versions <count>",
    description: "value versions kept per secret, the current one included",
    default: "10",
  },
  envProviderPrefix: {
    env: "SEALD_ENV_PROVIDER_PREFIX",
    flag: "--env-provider-prefix <prefix>",
    description: "the env keeper resolves only variables starting with this (unset: none)",
  },
  publicKeyGrace: {
    env: "SEALD_PUBLIC_KEY_GRACE",
    flag: "--public-key-grace <seconds>",
    description:
      "how long values sealed for a namespace's previous public key are accepted after a rotation",
    default: "86400",
  },
  firstByteTimeout: {
    env: "SEALD_FIRST_BYTE_TIMEOUT",
    flag: "--first-byte-timeout <seconds>",
    description: "a cleartext connection that sends nothing for this long is closed",
    default: "10",
  },
  tlsHandshakeTimeout: {
    env: "SEALD_TLS_HANDSHAKE_TIMEOUT",
    flag: "--tls-handshake-timeout <seconds>",
    description: "a TLS handshake that has not finished within this is abandoned",
    default: "10",
  },
  headersTimeout: {
    env: "SEALD_HEADERS_TIMEOUT",
    flag: "--headers-timeout <seconds>",
    description:
      "a new connection must send a whole request head (HTTP/2: open a stream) within this",
    default: "10",
  },
  requestTimeout: {
    env: "SEALD_REQUEST_TIMEOUT",
    flag: "--request-timeout <seconds>",
    description: "a request, body included, must arrive whole within this (408, or a reset)",
    default: "60",
  },
  keepAliveTimeout: {
    env: "SEALD_KEEPALIVE_TIMEOUT",
    flag: "--keepalive-timeout <seconds>",
    description: "an HTTP/1.1 connection idle between requests for this long is closed",
    default: "75",
  },
  http2IdleTimeout: {
    env: "SEALD_HTTP2_IDLE_TIMEOUT",
    flag: "--http2-idle-timeout <seconds>",
    description: "an HTTP/2 connection with no open stream for this long is closed (GOAWAY)",
    default: "180",
  },
  sendTimeout: {
    env: "SEALD_SEND_TIMEOUT",
    flag: "--send-timeout <seconds>",
    description: "a response the client takes no bytes of for this long is cut off",
    default: "60",
  },
  maxConnections: {
    env: "SEALD_MAX_CONNECTIONS",
    flag: "--max-connections <count>",
    description: "connections open at once; keep it well below the file descriptor limit",
    default: "4096",
  },
  maxConnectionsPerAddress: {
    env: "SEALD_MAX_CONNECTIONS_PER_ADDRESS",
    flag: "--max-connections-per-address <count>",
    description: "connections open at once from one remote address; more are closed at once",
    default: "256",
  },
  http2MaxStreams: {
    env: "SEALD_HTTP2_MAX_STREAMS",
    flag: "--http2-max-streams <count>",
    description: "concurrent streams per HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS)",
    default: "100",
  },
  maxBufferedBytes: {
    env: "SEALD_MAX_BUFFERED_BYTES",
    flag: "--max-buffered-bytes <bytes>",
    description: "response bytes one connection may leave unread before it is cut off",
    default: "4194304",
  },
  maxCallsPerPrincipal: {
    env: "SEALD_MAX_CALLS_PER_PRINCIPAL",
    flag: "--max-calls-per-principal <count>",
    description: "authenticated calls in flight at once per principal (then ResourceExhausted/429)",
    default: "128",
  },
  maxCallsPerAddress: {
    env: "SEALD_MAX_CALLS_PER_ADDRESS",
    flag: "--max-calls-per-address <count>",
    description:
      "authenticated calls in flight at once per remote address (then ResourceExhausted/429)",
    default: "256",
  },
  auditFile: {
    env: "SEALD_AUDIT_FILE",
    flag: "--audit-file <path>",
    description:
      'also append every audit record as a JSON line to this file ("-": stdout); a failed write fails the request',
  },
} as const satisfies Record<string, Setting>;

type Key = keyof typeof settings;

/**
 * Parses command-line arguments (without the node and script entries) and the environment.
 * Flags win over variables, variables over defaults.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ParseResult {
  const program = new Command("seald")
    .description("seald: a secrets service (gRPC, gRPC-Web, Connect, Sensu and Grafana REST)")
    .helpOption("-h, --help", "show this help")
    .allowExcessArguments(false)
    .exitOverride();
  let output = "";
  program.configureOutput({
    writeOut: (s) => {
      output += s;
    },
    writeErr: (s) => {
      output += s;
    },
  });
  for (const s of Object.values(settings) as Setting[]) {
    const option = new Option(s.flag, `${s.description} [env: ${s.env}]`);
    if (s.default !== undefined) option.default(s.default);
    program.addOption(option);
  }
  try {
    program.parse([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      const help = err.code === "commander.helpDisplayed" || err.code === "commander.help";
      return { kind: "exit", code: help ? 0 : 2, output: output.trim() };
    }
    throw err;
  }
  const flags = program.opts<Record<string, string | undefined>>();

  const raw = (key: Key): string | undefined => {
    const s: Setting = settings[key];
    const source = program.getOptionValueSource(optionName(s.flag));
    if (source === "cli") return flags[optionName(s.flag)];
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
    return s.default;
  };

  try {
    return { kind: "run", config: build(raw) };
  } catch (err) {
    if (err instanceof ConfigError)
      return { kind: "exit", code: 2, output: `seald: ${err.message}` };
    throw err;
  }
}

function build(raw: (key: Key) => string | undefined): Config {
  const tlsCert = raw("tlsCert");
  const tlsKey = raw("tlsKey");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    const missing = tlsCert === undefined ? settings.tlsCert.env : settings.tlsKey.env;
    const other = tlsCert === undefined ? settings.tlsKey.env : settings.tlsCert.env;
    throw new ConfigError(missing, `must be set together with ${other}`);
  }
  const masterKeys = raw("masterKeys");
  const masterKeysFile = raw("masterKeysFile");
  if (masterKeys !== undefined && masterKeysFile !== undefined) {
    throw new ConfigError(
      settings.masterKeys.env,
      `set it or ${settings.masterKeysFile.env}, not both`,
    );
  }
  return {
    listen: parseListen(raw("listen") ?? ""),
    mongodbUri: parseMongoUri(raw("mongodbUri")),
    database: parseDatabase(raw("database") ?? ""),
    dataDir: resolve(nonEmpty("dataDir", raw("dataDir"))),
    masterKeys,
    masterKeysFile: masterKeysFile === undefined ? undefined : resolve(masterKeysFile),
    bootstrapToken: parseBootstrapToken(raw("bootstrapToken")),
    tls:
      tlsCert === undefined || tlsKey === undefined
        ? undefined
        : { cert: readPem("tlsCert", tlsCert), key: readPem("tlsKey", tlsKey) },
    logLevel: parseLogLevel(raw("logLevel") ?? ""),
    shutdownTimeoutMs: parseSeconds("shutdownTimeout", raw("shutdownTimeout") ?? ""),
    dbTimeoutMs: parseTimeout("dbTimeout", raw("dbTimeout") ?? ""),
    authMaxFailures: parseCount("authMaxFailures", raw("authMaxFailures") ?? ""),
    authFailureWindowMs: parseSeconds("authFailureWindow", raw("authFailureWindow") ?? ""),
    authMaxAnonymous: parseCount("authMaxAnonymous", raw("authMaxAnonymous") ?? ""),
    maxValueBytes: parseCount("maxValueBytes", raw("maxValueBytes") ?? ""),
    maxVersions: parseCount("maxVersions", raw("maxVersions") ?? ""),
    envProviderPrefix: parseEnvPrefix(raw("envProviderPrefix")),
    publicKeyGraceMs: parseSeconds("publicKeyGrace", raw("publicKeyGrace") ?? ""),
    edge: buildEdge(raw),
    auditFile: parseAuditFile(raw("auditFile")),
  };
}

function buildEdge(raw: (key: Key) => string | undefined): EdgeLimits {
  // Timeouts must be positive here: 0 would mean "never", which is what these bounds forbid.
  const timeout = (key: Key) => {
    const ms = parseSeconds(key, raw(key) ?? "");
    if (ms < 1) throw new ConfigError(settings[key].env, "must be more than 0 seconds");
    return ms;
  };
  const count = (key: Key) => parseCount(key, raw(key) ?? "");
  const edge: EdgeLimits = {
    firstByteTimeoutMs: timeout("firstByteTimeout"),
    tlsHandshakeTimeoutMs: timeout("tlsHandshakeTimeout"),
    headersTimeoutMs: timeout("headersTimeout"),
    requestTimeoutMs: timeout("requestTimeout"),
    keepAliveTimeoutMs: timeout("keepAliveTimeout"),
    http2IdleTimeoutMs: timeout("http2IdleTimeout"),
    sendTimeoutMs: timeout("sendTimeout"),
    maxConnections: count("maxConnections"),
    maxConnectionsPerAddress: count("maxConnectionsPerAddress"),
    http2MaxStreams: count("http2MaxStreams"),
    maxBufferedBytes: count("maxBufferedBytes"),
    maxCallsPerPrincipal: count("maxCallsPerPrincipal"),
    maxCallsPerAddress: count("maxCallsPerAddress"),
  };
  // Node's HTTP/1.1 server checks the head before the whole request: a request bound shorter
  // than the head bound would never be the one that fires.
  if (edge.requestTimeoutMs < edge.headersTimeoutMs) {
    throw new ConfigError(
      settings.requestTimeout.env,
      `must be at least ${settings.headersTimeout.env}`,
    );
  }
  return edge;
}

/** The edge limits with every setting at its default. */
export function defaultEdgeLimits(): EdgeLimits {
  return buildEdge((key) => (settings[key] as Setting).default);
}

function optionName(flag: string): string {
  const long = flag.split(" ")[0]?.replace(/^--/, "") ?? "";
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function nonEmpty(key: Key, value: string | undefined): string {
  if (value === undefined || value.trim() === "")
    throw new ConfigError(settings[key].env, "must not be empty");
  return value;
}

function parseListen(value: string): Config["listen"] {
  const env = settings.listen.env;
  // "[::1]:8080" for IPv6, "host:port" otherwise.
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  if (!match)
    throw new ConfigError(env, `"${value}" is not host:port (for example 127.0.0.1:8080)`);
  const host = match[1] ?? match[2] ?? "";
  const port = Number(match[3]);
  if (port > 65535) throw new ConfigError(env, `port ${port} is out of range (0-65535)`);
  if (match[1] !== undefined && isIP(host) !== 6) {
    throw new ConfigError(env, `"${host}" is not an IPv6 address`);
  }
  if (host === "")
    throw new ConfigError(env, "the host is empty (use 0.0.0.0 to listen on every address)");
  return { host, port };
}

function parseMongoUri(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    new ConnectionString(value);
  } catch (err) {
    // The parser's message never echoes credentials; the URI itself is not repeated.
    const reason = err instanceof Error ? err.message : "unparseable";
    throw new ConfigError(
      settings.mongodbUri.env,
      `not a valid MongoDB connection string (${reason})`,
    );
  }
  return value;
}

function parseDatabase(value: string): string {
  // MongoDB forbids these characters in database names; FerretDB also limits the length.
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(value)) {
    throw new ConfigError(
      settings.database.env,
      `"${value}" must be 1 to 63 letters, digits, "_" or "-"`,
    );
  }
  return value;
}

function parseLogLevel(value: string): LogLevel {
  const level = logLevels.find((l) => l === value);
  if (!level) {
    throw new ConfigError(
      settings.logLevel.env,
      `"${value}" is not one of ${logLevels.join(", ")}`,
    );
  }
  return level;
}

function parseSeconds(key: Key, value: string): number {
  const seconds = Number(value);
  if (value.trim() === "" || !Number.isFinite(seconds) || seconds < 0) {
    throw new ConfigError(settings[key].env, `"${value}" is not a number of seconds`);
  }
  return Math.round(seconds * 1000);
}

/** Seconds that must be positive: a zero timeout would mean "no bound" to the driver. */
function parseTimeout(key: Key, value: string): number {
  const ms = parseSeconds(key, value);
  if (ms < 10 || ms > 2_147_483_647) {
    throw new ConfigError(
      settings[key].env,
      `"${value}" is not a number of seconds between 0.01 and 2147483`,
    );
  }
  return ms;
}

function parseCount(key: Key, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new ConfigError(settings[key].env, `"${value}" is not a whole number of at least 1`);
  return n;
}

function parseEnvPrefix(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // The prefix keeps seald's own settings out of reach of the env keeper.
  if (
    !/^[A-Za-z_][A-Za-z0-9_]*$/.test(value) ||
    "SEALD_".startsWith(value) ||
    value.startsWith("SEALD_")
  ) {
    throw new ConfigError(
      settings.envProviderPrefix.env,
      `"${value}" must be a variable-name prefix that cannot match seald's own SEALD_* settings`,
    );
  }
  return value;
}

function parseAuditFile(value: string | undefined): string | undefined {
  if (value === undefined || value === "-") return value;
  if (value.trim() === "") throw new ConfigError(settings.auditFile.env, "must not be blank");
  return resolve(value);
}

function parseBootstrapToken(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // Never echo the value: it is a credential.
  if (value.length < 32 || !/^[\x21-\x7e]+$/.test(value)) {
    throw new ConfigError(
      settings.bootstrapToken.env,
      "must be at least 32 printable ASCII characters without spaces",
    );
  }
  return value;
}

function readPem(key: Key, path: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new ConfigError(settings[key].env, `cannot read ${path} (${code})`);
  }
  if (!data.toString("latin1").includes("-----BEGIN ")) {
    throw new ConfigError(settings[key].env, `${path} is not a PEM file`);
  }
  return data;
}
