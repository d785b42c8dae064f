/**
 * `npm run bench`: drives a real seald (a child process) on the embedded FerretDB and measures it
 * against floors measured in the same run: the raw `mongodb` driver doing the same reads on the
 * same database, and bare grpc-js and connect-node servers answering a no-op call. Prints a table
 * and the issue's targets, and writes bench-results/<timestamp>.json.
 *
 *   npx tsx scripts/bench/run.ts [--quick] [--sizes 1000,100000] [--duration 2.5] [--warmup 1]
 *     [--concurrency 1,16,64] [--only <regex>] [--max-drain 15] [--soak <seconds>]
 *     [--profile <dir>] [--seald-log-level warn] [--all-ops] [--out <file>]
 *
 * Each dataset gets a fresh database (so its audit log starts empty) and a fresh seald; datasets
 * past the smallest run only the scaling set unless --all-ops. For every operation: a short
 * warm-up at concurrency 1, whose mean latency also decides which higher concurrencies are worth
 * running (one that would leave more than --max-drain seconds of calls in flight at the end is
 * skipped and says so), then each concurrency for --duration seconds (concurrency 1 goes on to at
 * least five calls within --max-drain). --only <regex> runs the cells whose "<dataset> <via> <op>"
 * matches; --soak <s> adds a run of GetSecret at c64 that samples seald's RSS; --profile <dir>
 * writes seald's CPU profile there and logs each cell's window (see profile-summary.ts).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { DescMessage, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { MongoClient } from "mongodb";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { sealValue } from "../../src/crypto/envelope.js";
import { parseMasterKeys } from "../../src/crypto/keyring.js";
import { SecretValue } from "../../src/crypto/secret-value.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import { secretsPageToken } from "../../src/service/secrets.js";
import { embeddedBinaryPath, startEmbeddedDatabase } from "../../src/store/embedded.js";
import { GrpcTarget, HttpError, HttpTarget } from "./lib/clients.js";
import { type Call, drive, Picker, randomBelow } from "./lib/load.js";
import { cpuMs, ownCpuMs, rssMb, spawnChild } from "./lib/proc.js";
import { type Cell, checkTargets, computeRatios, key, table, targetsText } from "./lib/report.js";
import {
  createServiceAccount,
  masterKeys,
  root,
  type SealdChild,
  startSeald,
} from "./lib/seald.js";
import {
  benchLabels,
  benchNamespace,
  type HeadDoc,
  headDoc,
  openDoc,
  secretName,
  seed,
  seededValue,
  shapeDiff,
  shapeOf,
} from "./lib/seed.js";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    sizes: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    concurrency: { type: "string" },
    only: { type: "string" },
    "max-drain": { type: "string" },
    soak: { type: "string" },
    profile: { type: "string" },
    "seald-log-level": { type: "string", default: "warn" },
    "all-ops": { type: "boolean", default: false },
    out: { type: "string" },
  },
});

const list = (s: string) => s.split(",").map((x) => Number(x.trim()));
const sizes = list(args.sizes ?? (args.quick ? "1000" : "1000,100000")).sort((a, b) => a - b);
const durationMs = Number(args.duration ?? (args.quick ? 0.7 : 2.5)) * 1000;
const warmupMs = Number(args.warmup ?? (args.quick ? 0.3 : 1)) * 1000;
const concurrencies = list(args.concurrency ?? "1,16,64");
const only = args.only ? new RegExp(args.only) : undefined;
const maxDrainMs = Number(args["max-drain"] ?? (args.quick ? 4 : 15)) * 1000;
const soakSeconds = Number(args.soak ?? 0);
if (sizes.some((n) => !Number.isInteger(n) || n < 200)) {
  throw new Error(
    "--sizes: each dataset needs at least 200 secrets (a page of 100 and a last page)",
  );
}

const serviceAccount = "bench-sa";
const writeNamespace = "bench-w";
const runStarted = performance.now();
const elapsed = () => `${((performance.now() - runStarted) / 1000).toFixed(0)}s`;
const log = (msg: string) => process.stderr.write(`[${elapsed()}] ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Operations

/** A measured operation: what it calls and which process serves it. */
interface Op {
  readonly via: string;
  readonly op: string;
  /** "via op" of the floor it is compared with. */
  readonly floor?: string;
  readonly call: Call;
  /** The pid whose CPU time counts as the server's, if any. */
  readonly serverPid?: number;
  readonly concurrencies?: readonly number[];
  /** Set when the target cannot serve the operation at all (a 404 route). */
  unavailable?: string;
  /** Restarts the operation's sequence of secrets; called before every cell. */
  readonly reset?: () => void;
  /** Part of the scaling set every dataset runs (the others run on the smallest only). */
  readonly core?: boolean;
  /** Runs after the operation's last cell (removes what a write operation added). */
  readonly after?: () => Promise<unknown>;
}

