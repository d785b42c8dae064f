/**
 * The edge's bounds, held against real sockets: timeouts that close what a client leaves
 * hanging, connection caps that keep probes and established clients working, and the HTTP/2
 * stream, buffer and in-flight bounds. Each server runs with short bounds so that every case
 * finishes in a second or two.
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Seald } from "../../src/app.js";
import { defaultEdgeLimits } from "../../src/config.js";
import type { EdgeLimits } from "../../src/server/listener.js";
import { grpcFrame } from "../harness/raw-grpc.js";
import { adminToken, startTestSeald } from "../harness/seald.js";

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

function limits(overrides: Partial<EdgeLimits>): EdgeLimits {
  return { ...defaultEdgeLimits(), ...overrides };
}

function portOf(seald: Seald): number {
  return Number(seald.address.split(":").pop());
}

/** Opens a TCP connection (optionally from another loopback address) and waits until it is up. */
function connect(port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: "127.0.0.1",
      port,
      ...(localAddress ? { localAddress } : {}),
    });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Milliseconds until the server closes the socket (what it sent meanwhile), or -1 past the bound. */
function closedWithin(
  socket: net.Socket,
  boundMs: number,
): Promise<{ ms: number; received: string }> {
  const started = Date.now();
  let received = "";
  socket.on("data", (d: Buffer) => {
    received += d.toString("latin1");
  });
  socket.on("error", () => {});
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ms: -1, received });
    }, boundMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve({ ms: Date.now() - started, received });
    });
  });
}

/** GET over a fresh HTTP/1.1 connection from the given local address. */
function get(port: number, path: string, localAddress?: string, agent?: http.Agent) {
  return new Promise<number>((resolve, reject) => {
    const req = http.get(
      { host: "127.0.0.1", port, path, ...(localAddress ? { localAddress } : {}), agent },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.setTimeout(3000, () => req.destroy(new Error("timed out")));
  });
}

describe("connection timeouts", () => {
  let seald: Seald;
  beforeAll(async () => {
    seald = await startTestSeald({
      edge: limits({
        firstByteTimeoutMs: 300,
        headersTimeoutMs: 600,
        requestTimeoutMs: 1000,
        keepAliveTimeoutMs: 400,
        http2IdleTimeoutMs: 400,
      }),
    });
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("closes a connection that sends nothing once the first-byte bound passes", async () => {
    const { ms } = await closedWithin(await connect(portOf(seald)), 3000);
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(1500);
  });

  it("closes an HTTP/1.1 client that sends its headers a byte at a time (408)", async () => {
    const socket = await connect(portOf(seald));
    const head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let i = 0;
    const drip = setInterval(() => {
      if (i < head.length && !socket.destroyed) socket.write(head[i++] as string);
    }, 100);
    const { ms, received } = await closedWithin(socket, 4000);
    clearInterval(drip);
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(2500);
    expect(received).toMatch(/^HTTP\/1\.1 408/);
  });

  it("closes an HTTP/1.1 request whose body does not arrive whole within the request bound", async () => {
    const socket = await connect(portOf(seald));
    socket.write(
      "POST /api/enterprise/secrets/v1/namespaces/a/secrets/b HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
    );
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write(" ");
    }, 100);
    const { ms } = await closedWithin(socket, 4000);
    clearInterval(drip);
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(2500);
  });

  it("closes an idle HTTP/1.1 keep-alive connection", async () => {
    const socket = await connect(portOf(seald));
    const closed = closedWithin(socket, 3000);
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const { ms, received } = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    // Node arms the keep-alive timer once the response is flushed; allow it a second of slack.
    expect(ms).toBeGreaterThan(300);
    expect(ms).toBeLessThan(2500);
  });

  it("closes an HTTP/2 connection that sends only the preface", async () => {
    const socket = await connect(portOf(seald));
    socket.write(PREFACE);
    const { ms } = await closedWithin(socket, 3000);
    expect(ms).toBeGreaterThan(400);
    expect(ms).toBeLessThan(2000);
  });

  it("sends GOAWAY to an HTTP/2 connection idle without streams", async () => {
    const session = http2.connect(seald.url);
    session.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      const req = session.request({ ":path": "/healthz" });
      req.on("response", () => req.resume());
      req.on("end", resolve);
      req.on("error", reject);
      req.end();
    });
    const started = Date.now();
    const goaway = await new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(-1), 3000);
      session.once("goaway", () => {
        clearTimeout(timer);
        resolve(Date.now() - started);
      });
    });
    session.destroy();
    expect(goaway).toBeGreaterThan(200);
    expect(goaway).toBeLessThan(1500);
  });

  it("resets an HTTP/2 stream whose request body does not arrive whole", async () => {
    const session = http2.connect(seald.url);
    session.on("error", () => {});
    try {
      const started = Date.now();
      const rst = await new Promise<{ code: number; ms: number }>((resolve) => {
        // Authenticated, so that the route waits for the body instead of answering 401 first.
        const req = session.request({
          ":method": "PUT",
          ":path": "/api/enterprise/secrets/v1/namespaces/a/secrets/b",
          "content-type": "application/json",
          authorization: `Bearer ${adminToken}`,
        });
        req.write("{");
        req.on("error", () => {});
        req.resume();
        const timer = setTimeout(() => resolve({ code: -1, ms: -1 }), 4000);
        req.on("close", () => {
          clearTimeout(timer);
          resolve({ code: req.rstCode ?? 0, ms: Date.now() - started });
        });
      });
      expect(rst.ms).toBeGreaterThan(800);
      expect(rst.ms).toBeLessThan(2500);
      expect(rst.code).toBe(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
    }
  });
});

