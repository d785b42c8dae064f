/**
 * Time to Unavailable under a stalled database: starts an embedded FerretDB and a seald of its
 * own (in this process, loopback, temporary directory), pauses FerretDB with SIGSTOP, makes N
 * sequential calls of each kind (GetSecret over grpc-js, DecryptSecrets over Connect's gRPC,
 * Sensu and Grafana GETs), prints p50 and max of each call's time and its outcomes, then
 * resumes the database and prints how long until each kind succeeds again.
 *
 *   npx tsx scripts/db-stall.ts [--calls 20] [--db-timeout 2]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { AccessService, PrincipalKind } from "../gen/secrets/v1/access_service_pb.js";
import {
  GetSecretRequestSchema,
  GetSecretResponseSchema,
  SecretsService,
} from "../gen/secrets/v1/secrets_service_pb.js";
import { startSeald } from "../src/app.js";
import { parseConfig } from "../src/config.js";
import { createLogger } from "../src/log.js";
import { startEmbeddedDatabase } from "../src/store/embedded.js";

const { values: args } = parseArgs({
  options: { calls: { type: "string", default: "20" }, "db-timeout": { type: "string" } },
});
const calls = Number(args.calls);
const adminToken = `seald_${"B".repeat(43)}`;

const dir = mkdtempSync(join(tmpdir(), "seald-stall-bench-"));
const db = await startEmbeddedDatabase({ dir: join(dir, "db") });
const parsed = parseConfig(
  [
    "--listen",
    "127.0.0.1:0",
    "--data-dir",
    dir,
    ...(args["db-timeout"] ? ["--db-timeout", args["db-timeout"]] : []),
  ],
  {
    SEALD_MONGODB_URI: db.uri,
    SEALD_MASTER_KEYS: `bench:${Buffer.alloc(32, 9).toString("base64")}`,
    SEALD_BOOTSTRAP_TOKEN: adminToken,
    SEALD_LOG_LEVEL: "silent",
  },
);
if (parsed.kind !== "run") throw new Error(parsed.output);
const seald = await startSeald(parsed.config, createLogger("silent"));
let paused = false;
const resume = () => {
  if (paused) process.kill(db.pid, "SIGCONT");
  paused = false;
};
process.on("exit", resume);

try {
  await seald.databaseStarted;
  const auth = (token: string) => ({
    interceptors: [
      (next: (r: never) => Promise<unknown>) => (req: { header: Headers }) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req as never);
      },
    ] as never,
  });
  const rpc = (token: string) =>
    createClient(SecretsService, createGrpcTransport({ baseUrl: seald.url, ...auth(token) }));
  const access = createClient(
    AccessService,
    createGrpcTransport({ baseUrl: seald.url, ...auth(adminToken) }),
  );
  await access.createPrincipal({ principal: { name: "svc", kind: PrincipalKind.SERVICE_ACCOUNT } });
  await access.grantRole({ binding: { principal: "svc", role: "decrypter", namespace: "o" } });
  const svcToken = (await access.createToken({ principal: "svc" })).secret;
  await rpc(adminToken).createSecret({
    secret: {
      namespace: "o",
      name: "s",
      decrypters: ["svc"],
      value: { kind: { case: "plaintext", value: "v" } },
    },
  });

  const grpcJs = new grpc.Client(new URL(seald.url).host, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${adminToken}`);
  const getSecret = () =>
    new Promise<string>((resolve) => {
      grpcJs.makeUnaryRequest(
        "/secrets.v1.SecretsService/GetSecret",
        (m: object) =>
          Buffer.from(toBinary(GetSecretRequestSchema, create(GetSecretRequestSchema, m))),
        (b: Buffer) => fromBinary(GetSecretResponseSchema, b),
        { namespace: "o", name: "s" },
        md,
        { deadline: Date.now() + 30_000 },
        (err) => resolve(err ? (grpc.status[err.code] ?? "?") : "ok"),
      );
    });
  const decrypter = rpc(svcToken);
  const rest = async (path: string) =>
    String(
      (await fetch(`${seald.url}${path}`, { headers: { authorization: `Bearer ${adminToken}` } }))
        .status,
    );
  const kinds: [string, () => Promise<string>][] = [
    ["GetSecret (grpc-js)", getSecret],
    [
      "DecryptSecrets (connect gRPC)",
      () =>
        decrypter.decryptSecrets({ namespace: "o", names: ["s"] }).then(
          () => "ok",
          (e: unknown) => Code[ConnectError.from(e).code] ?? "?",
        ),
    ],
    ["Sensu GET", () => rest("/api/enterprise/secrets/v1/namespaces/o/secrets/s")],
    ["Grafana GET", () => rest("/apis/secret.grafana.app/v1beta1/namespaces/o/securevalues/s")],
  ];
  for (const [, call] of kinds) await call();
  // Past the authenticator's 1 s cache, so token lookups meet the stall too.
  await new Promise((r) => setTimeout(r, 1100));

  console.log(
    `SIGSTOP of the database; ${calls} sequential calls of each kind, SEALD_DB_TIMEOUT=${parsed.config.dbTimeoutMs / 1000} s`,
  );
  process.kill(db.pid, "SIGSTOP");
  paused = true;
  for (const [name, call] of kinds) {
    const times: number[] = [];
    const outcomes = new Map<string, number>();
    for (let i = 0; i < calls; i++) {
      const started = performance.now();
      const outcome = await call();
      times.push(performance.now() - started);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    times.sort((a, b) => a - b);
    const p50 = times[Math.floor((times.length - 1) / 2)] ?? 0;
    const max = times[times.length - 1] ?? 0;
    console.log(
      `${name.padEnd(30)} p50 ${(p50 / 1000).toFixed(2)} s  max ${(max / 1000).toFixed(2)} s  ${[...outcomes].map(([o, n]) => `${o} x${n}`).join(", ")}`,
    );
  }
  resume();
  const resumed = performance.now();
  for (const [name, call] of kinds) {
    let outcome = await call();
    while (outcome !== "ok" && outcome !== "200" && performance.now() - resumed < 60_000) {
      await new Promise((r) => setTimeout(r, 50));
      outcome = await call();
    }
    console.log(
      `after SIGCONT: ${name.padEnd(30)} ${outcome} at +${((performance.now() - resumed) / 1000).toFixed(2)} s`,
    );
  }
  grpcJs.close();
} finally {
  resume();
  await seald.close();
  await db.stop();
  rmSync(dir, { recursive: true, force: true });
}