/** Clients to close when their dataset is done. */
const openClients: { close(): void }[] = [];
const track = <T extends { close(): void }>(client: T): T => {
  openClients.push(client);
  return client;
};

function rpc<I extends DescMessage, O extends DescMessage>(
  target: GrpcTarget,
  method: DescMethodUnary<I, O>,
  request: MessageInitShape<I>,
) {
  return target.unary(
    `/${method.parent.typeName}/${method.name}`,
    method.input,
    method.output,
    request,
  );
}

const m = SecretsService.method;
const check = (ok: boolean, what: string) => {
  if (!ok) throw new Error(`unexpected answer: ${what}`);
};

/** The no-op cells: seald's Health/Check against bare servers answering the same call. */
function noopOps(
  seald: SealdChild,
  grpcNoop: { pid: number; address: string },
  connectNoop: { pid: number; h2: string; h1: string },
  rawNoop: { pid: number; address: string },
): Op[] {
  const sealdGrpc = track(new GrpcTarget(seald.address));
  const bareGrpc = track(new GrpcTarget(grpcNoop.address));
  const connectGrpc = track(new GrpcTarget(connectNoop.h2));
  const rawGrpc = track(new GrpcTarget(rawNoop.address));
  const sealdHttp = track(new HttpTarget(seald.url));
  const connectHttp = track(new HttpTarget(`http://${connectNoop.h1}`));
  const ok = (t: GrpcTarget) => async () => {
    const res = await rpc(t, Health.method.check, { service: "" });
    check(res.status === HealthCheckResponse_ServingStatus.SERVING, "not SERVING");
  };
  const notFound = (t: GrpcTarget) => async () => {
    try {
      await rpc(t, Health.method.check, { service: "bench.Unknown" });
    } catch (err) {
      if ((err as grpc.ServiceError).code === grpc.status.NOT_FOUND) return;
      throw err;
    }
    throw new Error("expected NOT_FOUND");
  };
  const json = (t: HttpTarget) => async () => {
    const res = await t.connectJson<{ status?: string }>("/grpc.health.v1.Health/Check", {
      service: "",
    });
    check(res.status === "SERVING", JSON.stringify(res));
  };
  return [
    { via: "grpc-js", op: "Health/Check", call: ok(bareGrpc), serverPid: grpcNoop.pid },
    {
      via: "grpc",
      op: "Health/Check",
      floor: key("grpc-js", "Health/Check"),
      call: ok(sealdGrpc),
      serverPid: seald.pid,
    },
    {
      via: "grpc-js",
      op: "Health/Check NotFound",
      call: notFound(bareGrpc),
      serverPid: grpcNoop.pid,
    },
    {
      via: "grpc",
      op: "Health/Check NotFound",
      floor: key("grpc-js", "Health/Check NotFound"),
      call: notFound(sealdGrpc),
      serverPid: seald.pid,
    },
    {
      via: "connect-node-grpc",
      op: "Health/Check",
      floor: key("grpc-js", "Health/Check"),
      call: ok(connectGrpc),
      serverPid: connectNoop.pid,
    },
    {
      via: "node-http2-stream",
      op: "Health/Check",
      floor: key("grpc-js", "Health/Check"),
      call: ok(rawGrpc),
      serverPid: rawNoop.pid,
    },
    {
      via: "connect-node-json",
      op: "Health/Check",
      call: json(connectHttp),
      serverPid: connectNoop.pid,
    },
    {
      via: "connect-json",
      op: "Health/Check",
      floor: key("connect-node-json", "Health/Check"),
      call: json(sealdHttp),
      serverPid: seald.pid,
    },
  ];
}

interface DatasetContext {
  readonly size: number;
  readonly seald: SealdChild;
  readonly token: string;
  readonly mongo: MongoClient;
  readonly database: string;
}

