/**
 * The HTTP/2 buffer bound cuts clients that do not read, never one that reads slowly: a response
 * larger than the bound, taken a chunk at a time by a client with a small window, arrives whole.
 */
import http2 from "node:http2";
import { describe, expect, it } from "vitest";
import { defaultEdgeLimits } from "../../src/config.js";
import { listen } from "../../src/server/listener.js";

describe("the HTTP/2 buffer bound", () => {
  it("lets a slowly reading client take a response larger than the bound", async () => {
    const limits = { ...defaultEdgeLimits(), maxBufferedBytes: 1024 * 1024 };
    const body = Buffer.alloc(3 * 1024 * 1024, 97);
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      limits,
      handler: (_req, res) => res.end(body),
    });
    const session = http2.connect(`http://127.0.0.1:${listener.address.port}`);
    try {
      const got = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ":path": "/large" });
        let n = 0;
        // About 64 KiB every 20 ms: some 3 s for the whole, so several sweeps see it over the bound.
        req.on("data", (chunk: Buffer) => {
          n += chunk.length;
          req.pause();
          setTimeout(() => req.resume(), 20);
        });
        req.on("end", () => resolve(n));
        req.on("error", reject);
        req.end();
      });
      expect(got).toBe(body.length);
      expect(listener.counters.cut).toBe(0);
    } finally {
      session.destroy();
      await listener.close(100);
    }
  }, 30_000);
});
