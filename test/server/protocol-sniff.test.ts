/**
 * The one port tells HTTP/1.1 from HTTP/2 by the first bytes, even when they arrive one at a
 * time: "P" could begin "PRI * HTTP/2.0" or an HTTP/1.1 "PUT"/"POST"/"PATCH".
 */
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Seald } from "../../src/app.js";
import { startTestSeald, uniqueDatabase } from "../harness/seald.js";

/** Sends the request in the given pieces, a pause between them, and returns the status line. */
function sendInPieces(port: number, pieces: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d) => {
      answer += d.toString("latin1");
      if (answer.includes("\r\n")) {
        socket.destroy();
        resolve(answer.slice(0, answer.indexOf("\r\n")));
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
    socket.on("connect", async () => {
      for (const piece of pieces) {
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 30));
      }
    });
  });
}

describe("the protocol sniff", () => {
  let seald: Seald;
  beforeAll(async () => {
    seald = await startTestSeald({ database: uniqueDatabase("sniff") });
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("serves an HTTP/1.1 request whose first segment is a lone 'P' as HTTP/1.1", async () => {
    const port = Number(new URL(seald.url).port);
    for (const pieces of [
      ["P", "OST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"],
      ["P", "U", "T /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"],
    ]) {
      expect(await sendInPieces(port, pieces)).toBe("HTTP/1.1 405 Method Not Allowed");
    }
  });
});