/** The read cells of one dataset, each operation's floor first. */
function readOps(ctx: DatasetContext): Op[] {
  const { size, seald, token } = ctx;
  const ns = benchNamespace;
  const ring = parseMasterKeys(masterKeys, "bench");
  const g = track(new GrpcTarget(seald.address, token));
  const h = track(new HttpTarget(seald.url, token));
  const secrets = ctx.mongo.db(ctx.database).collection<HeadDoc>("secrets");
  const picker = new Picker(size);
  const reset = () => picker.reset();
  const name = () => secretName(picker.next());
  const lastAfter = secretName(size - 101);
  const sensuBase = `/api/enterprise/secrets/v1/namespaces/${ns}/secrets`;
  const grafanaBase = `/apis/secret.grafana.app/v1beta1/namespaces/${ns}/securevalues`;
  const sealdPid = seald.pid;
  const decryptVia = async (names: string[]) => {
    const res = await rpc(g, m.decryptSecrets, { namespace: ns, names });
    for (const n of names) {
      const r = res.results[n]?.result;
      check(r?.case === "value" && r.value === seededValue(n), `decrypt ${n}: ${r?.value}`);
    }
  };
  const decryptRaw = async (names: string[]) => {
    // As seald does: one name after the other.
    for (const n of names) {
      const doc = await secrets.findOne({ _id: `${ns} ${n}` });
      check(doc !== null && openDoc(ring, doc) === seededValue(n), `raw decrypt ${n}`);
    }
  };
  const ops: Op[] = [
    {
      via: "driver",
      op: "GetSecret",
      core: true,
      call: async () => {
        const n = name();
        const doc = await secrets.findOne({ _id: `${ns} ${n}` });
        check(doc?.name === n, n);
      },
    },
    {
      via: "grpc",
      op: "GetSecret",
      core: true,
      floor: key("driver", "GetSecret"),
      serverPid: sealdPid,
      call: async () => {
        const n = name();
        const res = await rpc(g, m.getSecret, { namespace: ns, name: n });
        check(res.secret?.name === n, n);
      },
    },
    {
      via: "connect-json",
      op: "GetSecret",
      floor: key("driver", "GetSecret"),
      serverPid: sealdPid,
      call: async () => {
        const n = name();
        const res = await h.connectJson<{ secret?: { name?: string } }>(
          `/${SecretsService.typeName}/GetSecret`,
          { namespace: ns, name: n },
        );
        check(res.secret?.name === n, n);
      },
    },
    {
      via: "sensu",
      op: "GetSecret",
      floor: key("driver", "GetSecret"),
      serverPid: sealdPid,
      call: async () => {
        const n = name();
        const res = await h.getJson<{ metadata?: { name?: string } }>(`${sensuBase}/${n}`);
        check(res.metadata?.name === n, n);
      },
    },
    {
      via: "grafana",
      op: "GetSecret",
      floor: key("driver", "GetSecret"),
      serverPid: sealdPid,
      call: async () => {
        const n = name();
        const res = await h.getJson<{ metadata?: { name?: string } }>(`${grafanaBase}/${n}`);
        check(res.metadata?.name === n, n);
      },
    },
    {
      via: "driver",
      op: "ListSecrets",
      core: true,
      call: async () => {
        // The query seald's store sends for a page of 100 (one more tells if another page
        // exists): the namespace's range of _id ("<ns> <name>").
        const docs = await secrets
          .find({ _id: { $gt: `${ns} `, $lt: `${ns}!` } })
          .sort({ _id: 1 })
          .limit(101)
          .toArray();
        check(docs.length === 101, `${docs.length} docs`);
      },
    },
    {
      via: "grpc",
      op: "ListSecrets",
      core: true,
      floor: key("driver", "ListSecrets"),
      serverPid: sealdPid,
      call: async () => {
        const res = await rpc(g, m.listSecrets, { namespace: ns, pageSize: 100 });
        check(res.secrets.length === 100 && res.nextPageToken !== "", `${res.secrets.length}`);
      },
    },
    {
      via: "connect-json",
      op: "ListSecrets",
      floor: key("driver", "ListSecrets"),
      serverPid: sealdPid,
      call: async () => {
        const res = await h.connectJson<{ secrets?: unknown[] }>(
          `/${SecretsService.typeName}/ListSecrets`,
          { namespace: ns, pageSize: 100 },
        );
        check(res.secrets?.length === 100, `${res.secrets?.length}`);
      },
    },
    {
      via: "sensu",
      op: "ListSecrets",
      floor: key("driver", "ListSecrets"),
      serverPid: sealdPid,
      call: async () => {
        const res = await h.getJson<unknown[]>(`${sensuBase}?limit=100`);
        check(Array.isArray(res) && res.length === 100, `${(res as unknown[]).length}`);
      },
    },
    {
      via: "grafana",
      op: "ListSecrets",
      floor: key("driver", "ListSecrets"),
      serverPid: sealdPid,
      call: async () => {
        const res = await h.getJson<{ items?: unknown[] }>(`${grafanaBase}?limit=100`);
        check(res.items?.length === 100, `${res.items?.length}`);
      },
    },
    {
      via: "driver",
      op: "ListSecrets last page",
      concurrencies: [1, 16],
      call: async () => {
        const docs = await secrets
          .find({ _id: { $gt: `${ns} ${lastAfter}`, $lt: `${ns}!` } })
          .sort({ _id: 1 })
          .limit(101)
          .toArray();
        check(docs.length === 100, `${docs.length} docs`);
      },
    },
    {
      via: "grpc",
      op: "ListSecrets last page",
      core: true,
      floor: key("driver", "ListSecrets last page"),
      serverPid: sealdPid,
      concurrencies: [1, 16],
      call: async () => {
        // The token ListSecrets returns after secret size-101 (checked in prepareDataset).
        const pageToken = secretsPageToken.encode({ namespace: ns, name: lastAfter });
        const res = await rpc(g, m.listSecrets, { namespace: ns, pageSize: 100, pageToken });
        check(
          res.secrets.length === 100 &&
            res.secrets[0]?.name === secretName(size - 100) &&
            res.nextPageToken === "",
          `${res.secrets.length} from ${res.secrets[0]?.name}`,
        );
      },
    },
    {
      via: "driver",
      op: "DecryptSecrets(1)",
      core: true,
      call: () => decryptRaw([name()]),
    },
    {
      via: "grpc",
      op: "DecryptSecrets(1)",
      core: true,
      floor: key("driver", "DecryptSecrets(1)"),
      serverPid: sealdPid,
      call: () => decryptVia([name()]),
    },
    {
      via: "driver",
      op: "DecryptSecrets(10)",
      call: () => decryptRaw(picker.distinct(10).map(secretName)),
    },
    {
      via: "grpc",
      op: "DecryptSecrets(10)",
      floor: key("driver", "DecryptSecrets(10)"),
      serverPid: sealdPid,
      call: () => decryptVia(picker.distinct(10).map(secretName)),
    },
  ];
  return ops.map((op) => ({ ...op, reset }));
}