describe("the TLS handshake bound", () => {
  let seald: Seald;
  beforeAll(async () => {
    const pems = await generate([{ name: "commonName", value: "localhost" }], { keySize: 2048 });
    seald = await startTestSeald({
      tls: { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) },
      edge: limits({ tlsHandshakeTimeoutMs: 400, headersTimeoutMs: 600 }),
    });
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("closes a connection that starts no TLS handshake", async () => {
    const { ms } = await closedWithin(await connect(portOf(seald)), 3000);
    expect(ms).toBeGreaterThan(300);
    expect(ms).toBeLessThan(1500);
  });

  it("closes a slow-header HTTP/1.1 client over TLS (408)", async () => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port: portOf(seald),
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"],
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write("X");
    }, 100);
    const { ms, received } = await closedWithin(socket as unknown as net.Socket, 4000);
    clearInterval(drip);
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(2500);
    expect(received).toMatch(/^HTTP\/1\.1 408/);
  });

  it("still completes a real handshake", async () => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port: portOf(seald),
      rejectUnauthorized: false,
      ALPNProtocols: ["h2"],
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    expect(socket.alpnProtocol).toBe("h2");
    socket.destroy();
  });
});

describe("connection limits", () => {
  let seald: Seald;
  beforeAll(async () => {
    seald = await startTestSeald({
      edge: limits({ maxConnections: 8, maxConnectionsPerAddress: 4, firstByteTimeoutMs: 20_000 }),
    });
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("closes a connection over the per-address bound at once; other addresses still connect", async () => {
    const port = portOf(seald);
    const held = await Promise.all([1, 2, 3, 4].map(() => connect(port, "127.0.0.2")));
    try {
      const { ms } = await closedWithin(await connect(port, "127.0.0.2"), 2000);
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(500);
      expect(await get(port, "/healthz", "127.0.0.3")).toBe(200);
      const metrics = await (await fetch(`${seald.url}/metrics`)).text();
      expect(metrics).toMatch(/^seald_edge_closed_total\{reason="refused"\} [1-9]/m);
      expect(metrics).toMatch(/^seald_connections_open [5-9]/m);
    } finally {
      for (const s of held) s.destroy();
    }
  });

  it("keeps established clients and probes working when silent connections fill the total", async () => {
    const port = portOf(seald);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // An established client: a keep-alive connection that has completed a request.
      expect(await get(port, "/healthz", "127.0.0.10", agent)).toBe(200);
      // Silent connections from other addresses take the rest and more.
      const flood: net.Socket[] = [];
      for (let a = 11; a < 15; a++) {
        for (let i = 0; i < 4; i++) {
          const s = await connect(port, `127.0.0.${a}`);
          s.on("error", () => {});
          flood.push(s);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
      // The established connection still answers, on the same socket.
      expect(await get(port, "/readyz", "127.0.0.10", agent)).toBe(200);
      // A probe on a new connection gets in: the oldest silent connection made room.
      expect(await get(port, "/healthz", "127.0.0.20")).toBe(200);
      expect(flood.some((s) => s.destroyed || s.readableEnded)).toBe(true);
      for (const s of flood) s.destroy();
    } finally {
      agent.destroy();
    }
  });
});

describe("HTTP/2 streams, unread responses and calls in flight", () => {
  let seald: Seald;
  beforeAll(async () => {
    seald = await startTestSeald({
      edge: limits({
        http2MaxStreams: 50,
        maxBufferedBytes: 64 * 1024,
        sendTimeoutMs: 800,
        maxCallsPerPrincipal: 3,
      }),
    });
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("advertises SETTINGS_MAX_CONCURRENT_STREAMS", async () => {
    const session = http2.connect(seald.url);
    try {
      const settings = await new Promise<http2.Settings>((resolve) =>
        session.once("remoteSettings", resolve),
      );
      expect(settings.maxConcurrentStreams).toBe(50);
    } finally {
      session.destroy();
    }
  });

  it("cuts off a connection that leaves more than the bound of responses unread", async () => {
    // A zero receive window: the server can send headers but no body bytes.
    const session = http2.connect(seald.url, { settings: { initialWindowSize: 0 } });
    session.on("error", () => {});
    const closed = new Promise<number>((resolve) => {
      const started = Date.now();
      const timer = setTimeout(() => resolve(-1), 5000);
      session.once("close", () => {
        clearTimeout(timer);
        resolve(Date.now() - started);
      });
    });
    // Each OpenAPI document is tens of KiB: a few of them exceed the 64 KiB bound.
    for (let i = 0; i < 6; i++) {
      const req = session.request({ ":path": "/openapi/sensu.json" });
      req.on("error", () => {});
      req.end();
    }
    const ms = await closed;
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(4000);
    // Everyone else is served meanwhile.
    expect((await fetch(`${seald.url}/healthz`)).status).toBe(200);
  });

  it("resets a stream whose response the client does not read within the send timeout", async () => {
    const session = http2.connect(seald.url, { settings: { initialWindowSize: 0 } });
    session.on("error", () => {});
    try {
      const started = Date.now();
      const ms = await new Promise<number>((resolve) => {
        const req = session.request({ ":path": "/healthz" });
        req.on("error", () => {});
        req.end();
        const timer = setTimeout(() => resolve(-1), 5000);
        req.on("close", () => {
          clearTimeout(timer);
          resolve(Date.now() - started);
        });
      });
      expect(ms).toBeGreaterThan(500);
      expect(ms).toBeLessThan(3000);
    } finally {
      session.destroy();
    }
  });

  it("refuses a principal's calls over its in-flight bound with ResourceExhausted and 429", async () => {
    // Three ListSecrets calls whose answers cannot be delivered (zero window) stay in flight.
    const stuck = http2.connect(seald.url, { settings: { initialWindowSize: 0 } });
    stuck.on("error", () => {});
    const body = grpcFrame(Buffer.from([0x0a, 0x01, 0x61])); // ListSecretsRequest{namespace:"a"}
    const held: http2.ClientHttp2Stream[] = [];
    for (let i = 0; i < 3; i++) {
      const req = stuck.request({
        ":method": "POST",
        ":path": "/secrets.v1.SecretsService/ListSecrets",
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${adminToken}`,
      });
      req.on("error", () => {});
      req.end(body);
      held.push(req);
    }
    await Promise.all(held.map((r) => new Promise((res) => r.once("response", res))));
    try {
      // gRPC on another connection: ResourceExhausted in the trailers-only answer.
      const other = http2.connect(seald.url);
      const status = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = other.request({
          ":method": "POST",
          ":path": "/secrets.v1.SecretsService/ListSecrets",
          "content-type": "application/grpc",
          te: "trailers",
          authorization: `Bearer ${adminToken}`,
        });
        let headers: http2.IncomingHttpHeaders = {};
        req.on("response", (h) => {
          headers = h;
        });
        req.on("trailers", (t) => {
          headers = { ...headers, ...t };
        });
        req.on("end", () => resolve(headers));
        req.on("error", reject);
        req.resume();
        req.end(body);
      });
      other.destroy();
      expect(status["grpc-status"]).toBe("8");
      expect(status["retry-after"]).toBe("1");
      // REST: 429 with Retry-After.
      const rest = await fetch(`${seald.url}/api/enterprise/secrets/v1/namespaces/a/secrets`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      expect(rest.status).toBe(429);
      expect(rest.headers.get("retry-after")).toBe("1");
      // The send timeout resets the streams nobody reads, and that releases their calls.
      const codes = await Promise.all(
        held.map(
          (r) =>
            new Promise<number>((res) => {
              const timer = setTimeout(() => res(-1), 4000);
              r.once("close", () => {
                clearTimeout(timer);
                res(r.rstCode ?? 0);
              });
            }),
        ),
      );
      expect(codes).toEqual(held.map(() => http2.constants.NGHTTP2_CANCEL));
    } finally {
      stuck.destroy();
    }
    await new Promise((r) => setTimeout(r, 100));
    const again = await fetch(`${seald.url}/api/enterprise/secrets/v1/namespaces/a/secrets`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(again.status).toBe(200);
  });

  // Issue #13 saw such PATCHes never finish in 12 of 1,000 tries from a Go client; that did
  // not reproduce here (scripts/h2-early-answer, Go 1.26: 0 of 9,000 on main), and this
  // passes on main too: it guards the behaviour, Node's reset with NO_ERROR after the answer.
  it("finishes an HTTP/2 PATCH answered 405 before its body was read", async () => {
    const session = http2.connect(seald.url);
    session.on("error", () => {});
    try {
      // More than the stream's flow-control window (64 KiB): the client can finish sending only
      // if the server takes the body it does not need.
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      const results = await Promise.all(
        [0, 1, 2].map(
          () =>
            new Promise<{ status: number; ms: number }>((resolve) => {
              const started = Date.now();
              let status = 0;
              const req = session.request({
                ":method": "PATCH",
                ":path": "/readyz",
                "content-type": "application/json",
              });
              req.on("response", (h) => {
                status = Number(h[":status"]);
              });
              req.on("error", () => {});
              req.resume();
              const timer = setTimeout(() => resolve({ status, ms: -1 }), 5000);
              req.on("close", () => {
                clearTimeout(timer);
                resolve({ status, ms: Date.now() - started });
              });
              let sent = 0;
              const pump = () => {
                while (sent < 16) {
                  sent++;
                  if (!req.write(chunk)) {
                    req.once("drain", pump);
                    return;
                  }
                }
                req.end();
              };
              pump();
            }),
        ),
      );
      for (const r of results) {
        expect(r.status).toBe(405);
        expect(r.ms).toBeGreaterThanOrEqual(0);
        expect(r.ms).toBeLessThan(3000);
      }
    } finally {
      session.destroy();
    }
  });
});
