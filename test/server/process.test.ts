import * as http from "node:http";
import * as net from "node:net";
import { describe, expect, it } from "vitest";
import { mongoUri, spawnSeald, tempDir, testMasterKeys, uniqueDatabase } from "../harness/seald.js";

function listeningUrl(line: string): string {
  return `http://${JSON.parse(line).address as string}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the seald process", () => {
  it("finishes an in-flight call after SIGTERM, refuses new connections, and exits 0", async () => {
    const p = spawnSeald([], {
      SEALD_LISTEN: "127.0.0.1:0",
      SEALD_MONGODB_URI: mongoUri(),
      SEALD_MASTER_KEYS: testMasterKeys,
      SEALD_DATABASE: uniqueDatabase("shutdown"),
      SEALD_SHUTDOWN_TIMEOUT: "5",
    });
    const url = new URL(listeningUrl(await p.waitForLog(/"msg":"listening"/)));
    await p.waitForLog(/"msg":"ready to serve"/);

    // A Connect JSON call whose body is still arriving when the signal comes.
    const body = JSON.stringify({ service: "" });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: "/grpc.health.v1.Health/Check",
          method: "POST",
          headers: { "content-type": "application/json", "content-length": body.length },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8").on("data", (s: string) => {
            text += s;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on("error", reject);
      req.write(body.slice(0, 5));
      setTimeout(() => {
        p.child.kill("SIGTERM");
        setTimeout(() => req.end(body.slice(5)), 500);
      }, 200);
    });

    await p.waitForLog(/"msg":"shutting down"/);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(Number(url.port), url.hostname);
      s.once("connect", () => {
        s.destroy();
        resolve(false);
      });
      s.once("error", () => resolve(true));
    });
    expect(refused).toBe(true);

    const res = await response;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: "SERVING" });
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toContain('"msg":"stopped"');
  });

  it("runs on the embedded database by default, stops it on exit, and finds its data on the next start", async () => {
    const dataDir = tempDir("seald-embedded-");
    const start = async () => {
      const p = spawnSeald([], { SEALD_LISTEN: "127.0.0.1:0", SEALD_DATA_DIR: dataDir });
      const using = JSON.parse(await p.waitForLog(/"msg":"using the embedded database"/));
      expect(using.dataDir).toBe(`${dataDir}/db`);
      const ready = JSON.parse(await p.waitForLog(/"msg":"database ready"/, 30_000));
      const url = listeningUrl(await p.waitForLog(/"msg":"listening"/));
      await p.waitForLog(/"msg":"ready to serve"/);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      p.child.kill("SIGINT");
      expect(await p.exited).toBe(0);
      expect(isAlive(using.pid)).toBe(false);
      return ready.createdAt as string;
    };
    const first = await start();
    const second = await start();
    expect(second).toBe(first);
  });
});