/** The write cells: new secrets in another namespace, and new values for seeded ones. */
function writeOps(ctx: DatasetContext): Op[] {
  const { seald, token } = ctx;
  const ring = parseMasterKeys(masterKeys, "bench");
  const g = track(new GrpcTarget(seald.address, token));
  const secrets = ctx.mongo.db(ctx.database).collection<HeadDoc>("secrets");
  const tag = randomBytes(3).toString("hex");
  let created = 0;
  const picker = new Picker(ctx.size, 0xfeed);
  const value = () => `new-${randomBytes(12).toString("hex")}`;
  // Created secrets are removed after each create operation, so the collection keeps its size.
  const removeCreated = (namespace: string) => () => secrets.deleteMany({ namespace });
  return [
    {
      via: "driver",
      op: "CreateSecret",
      after: removeCreated(`${writeNamespace}-raw`),
      call: async () => {
        await secrets.insertOne(
          headDoc(ring, {
            namespace: `${writeNamespace}-raw`,
            name: `w${tag}-${created++}`,
            value: value(),
            decrypters: [serviceAccount],
            createdBy: serviceAccount,
          }),
        );
      },
    },
    {
      via: "grpc",
      op: "CreateSecret",
      floor: key("driver", "CreateSecret"),
      serverPid: seald.pid,
      after: removeCreated(writeNamespace),
      call: async () => {
        const n = `w${tag}-${created++}`;
        const res = await rpc(g, m.createSecret, {
          secret: {
            namespace: writeNamespace,
            name: n,
            labels: { ...benchLabels },
            description: "bench secret",
            decrypters: [serviceAccount],
            value: { kind: { case: "plaintext", value: value() } },
          },
        });
        check(res.secret?.name === n, n);
      },
    },
    {
      via: "driver",
      op: "UpdateSecret",
      reset: () => picker.reset(),
      call: async () => {
        // The least an update of a value can do: read the head, seal, write it back by _id.
        const n = secretName(picker.next());
        const doc = await secrets.findOne({ _id: `${benchNamespace} ${n}` });
        if (!doc) throw new Error(`no ${n}`);
        const version = (doc.version as number) + 1;
        const e = sealValue(ring, SecretValue.fromString(value()), {
          namespace: benchNamespace,
          name: n,
          uid: doc.uid as string,
          version,
        });
        const b = (x: Uint8Array) => Buffer.from(x);
        await secrets.updateOne(
          { _id: doc._id },
          {
            $set: {
              version,
              rv: randomBytes(8).toString("hex"),
              updateTime: new Date(),
              sealed: {
                kekId: e.kekId,
                dekNonce: b(e.dekNonce),
                wrappedDek: b(e.wrappedDek),
                nonce: b(e.nonce),
                ciphertext: b(e.ciphertext),
              },
            },
          },
        );
      },
    },
    {
      via: "grpc",
      op: "UpdateSecret",
      reset: () => picker.reset(),
      floor: key("driver", "UpdateSecret"),
      serverPid: seald.pid,
      call: async () => {
        const n = secretName(picker.next());
        const res = await rpc(g, m.updateSecret, {
          secret: {
            namespace: benchNamespace,
            name: n,
            labels: { ...benchLabels },
            description: "bench secret",
            decrypters: [serviceAccount],
            value: { kind: { case: "plaintext", value: value() } },
          },
        });
        check(res.secret?.name === n && res.secret.version > 1n, n);
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Running cells

const cells: Cell[] = [];
/** The seald being profiled, so each cell can name its window in the profile. */
let profiled: SealdChild | undefined;

async function runOp(
  op: Op,
  dataset: number | null,
  pids: { db: number },
  audit?: () => Promise<number>,
): Promise<void> {
  const name = `${dataset ?? "no-op"} ${op.via} ${op.op}`;
  const wanted = (op.concurrencies ?? concurrencies).filter((c) => concurrencies.includes(c));
  const base = { dataset, via: op.via, op: op.op, floor: op.floor };
  if (only && !only.test(name)) return;
  if (op.unavailable) {
    for (const c of wanted) cells.push({ ...base, concurrency: c, skipped: op.unavailable });
    log(`${name}: skipped (${op.unavailable})`);
    return;
  }
  const measure = async (c: number, ms: number): Promise<Cell> => {
    op.reset?.();
    const auditBefore = audit ? await audit() : undefined;
    const t0 = profiled ? (performance.now() - profiled.startedAt) / 1000 : 0;
    const server0 = op.serverPid ? cpuMs(op.serverPid) : 0;
    const db0 = cpuMs(pids.db);
    const own0 = ownCpuMs();
    // Concurrency 1 keeps going until it has a few samples, within the drain bound.
    const result = await drive(op.call, c, ms, c === 1 ? { minCalls: 5, maxMs: maxDrainMs } : {});
    const server1 = op.serverPid ? cpuMs(op.serverPid) : 0;
    const db1 = cpuMs(pids.db);
    const own1 = ownCpuMs();
    const per = (cpu: number) => (result.calls > 0 ? cpu / result.calls : Number.NaN);
    const cell: Cell = {
      ...base,
      ...result,
      concurrency: c,
      dbCpuMsPerCall: per(db1 - db0),
      clientCpuMsPerCall: per(own1 - own0),
    };
    if (op.serverPid) {
      cell.serverCpuMsPerCall = per(server1 - server0);
      cell.serverRssMb = rssMb(op.serverPid);
    }
    if (auditBefore !== undefined) cell.auditRecords = auditBefore;
    if (profiled) {
      const t1 = (performance.now() - profiled.startedAt) / 1000;
      cell.note = `seald profile window --from ${t0.toFixed(1)} --to ${t1.toFixed(1)}`;
    }
    return cell;
  };
  const report = (cell: Cell) => {
    cells.push(cell);
    log(
      `${name} c${cell.concurrency}: ${cell.throughput?.toFixed(1)}/s p50 ${cell.p50Ms?.toFixed(2)} p99 ${cell.p99Ms?.toFixed(2)} ms${cell.errors ? ` errors ${cell.errors} (${cell.firstError})` : ""}${cell.note ? ` (${cell.note})` : ""}`,
    );
  };
  // Warm-up at concurrency 1; its mean latency says how long a full pipeline takes to drain.
  const warm = await measure(1, warmupMs);
  if (!warm.calls) {
    const why = `every call failed: ${warm.firstError}`;
    for (const c of wanted) cells.push({ ...base, concurrency: c, skipped: why });
    log(`${name}: ${why}`);
    return;
  }
  const latency = warm.meanMs ?? 0;
  for (const c of wanted) {
    const drain = latency * c;
    if (c > 1 && drain > maxDrainMs) {
      const why = `one call takes ${latency.toFixed(0)} ms: ${c} in flight would need ~${(drain / 1000).toFixed(0)} s to drain (--max-drain ${maxDrainMs / 1000})`;
      cells.push({ ...base, concurrency: c, skipped: why });
      log(`${name} c${c}: skipped`);
      continue;
    }
    if (c === 1 && latency * 5 >= maxDrainMs) {
      // Five calls would take longer than the drain bound: the warm-up's calls are the
      // measurement (the first call's cold start is noise next to seconds in the database).
      report({
        ...warm,
        note: "measured during the warm-up: five calls would take longer than --max-drain",
      });
      continue;
    }
    report(await measure(c, durationMs));
  }
  await op.after?.();
}

/** Marks REST ops whose route does not exist yet (404 from the dialect's router). */
async function probeRoutes(ops: Op[]): Promise<void> {
  for (const op of ops) {
    if (op.via !== "sensu" && op.via !== "grafana") continue;
    try {
      await op.call();
    } catch (err) {
      if (err instanceof HttpError && err.answer.status === 404) {
        op.unavailable = `route answered 404: ${err.answer.body.slice(0, 80)}`;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Datasets

interface DatasetInfo {
  size: number;
  database: string;
  seedSeconds: number;
  seedMethod: string;
  notes: string[];
}

/**
 * Checks the seeding layout against a record seald wrote, seeds, and checks through seald that a
 * seeded secret reads and decrypts.
 */
async function prepareDataset(ctx: DatasetContext, info: DatasetInfo): Promise<void> {
  const ring = parseMasterKeys(masterKeys, "bench");
  const g = new GrpcTarget(ctx.seald.address, ctx.token);
  const secrets = ctx.mongo.db(ctx.database).collection<HeadDoc>("secrets");
  // A template written by seald itself, in a namespace of its own so it stays out of the pages.
  await rpc(g, m.createSecret, {
    secret: {
      namespace: "bench-template",
      name: "template",
      labels: { ...benchLabels },
      description: "bench secret",
      decrypters: [serviceAccount],
      value: { kind: { case: "plaintext", value: "template-value" } },
    },
  });
  const stored = await secrets.findOne({ _id: "bench-template template" });
  const mine = headDoc(ring, {
    namespace: "bench-template",
    name: "x",
    value: "v",
    decrypters: [serviceAccount],
    createdBy: "admin",
  });
  const diff = shapeDiff(shapeOf(stored), shapeOf(mine));
  if (diff.length > 0) {
    throw new Error(
      `the seeding layout no longer matches what seald stores; update scripts/bench/lib/seed.ts:\n  ${diff.join("\n  ")}`,
    );
  }
  log(`dataset ${ctx.size}: seeding with the raw driver`);
  let shown = 0;
  info.seedSeconds = await seed(secrets, ring, { from: 0, to: ctx.size }, serviceAccount, (d) => {
    if (d - shown >= 20_000) {
      shown = d;
      log(`  ${d} seeded`);
    }
  });
  log(`dataset ${ctx.size}: seeded in ${info.seedSeconds.toFixed(1)} s`);
  // Through seald: a seeded secret reads and decrypts. (The first one: on FerretDB a lookup costs
  // a scan up to the record, and the last of 100,000 takes seconds. The "last page" operation
  // checks that the page token the bench builds is one seald accepts and pages from.)
  const count = await secrets.estimatedDocumentCount();
  check(count >= ctx.size, `only ${count} records in the collection`);
  const first = secretName(0);
  const got = await rpc(g, m.getSecret, { namespace: benchNamespace, name: first });
  check(
    got.secret?.uid === (await secrets.findOne({ _id: `${benchNamespace} ${first}` }))?.uid,
    "seeded secret not readable",
  );
  const dec = await rpc(g, m.decryptSecrets, { namespace: benchNamespace, names: [first] });
  const r = dec.results[first]?.result;
  check(r?.case === "value" && r.value === seededValue(first), "seeded secret does not decrypt");
  g.close();
}

async function soak(ctx: DatasetContext, seconds: number) {
  const g = new GrpcTarget(ctx.seald.address, ctx.token);
  const samples: { t: number; rssMb: number }[] = [];
  const started = performance.now();
  const timer = setInterval(() => {
    samples.push({ t: (performance.now() - started) / 1000, rssMb: rssMb(ctx.seald.pid) });
  }, 5000);
  log(`soak: gRPC GetSecret at c64 for ${seconds} s`);
  const result = await drive(
    async () => {
      const n = secretName(randomBelow(ctx.size));
      await rpc(g, m.getSecret, { namespace: benchNamespace, name: n });
    },
    64,
    seconds * 1000,
  );
  clearInterval(timer);
  g.close();
  // Compare the first minute after warm-up (30-90 s) with the last minute.
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const early = avg(samples.filter((s) => s.t >= 30 && s.t < 90).map((s) => s.rssMb));
  const late = avg(samples.filter((s) => s.t >= seconds - 60).map((s) => s.rssMb));
  return {
    dataset: ctx.size,
    seconds,
    result,
    samples,
    earlyMb: early,
    lateMb: late,
    growth: late / early - 1,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  await loadSodium();
  const tmp = mkdtempSync(join(os.tmpdir(), "seald-bench-"));
  const children: { stop(): Promise<void> }[] = [];
  const datasets: DatasetInfo[] = [];
  let soakResult: Awaited<ReturnType<typeof soak>> | undefined;
  const load0 = os.loadavg();
  let mongo: MongoClient | undefined;
  try {
    log(`FerretDB (${embeddedBinaryPath}) in ${tmp}`);
    const db = await startEmbeddedDatabase({ dir: join(tmp, "db") });
    children.push(db);
    mongo = new MongoClient(db.uri);
    await mongo.connect();

    const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" };
    const grpcChild = spawnChild(
      process.execPath,
      ["--import", "tsx", "scripts/bench/noop-grpc-server.ts"],
      { cwd: root, env },
    );
    children.push(grpcChild);
    const connectChild = spawnChild(
      process.execPath,
      ["--import", "tsx", "scripts/bench/noop-connect-server.ts"],
      { cwd: root, env },
    );
    children.push(connectChild);
    const rawChild = spawnChild(
      process.execPath,
      ["--import", "tsx", "scripts/bench/noop-h2-server.ts"],
      { cwd: root, env },
    );
    children.push(rawChild);
    const grpcPort = (await grpcChild.waitForLine(/^listening grpc=(\d+)$/, 20_000))[1];
    const connectPorts = await connectChild.waitForLine(/^listening h2=(\d+) h1=(\d+)$/, 20_000);
    const rawPort = (await rawChild.waitForLine(/^listening h2=(\d+)$/, 20_000))[1];

    for (const [index, size] of sizes.entries()) {
      const database = `bench_${size}_${randomBytes(3).toString("hex")}`;
      const info: DatasetInfo = {
        size,
        database,
        seedSeconds: 0,
        seedMethod:
          "raw driver insertMany (1,000 per batch, 3 in flight), values sealed with the run's key ring",
        notes: [],
      };
      datasets.push(info);
      const profileDir = args.profile ? join(args.profile, `seald-${size}`) : undefined;
      if (profileDir) mkdirSync(profileDir, { recursive: true });
      log(`dataset ${size}: starting seald on database ${database}`);
      const seald = await startSeald({
        mongodbUri: db.uri,
        database,
        logLevel: args["seald-log-level"] ?? "warn",
        nodeArgs: profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : undefined,
      });
      children.push(seald);
      if (profileDir) profiled = seald;
      log(`seald pid ${seald.pid} on ${seald.address}`);
      const token = await createServiceAccount(seald.url, serviceAccount, [
        { role: "editor", namespace: benchNamespace },
        { role: "decrypter", namespace: benchNamespace },
        { role: "editor", namespace: writeNamespace },
        { role: "editor", namespace: "bench-template" },
      ]);
      const ctx: DatasetContext = { size, seald, token, mongo, database };
      const pids = { db: db.pid };

      if (index === 0) {
        log("no-op cells");
        for (const op of noopOps(
          seald,
          { pid: grpcChild.pid, address: `127.0.0.1:${grpcPort}` },
          {
            pid: connectChild.pid,
            h2: `127.0.0.1:${connectPorts[1]}`,
            h1: `127.0.0.1:${connectPorts[2]}`,
          },
          { pid: rawChild.pid, address: `127.0.0.1:${rawPort}` },
        )) {
          await runOp(op, null, pids);
        }
      }

      await prepareDataset(ctx, info);
      const auditCount = () =>
        mongo?.db(database).collection("audit").estimatedDocumentCount() ?? Promise.resolve(0);
      // Past the smallest dataset only the scaling set runs, unless --all-ops: on FerretDB every
      // read of a larger dataset costs seconds (see the README's benchmark section).
      const everything = index === 0 || args["all-ops"];
      const reads = readOps(ctx).filter((op) => everything || op.core);
      const writes = everything ? writeOps(ctx) : [];
      if (!everything) {
        info.notes.push(
          "scaling set only (driver and gRPC GetSecret, ListSecrets, DecryptSecrets(1); gRPC ListSecrets last page); --all-ops runs everything",
        );
      }
      await probeRoutes(reads);
      for (const op of reads) {
        if (op.unavailable) info.notes.push(`${op.via} ${op.op}: ${op.unavailable}`);
        await runOp(op, size, pids, auditCount);
      }
      for (const op of writes) await runOp(op, size, pids, auditCount);
      if (index === 0 && soakSeconds > 0) soakResult = await soak(ctx, soakSeconds);

      for (const client of openClients.splice(0)) client.close();
      await seald.stop();
      children.splice(children.indexOf(seald), 1);
      await mongo.db(database).dropDatabase();
    }
  } finally {
    await mongo?.close().catch(() => {});
    for (const c of children.reverse()) await c.stop().catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  }

  computeRatios(cells);
  const checks = checkTargets(cells, sizes);
  if (soakResult) {
    checks.push({
      target: `seald resident memory flat (within 10%) over ${soakResult.seconds} s at c64`,
      measured: `${soakResult.earlyMb.toFixed(1)} MiB (30-90 s) -> ${soakResult.lateMb.toFixed(1)} MiB (last minute) = ${(soakResult.growth * 100).toFixed(1)}%`,
      met: Math.abs(soakResult.growth) <= 0.1,
    });
  }
  const cpu = os.cpus();
  const machine = {
    cpus: cpu.length,
    model: cpu[0]?.model ?? "unknown",
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadAverageBefore: load0,
    loadAverageAfter: os.loadavg(),
  };
  const out = [
    "",
    `seald bench, ${new Date().toISOString()}: ${machine.cpus} x ${machine.model}, ${machine.memoryGb} GiB, ${machine.kernel}, Node ${machine.node}`,
    `duration ${durationMs / 1000} s per cell after a ${warmupMs / 1000} s warm-up; closed loop; client, seald and FerretDB share the machine`,
    "calls/s: successful calls per second; xfloor: calls/s over the floor's at the same concurrency;",
    "srv cpu / db cpu: CPU ms per call of the server process (seald or the bare server) and of FerretDB",
    "",
    table(cells),
    "",
    ...datasets.map(
      (d) =>
        `dataset ${d.size}: seeded in ${d.seedSeconds.toFixed(1)} s (${d.seedMethod})${d.notes.length ? `\n  ${d.notes.join("\n  ")}` : ""}`,
    ),
    ...(soakResult
      ? [
          `soak: ${soakResult.seconds} s of GetSecret at c64 (${soakResult.result.throughput.toFixed(1)} calls/s): seald RSS ${soakResult.earlyMb.toFixed(1)} MiB (30-90 s) -> ${soakResult.lateMb.toFixed(1)} MiB (last minute), ${(soakResult.growth * 100).toFixed(1)}%`,
        ]
      : []),
    "",
    "targets (issues 8 and 17; ratios from one run on a shared machine):",
    targetsText(checks),
    "",
    `total ${elapsed()}`,
  ].join("\n");
  process.stdout.write(`${out}\n`);

  const file =
    args.out ??
    join(root, "bench-results", `${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        startedAt: new Date(Date.now() - (performance.now() - runStarted)).toISOString(),
        seconds: (performance.now() - runStarted) / 1000,
        machine,
        options: { sizes, durationMs, warmupMs, concurrencies, maxDrainMs, only: args.only },
        datasets,
        cells,
        targets: checks,
        soak: soakResult,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`results written to ${file}\n`);
}

await main();
// grpc-js channels and keep-alive agents would hold the process open.
process.exit(0);
