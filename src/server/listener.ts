/**
 * One port for every protocol. Cleartext: a plain net server reads the first bytes of each
 * connection and hands the socket to an HTTP/2 server when they are the HTTP/2 connection
 * preface (prior knowledge, as grpc-js, grpcurl -plaintext and buf curl --http2-prior-knowledge
 * speak), and to an HTTP/1.1 server otherwise. TLS: one secure HTTP/2 server that also accepts
 * HTTP/1.1, chosen by ALPN.
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import type { StreamHandler } from "./grpc-fast.js";

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly handler: RequestHandler;
  /**
   * Sees every HTTP/2 stream first and may answer it itself; a stream it declines goes to
   * handler through Node's compatibility layer.
   */
  readonly stream?: StreamHandler | undefined;
}

/** A bound port serving requests. */
export interface Listener {
  readonly address: net.AddressInfo;
  /**
   * Stops accepting connections, lets in-flight requests finish for at most timeoutMs, then
   * closes every connection that is left.
   */
  close(timeoutMs: number): Promise<void>;
}

// The first bytes of the HTTP/2 connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"). No
// HTTP/1.1 request starts with "PRI ", so the first chunk decides even when it is short.
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Binds host:port and serves HTTP/1.1 and HTTP/2 (h2c, or TLS with ALPN) on it. */
export async function listen(options: ListenOptions): Promise<Listener> {
  const sockets = new Set<Duplex>();
  const sessions = new Set<http2.Http2Session>();
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;

  const handler: RequestHandler = (req, res) => {
    inFlight++;
    // During shutdown, tell HTTP/1.1 clients not to reuse the connection.
    if (draining && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    res.once("close", () => {
      inFlight--;
      if (draining && inFlight === 0) drained?.();
    });
    options.handler(req, res);
  };

  const onStreamClose = () => {
    inFlight--;
    if (draining && inFlight === 0) drained?.();
  };
  // http2.createServer(handler) puts Node's compatibility layer (Http2ServerRequest/Response)
  // on the server as a 'stream' listener. Take that listener off and call it, with the same
  // arguments, for every stream the lean path declines: only public EventEmitter API, and the
  // compatibility layer sees exactly the streams it would have seen, minus those taken.
  const takeStreams = (server: http2.Http2Server | http2.Http2SecureServer) => {
    const fast = options.stream;
    if (!fast) return;
    const [compat, ...others] = server.listeners("stream") as ((...args: unknown[]) => void)[];
    if (!compat || others.length > 0) {
      throw new Error("expected exactly one 'stream' listener (the compatibility layer)");
    }
    server.removeListener("stream", compat);
    server.on("stream", (stream, headers, ...rest) => {
      if (fast(stream, headers)) {
        inFlight++;
        stream.on("close", onStreamClose);
        return;
      }
      compat.call(server, stream, headers, ...rest);
    });
  };

  const track = (socket: Duplex) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  const trackSession = (session: http2.Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  };

  let server: net.Server;
  const servers: { close(): void }[] = [];
  if (options.tls) {
    const secure = http2.createSecureServer(
      {
        cert: options.tls.cert,
        key: options.tls.key,
        allowHTTP1: true,
        ALPNProtocols: ["h2", "http/1.1"],
      },
      handler,
    );
    secure.on("secureConnection", track);
    secure.on("session", trackSession);
    takeStreams(secure);
    server = secure;
  } else {
    const h1 = http.createServer(handler);
    const h2 = http2.createServer(handler);
    h2.on("session", trackSession);
    takeStreams(h2);
    servers.push(h1, h2);
    server = net.createServer((socket) => {
      track(socket);
      socket.once("data", (chunk: Buffer) => {
        socket.pause();
        socket.unshift(chunk);
        const n = Math.min(chunk.length, PREFACE.length);
        if (chunk.subarray(0, n).equals(PREFACE.subarray(0, n))) {
          // The HTTP/2 session feeds what is already buffered to nghttp2 on its own; resuming
          // the socket here would emit the chunk into the void.
          h2.emit("connection", socket);
        } else {
          // The HTTP/1.1 server attaches a data listener and needs the flow restarted.
          h1.emit("connection", socket);
          socket.resume();
        }
      });
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });

  return {
    address: server.address() as net.AddressInfo,
    async close(timeoutMs) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      if (server instanceof http.Server) server.closeIdleConnections();
      for (const s of servers) if (s instanceof http.Server) s.closeIdleConnections();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          setTimeout(resolve, timeoutMs).unref();
        });
      }
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
