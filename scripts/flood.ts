/**
 * Floods a real seald (a child process on the embedded database) with the attacks of issue #13
 * and measures what they cost: connections seald holds (ss), its resident memory (/proc), and
 * another client's latency, unloaded and during each flood, plus whether fresh /healthz probes
 * get through. Loopback only; sizes are modest (2 shared cores, `ulimit -n` per process).
 *
 *   npx tsx scripts/flood.ts                       # every flood against this checkout
 *   npx tsx scripts/flood.ts --checkout /tmp/main  # the same against another checkout
 *   npx tsx scripts/flood.ts --only zerowindow --size 2000 --hold 15
 *
 * Floods: `silent` (TCP connections that send nothing), `preface` (HTTP/2 preface, then
 * nothing), `slowheaders` (HTTP/1.1 headers, one byte every 2 s), `zerowindow` (4 HTTP/2
 * connections of a reader token x --streams ListSecrets calls with a zero receive window, never
 * read). Connection floods spread over 10 loopback source addresses. SEALD_* variables in the
 * environment are passed to seald (for example tighter limits).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    checkout: { type: "string", default: process.cwd() },
    only: { type: "string" },
    size: { type: "string", default: "3000" },
    streams: { type: "string", default: "2000" },
    hold: { type: "string", default: "15" },
  },
});
const checkout = resolve(args.checkout ?? ".");
const size = Number(args.size);
const streamsPerConn = Number(args.streams);
const holdMs = Number(args.hold) * 1000;
const admin = `seald_${"F".repeat(43)}`;
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Math.round(Number(m?.[1] ?? 0) / 102.4) / 10;
}

function established(port: number): number {
  const out = execFileSync("ss", ["-Htn", "state", "established", `( sport = :${port} )`], {
    encoding: "utf8",
  });
  return out.split("\n").filter((l) => l.trim() !== "").length;
}

async function startSeald(): Promise<{ child: ChildProcess; port: number; dir: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "seald-flood-"));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    SEALD_LISTEN: `127.0.0.1:${port}`,
    SEALD_DATA_DIR: dir,
    SEALD_LOG_LEVEL: "warn",
    SEALD_BOOTSTRAP_TOKEN: admin,
    SEALD_MASTER_KEYS: `flood:${Buffer.alloc(32, 9).toString("base64")}`,
  };
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("SEALD_") && v !== undefined && !(k in env)) env[k] = v;
  }
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: checkout,
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (let i = 0; i < 200; i++) {
    await sleep(200);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return { child, port, dir };
  }
  child.kill("SIGKILL");
  throw new Error("seald did not become ready");
}

async function rpc(port: number, path: string, body: unknown, token = admin): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A reader token of its own for the zero-window flood: the victim is another principal. */
async function readerToken(port: number): Promise<string> {
  const svc = "/secrets.v1.AccessService";
  await rpc(port, `${svc}/CreatePrincipal`, {
    principal: { name: "flooder", kind: "PRINCIPAL_KIND_USER" },
  });
  await rpc(port, `${svc}/GrantRole`, {
    binding: { principal: "flooder", role: "reader", namespace: "flood" },
  });
  const res = (await rpc(port, `${svc}/CreateToken`, { principal: "flooder" })) as {
    secret: string;
  };
  return res.secret;
}

interface Probe {
  latencies: number[];
  failures: number;
  probesOk: number;
  probesFailed: number;
}

/** The other client: sequential Sensu list calls on one keep-alive connection, and fresh-connection probes. */
async function victim(port: number, ms: number): Promise<Probe> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: Probe = { latencies: [], failures: 0, probesOk: 0, probesFailed: 0 };
  const until = Date.now() + ms;
  const call = (path: string, a: http.Agent | false, localAddress: string) =>
    new Promise<number>((resolve) => {
      const req = http.get(
        {
          host: "127.0.0.1",
          port,
          path,
          agent: a,
          localAddress,
          headers: { authorization: `Bearer ${admin}` },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.setTimeout(5000, () => req.destroy());
      req.on("error", () => resolve(0));
    });
  const probes = (async () => {
    while (Date.now() < until) {
      const status = await call("/healthz", false, "127.0.0.98");
      if (status === 200) out.probesOk++;
      else out.probesFailed++;
      await sleep(500);
    }
  })();
  while (Date.now() < until) {
    const t = process.hrtime.bigint();
    const status = await call(
      "/api/enterprise/secrets/v1/namespaces/v/secrets",
      agent,
      "127.0.0.99",
    );
    if (status === 200) out.latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
    else out.failures++;
    await sleep(20);
  }
  await probes;
  agent.destroy();
  return out;
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round((s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0) * 100) / 100;
}

/** Opens connections spread over 10 source addresses, `perConn` runs on each once connected. */
async function connections(
  port: number,
  n: number,
  perConn: (s: net.Socket) => void,
): Promise<{ sockets: net.Socket[]; closedByServer: () => number }> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: `127.0.1.${(i % 10) + 1}` });
    s.on("error", () => {});
    // Read (and drop) whatever seald sends, so that its close is seen.
    s.resume();
    s.on("connect", () => perConn(s));
    s.on("close", () => closed++);
    sockets.push(s);
    if (i % 100 === 99) await sleep(10);
  }
  return { sockets, closedByServer: () => closed };
}

