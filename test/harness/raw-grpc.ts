/**
 * A raw HTTP/2 gRPC client for tests that send what no real client would: random bytes, frames
 * whose length lies, or requests that never end.
 */
import * as http2 from "node:http2";

/** What a raw gRPC call got back. */
export interface RawAnswer {
  headers: http2.IncomingHttpHeaders;
  data: Buffer;
  trailers: http2.IncomingHttpHeaders;
  /** The RST_STREAM code the stream closed with (0 when it ended normally). */
  rstCode: number;
  ms: number;
}

/**
 * Sends one gRPC request over h2c with the given headers and body (undefined: send nothing and
 * keep the request open) and collects the answer, whatever the server makes of the bytes.
 */
export function rawGrpc(
  url: string,
  path: string,
  body: Buffer | undefined,
  headers: http2.OutgoingHttpHeaders = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const session = http2.connect(url);
    session.on("error", reject);
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      responseHeaders = h;
    });
    req.on("trailers", (t) => {
      trailers = t;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", () => {});
    req.on("close", () => {
      session.close();
      resolve({
        headers: responseHeaders,
        data: Buffer.concat(chunks),
        trailers,
        rstCode: req.rstCode ?? 0,
        ms: Date.now() - started,
      });
    });
    // undefined: send nothing and keep the request open (the server must answer anyway).
    if (body) req.end(body);
  });
}

/** A gRPC length-prefixed message; the declared length and flags may lie, for bad-input tests. */
export function grpcFrame(payload: Uint8Array, declaredLength = payload.length, flags = 0): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([header, payload]);
}
