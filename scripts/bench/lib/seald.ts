/**
 * A real seald for the bench: `node --import tsx src/main.ts` as a child process on port 0, and
 * the service account the bench calls with.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AccessService, PrincipalKind } from "../../../gen/secrets/v1/access_service_pb.js";
import { type Child, listeningPorts, sleep, spawnChild } from "./proc.js";

export const root = fileURLToPath(new URL("../../..", import.meta.url));

/** The bench's master key ring and bootstrap token (a throwaway database, nothing to protect). */
export const masterKeys = `bench:${randomBytes(32).toString("base64")}`;
export const adminToken = `seald_${randomBytes(32).toString("base64url")}`;

export interface SealdChild {
  readonly child: Child;
  readonly pid: number;
  /** host:port */
  readonly address: string;
  readonly url: string;
  /** performance.now() when the process was spawned (a CPU profile starts about then). */
  readonly startedAt: number;
  stop(): Promise<void>;
}

export interface SealdOptions {
  readonly mongodbUri: string;
  readonly database: string;
  readonly logLevel: string;
  /** Extra node flags for the seald process (for example --cpu-prof, which NODE_OPTIONS refuses). */
  readonly nodeArgs?: readonly string[] | undefined;
}

/**
 * Starts seald and resolves once /readyz answers 200. The address comes from the "listening" log
 * line when the log level shows it (info and below), otherwise from the socket seald listens on.
 */
export async function startSeald(options: SealdOptions): Promise<SealdChild> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    SEALD_LISTEN: "127.0.0.1:0",
    SEALD_MONGODB_URI: options.mongodbUri,
    SEALD_DATABASE: options.database,
    SEALD_MASTER_KEYS: masterKeys,
    SEALD_BOOTSTRAP_TOKEN: adminToken,
    SEALD_LOG_LEVEL: options.logLevel,
    // A list page at 100,000 secrets on FerretDB takes ~40 s (it sorts in memory), far past the
    // 2 s default that makes a stalled database fail fast.
    SEALD_DB_TIMEOUT: "120",
  };
  const nodeArgs = options.nodeArgs ?? [];
  const startedAt = performance.now();
  const child = spawnChild(process.execPath, [...nodeArgs, "--import", "tsx", "src/main.ts"], {
    cwd: root,
    env,
  });
  try {
    const address = await findAddress(child, 30_000);
    const url = `http://${address}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`seald never became ready:\n${child.output()}`);
      await sleep(100);
    }
    return { child, pid: child.pid, address, url, startedAt, stop: () => child.stop() };
  } catch (err) {
    await child.stop();
    throw err;
  }
}

async function findAddress(child: Child, timeoutMs: number): Promise<string> {
  const fromLog = child
    .waitForLine(/"msg":"listening"/, timeoutMs)
    .then((m) => (JSON.parse(m.input) as { address: string }).address);
  fromLog.catch(() => {});
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const logged = await Promise.race([fromLog, sleep(100).then(() => undefined)]);
    if (logged) return logged;
    if (child.process.exitCode !== null) throw new Error(`seald exited:\n${child.output()}`);
    const ports = listeningPorts(child.pid);
    // seald listens on exactly one port; a second would mean something else is listening too.
    if (ports.length === 1) return `127.0.0.1:${ports[0]}`;
    if (Date.now() > deadline) throw new Error(`seald did not listen:\n${child.output()}`);
  }
}

/**
 * Creates the bench's service account with editor and decrypter in the namespaces given and
 * returns its token. Retries while the bootstrap admin does not exist yet.
 */
export async function createServiceAccount(
  url: string,
  name: string,
  grants: readonly { role: string; namespace: string }[],
): Promise<string> {
  const access = createClient(
    AccessService,
    createGrpcTransport({
      baseUrl: url,
      interceptors: [
        (next) => async (req) => {
          req.header.set("authorization", `Bearer ${adminToken}`);
          return next(req);
        },
      ],
    }),
  );
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await access.createPrincipal({
        principal: { name, kind: PrincipalKind.SERVICE_ACCOUNT, displayName: "bench" },
      });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
  for (const g of grants) {
    await access.grantRole({ binding: { principal: name, role: g.role, namespace: g.namespace } });
  }
  const token = await access.createToken({ principal: name, description: "bench" });
  return token.secret;
}