type Flood = (port: number, token: string) => Promise<{ stop(): void; note(): string }>;

const floods: Record<string, Flood> = {
  async silent(port) {
    const c = await connections(port, size, () => {});
    return {
      stop: () => {
        for (const s of c.sockets) s.destroy();
      },
      note: () => `${size} opened, ${c.closedByServer()} closed by seald`,
    };
  },
  async preface(port) {
    const c = await connections(port, size, (s) => s.write(PREFACE));
    return {
      stop: () => {
        for (const s of c.sockets) s.destroy();
      },
      note: () => `${size} opened, ${c.closedByServer()} closed by seald`,
    };
  },
  async slowheaders(port) {
    const n = Math.min(size, 1000);
    const c = await connections(port, n, (s) => s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    const drip = setInterval(() => {
      for (const s of c.sockets) if (!s.destroyed) s.write("X");
    }, 2000);
    return {
      stop: () => {
        clearInterval(drip);
        for (const s of c.sockets) s.destroy();
      },
      note: () => `${n} opened, ${c.closedByServer()} closed by seald`,
    };
  },
  async zerowindow(port, token) {
    const sessions: http2.ClientHttp2Session[] = [];
    let responses = 0;
    let resets = 0;
    // ListSecretsRequest{namespace: "flood"}, length-prefixed.
    const msg = Buffer.from([0x0a, 0x05, ...Buffer.from("flood")]);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
    for (let c = 0; c < 4; c++) {
      const session = http2.connect(`http://127.0.0.1:${port}`, {
        settings: { initialWindowSize: 0 },
        peerMaxConcurrentStreams: streamsPerConn,
        maxSessionMemory: 1000,
      });
      session.on("error", () => {});
      sessions.push(session);
      for (let i = 0; i < streamsPerConn; i++) {
        const req = session.request({
          ":method": "POST",
          ":path": "/secrets.v1.SecretsService/ListSecrets",
          "content-type": "application/grpc",
          te: "trailers",
          authorization: `Bearer ${token}`,
        });
        req.on("response", () => responses++);
        req.on("error", () => {});
        req.on("close", () => {
          if (req.rstCode) resets++;
        });
        req.end(frame);
        if (i % 200 === 199) await sleep(5);
      }
    }
    return {
      stop: () => {
        for (const s of sessions) s.destroy();
      },
      note: () =>
        `4 connections x ${streamsPerConn} streams, ${responses} answered (headers), ${resets} reset, ${sessions.filter((s) => s.destroyed || s.closed).length} connections closed`,
    };
  },
};

async function main(): Promise<void> {
  const { child, port, dir } = await startSeald();
  const pid = child.pid ?? 0;
  try {
    const token = await readerToken(port);
    console.log(`seald ${checkout} on 127.0.0.1:${port}, pid ${pid}`);
    await victim(port, 3000); // warm-up: JIT and connection pool
    const base = await victim(port, 5000);
    console.log(
      JSON.stringify({
        flood: "none",
        rssMiB: rssMiB(pid),
        held: established(port),
        p50: pct(base.latencies, 50),
        p99: pct(base.latencies, 99),
        calls: base.latencies.length,
        failures: base.failures,
        probes: `${base.probesOk} ok, ${base.probesFailed} failed`,
      }),
    );
    for (const name of Object.keys(floods)) {
      if (args.only && !args.only.split(",").includes(name)) continue;
      const flood = await (floods[name] as Flood)(port, token);
      await sleep(1000);
      let maxHeld = 0;
      let maxRss = 0;
      const sampler = setInterval(() => {
        maxHeld = Math.max(maxHeld, established(port));
        maxRss = Math.max(maxRss, rssMiB(pid));
      }, 500);
      const during = await victim(port, holdMs);
      clearInterval(sampler);
      const heldAtEnd = established(port);
      console.log(
        JSON.stringify({
          flood: name,
          maxHeld,
          heldAtEnd,
          maxRssMiB: maxRss,
          p50: pct(during.latencies, 50),
          p99: pct(during.latencies, 99),
          calls: during.latencies.length,
          failures: during.failures,
          probes: `${during.probesOk} ok, ${during.probesFailed} failed`,
          note: flood.note(),
        }),
      );
      flood.stop();
      await sleep(3000);
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
