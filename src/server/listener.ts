/**
 * One port for every protocol. A plain net server accepts every connection, applies the
 * connection limits, and hands the socket on. Cleartext: it reads the first bytes and hands the
 * socket to an HTTP/2 server when they are the HTTP/2 connection preface (prior knowledge, as
 * grpc-js, grpcurl -plaintext and buf curl --http2-prior-knowledge speak), and to an HTTP/1.1
 * server otherwise. TLS: to one secure HTTP/2 server that also accepts HTTP/1.1, chosen by ALPN.
 *
 * Every resource a client can hold here is bounded (EdgeLimits, the README's "Limits"):
 * - time: the first byte (cleartext) or the TLS handshake; a whole request head, counted from
 *   the connection's start (HTTP/2: the first stream); a whole request; keep-alive idle; HTTP/2
 *   idle without streams; a response the client does not read (the send timeout);
 * - connections, in total and per remote address: above the per-address bound a connection is
 *   closed at once; at the total bound the oldest connection that has not yet completed a request
 *   head makes room (a silent flood cannot lock probes and real clients out), and when every
 *   connection has, the new one is closed;
 * - HTTP/2 streams per connection (advertised in SETTINGS and enforced) and the response bytes a
 *   connection may leave unread.
 *
 * Node's HTTP/1.1 server enforces headersTimeout and requestTimeout with a checker that starts
 * when the server emits 'listening'. These servers never listen (the net server does), so the
 * checker is started by emitting that event, which runs Node's own tracking (the same code a
 * listening server runs, and http2's secure server for its HTTP/1.1 connections).
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import type { StreamHandler } from "./grpc-fast.js";

/** The bounds on what a client can hold at the one port (see the README's "Limits"). */
export interface EdgeLimits {
  /** A cleartext connection must send its first byte within this. */
  readonly firstByteTimeoutMs: number;
  /** A TLS connection must finish its handshake within this. */
  readonly tlsHandshakeTimeoutMs: number;
  /** A new connection must have sent a whole request head (HTTP/2: opened a stream) within this. */
  readonly headersTimeoutMs: number;
  /** A request, body included, must have arrived whole within this. */
  readonly requestTimeoutMs: number;
  /** An HTTP/1.1 connection is closed after this long idle between requests. */
  readonly keepAliveTimeoutMs: number;
  /** An HTTP/2 connection is closed (GOAWAY) after this long without an open stream. */
  readonly http2IdleTimeoutMs: number;
  /** A response that makes no progress towards the client for this long is cut off. */
  readonly sendTimeoutMs: number;
  /** Connections open at once, in total. */
  readonly maxConnections: number;
  /** Connections open at once from one remote address. */
  readonly maxConnectionsPerAddress: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised (and enforced) on every HTTP/2 connection. */
  readonly http2MaxStreams: number;
  /** Response bytes one connection may have waiting for the client before it is cut off. */
  readonly maxBufferedBytes: number;
  /** Authenticated calls in flight at once for one principal. */
  readonly maxCallsPerPrincipal: number;
  /** Authenticated calls in flight at once from one remote address. */
  readonly maxCallsPerAddress: number;
}

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly limits: EdgeLimits;
  readonly handler: RequestHandler;
  /**
   * Sees every HTTP/2 stream first and may answer it itself; a stream it declines goes to
   * handler through Node's compatibility layer.
   */
  readonly stream?: StreamHandler | undefined;
}

/** What the edge did to connections and streams, for tests and metrics. */
export interface EdgeCounters {
  /** Connections open now. */
  open: number;
  /** Connections closed at once because their address, or the total, was at its bound. */
  refused: number;
  /** Connections closed to make room under the total bound. */
  evicted: number;
  /** Connections or streams cut off for a timeout, unread responses or too many streams. */
  cut: number;
}

/** A bound port serving requests. */
export interface Listener {
  readonly address: net.AddressInfo;
  readonly counters: Readonly<EdgeCounters>;
  /**
   * Stops accepting connections, lets in-flight requests finish for at most timeoutMs, then
   * closes every connection that is left.
   */
  close(timeoutMs: number): Promise<void>;
}

// The first bytes of the HTTP/2 connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"). No
// HTTP/1.1 request starts with "PRI ", so the first chunk decides even when it is short.
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
// How long a closed (GOAWAY) idle HTTP/2 connection has to go before it is destroyed.
const goawayGraceMs = 1000;

/** One accepted TCP connection. */
interface Conn {
  readonly socket: net.Socket;
  readonly address: string;
  /** Set once it completed a request head (HTTP/2: opened a stream): no longer evictable. */
  established: boolean;
  /** The stream responses are written to: the socket, or the TLS socket over it. */
  wire: Duplex & { readonly writableLength: number };
}

/** One HTTP/2 session's streams and its idle timer. */
interface SessionState {
  readonly streams: Set<http2.ServerHttp2Stream>;
  idle: NodeJS.Timeout | undefined;
  /** Its buffered response bytes at the last sweep. */
  buffered: number;
  /** Bytes its socket had sent by the last sweep: what the client took. */
  sent: number;
}

/** Per stream: when its request must be whole, and when its buffered output last shrank or was empty. */
interface StreamState {
  /** Date.now() by which the request must have arrived whole; 0 once it has (or had no body). */
  requestBy: number;
  progressAt: number;
  buffered: number;
}

/** Binds host:port and serves HTTP/1.1 and HTTP/2 (h2c, or TLS with ALPN) on it. */
export async function listen(options: ListenOptions): Promise<Listener> {
  const limits = options.limits;
  const conns = new Map<string, Conn>();
  const perAddress = new Map<string, number>();
  const sessions = new Map<http2.Http2Session, SessionState>();
  const streamStates = new WeakMap<http2.ServerHttp2Stream, StreamState>();
  const counters: EdgeCounters = { open: 0, refused: 0, evicted: 0, cut: 0 };
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;

  const keyOf = (socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }) =>
    `${socket.remoteAddress ?? ""}:${socket.remotePort ?? 0}`;
  const establish = (socket: Duplex | undefined) => {
    if (!socket) return;
    const conn = conns.get(keyOf(socket as net.Socket));
    if (conn) conn.established = true;
  };
  const forget = (key: string, conn: Conn) => {
    if (conns.get(key) !== conn) return;
    conns.delete(key);
    counters.open--;
    const n = (perAddress.get(conn.address) ?? 1) - 1;
    if (n <= 0) perAddress.delete(conn.address);
    else perAddress.set(conn.address, n);
  };
  /** Counts a new connection, or closes it (false) when it is over a bound. */
  const admit = (socket: net.Socket): boolean => {
    const address = socket.remoteAddress ?? "";
    if ((perAddress.get(address) ?? 0) >= limits.maxConnectionsPerAddress) {
      counters.refused++;
      socket.destroy();
      return false;
    }
    if (counters.open >= limits.maxConnections) {
      let victim: [string, Conn] | undefined;
      for (const entry of conns) {
        if (!entry[1].established) {
          victim = entry;
          break;
        }
      }
      if (!victim) {
        counters.refused++;
        socket.destroy();
        return false;
      }
      counters.evicted++;
      forget(victim[0], victim[1]);
      victim[1].socket.destroy();
    }
    const key = keyOf(socket);
    // A port reused before the old connection's 'close' ran: that one is gone, uncount it.
    const old = conns.get(key);
    if (old) forget(key, old);
    const conn: Conn = { socket, address, established: false, wire: socket };
    conns.set(key, conn);
    counters.open++;
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    socket.once("close", () => forget(key, conn));
    return true;
  };

  const handler: RequestHandler = (req, res) => {
    inFlight++;
    establish(req.socket);
    // During shutdown, tell HTTP/1.1 clients not to reuse the connection.
    if (draining && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    res.once("close", () => {
      inFlight--;
      if (draining && inFlight === 0) drained?.();
    });
    // An HTTP/2 response sent before its request body was read (a 405, a 413) needs nothing
    // here: Node's compatibility layer then resets the stream with NO_ERROR once the response
    // is written, as Go's server does (RFC 9113 8.1), and the request bound covers the rest.
    options.handler(req, res);
  };

  const onStreamClose = () => {
    inFlight--;
    if (draining && inFlight === 0) drained?.();
  };

  const cut = (session: http2.Http2Session) => {
    counters.cut++;
    session.destroy(undefined, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  };
  const idleAfter = (session: http2.Http2Session, state: SessionState, ms: number) => {
    if (state.idle !== undefined) clearTimeout(state.idle);
    state.idle = setTimeout(() => {
      state.idle = undefined;
      if (state.streams.size > 0 || session.destroyed) return;
      counters.cut++;
      // GOAWAY: the client opens a new connection for its next call.
      session.close();
      setTimeout(() => session.destroy(), goawayGraceMs).unref();
    }, ms);
    state.idle.unref();
  };
  const onSession = (session: http2.Http2Session) => {
    const state: SessionState = {
      streams: new Set(),
      idle: undefined,
      buffered: 0,
      sent: 0,
    };
    sessions.set(session, state);
    // Until its first stream a connection is held to the request-head bound, as HTTP/1.1 is.
    idleAfter(session, state, limits.headersTimeoutMs);
    session.once("close", () => {
      if (state.idle !== undefined) clearTimeout(state.idle);
      sessions.delete(session);
    });
    // A stream error or a session error is the client's; 'close' follows.
    session.on("error", () => {});
  };

  /** Every HTTP/2 stream starts here: count it, bound it, and give it to the lean path or compat. */
  const onStream = (
    server: http2.Http2Server | http2.Http2SecureServer,
    compat: (...args: unknown[]) => void,
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    rest: unknown[],
  ) => {
    const session = stream.session;
    const state = session ? sessions.get(session) : undefined;
    if (!session || !state) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    // nghttp2 refuses streams over the advertised SETTINGS_MAX_CONCURRENT_STREAMS once the
    // client has acknowledged them; this also holds for streams opened before the ack.
    if (state.streams.size >= limits.http2MaxStreams) {
      counters.cut++;
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    state.streams.add(stream);
    if (state.idle !== undefined) {
      clearTimeout(state.idle);
      state.idle = undefined;
    }
    establish(session.socket);
    const now = Date.now();
    // The request bound is checked by the sweep: no timer per stream on the hot path.
    const requestBy = stream.endAfterHeaders ? 0 : now + limits.requestTimeoutMs;
    streamStates.set(stream, { requestBy, progressAt: now, buffered: 0 });
    stream.once("close", () => {
      state.streams.delete(stream);
      if (state.streams.size === 0 && !session.destroyed) {
        idleAfter(session, state, limits.http2IdleTimeoutMs);
      }
    });
    const fast = options.stream;
    if (fast?.(stream, headers)) {
      inFlight++;
      stream.on("close", onStreamClose);
      return;
    }
    compat.call(server, stream, headers, ...rest);
  };

  // http2.createServer(handler) puts Node's compatibility layer (Http2ServerRequest/Response)
  // on the server as a 'stream' listener. Take that listener off and call it, with the same
  // arguments, for every stream the lean path declines: only public EventEmitter API, and the
  // compatibility layer sees exactly the streams it would have seen, minus those taken.
  const takeStreams = (server: http2.Http2Server | http2.Http2SecureServer) => {
    const [compat, ...others] = server.listeners("stream") as ((...args: unknown[]) => void)[];
    if (!compat || others.length > 0) {
      throw new Error("expected exactly one 'stream' listener (the compatibility layer)");
    }
    server.removeListener("stream", compat);
    server.on("stream", (stream, headers, _flags, ...rest) =>
      onStream(server, compat, stream, headers, [_flags, ...rest]),
    );
  };

  // Bounds the response bytes each HTTP/2 connection leaves unread, and cuts off streams and
  // connections whose buffered output makes no progress for the send timeout. A sweep rather
  // than per-write hooks: neither the lean path nor the compatibility layer needs to know, and
  // it costs one pass over the open streams a second.
  const sweep = () => {
    const now = Date.now();
    for (const [session, state] of sessions) {
      if (session.destroyed) continue;
      let total = 0;
      for (const stream of state.streams) {
        const size = stream.bufferSize ?? 0;
        total += size;
        const own = streamStates.get(stream);
        if (!own) continue;
        if (own.requestBy !== 0 && now >= own.requestBy) {
          own.requestBy = 0;
          if (requestIncomplete(stream)) {
            counters.cut++;
            stream.close(http2.constants.NGHTTP2_CANCEL);
            continue;
          }
        }
        if (size === 0 || size < own.buffered) own.progressAt = now;
        own.buffered = size;
        if (now - own.progressAt >= limits.sendTimeoutMs) {
          counters.cut++;
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }
      }
      total += session.socket?.writableLength ?? 0;
      // A large response written at once stays counted whole until its last byte leaves, so
      // progress is what the socket sent, not what is still buffered.
      const sent = session.socket?.bytesWritten ?? 0;
      // Over the bound at this look and the last, and not one byte taken between them: the
      // client is not reading. A client that reads is never cut, however large its responses
      // (each of its bounded number of streams holds one response at most).
      if (
        total > limits.maxBufferedBytes &&
        state.buffered > limits.maxBufferedBytes &&
        sent === state.sent
      ) {
        cut(session);
        continue;
      }
      state.buffered = total;
      state.sent = sent;
    }
    // HTTP/1.1: Node pauses reading while a response waits, so only the stall needs a bound.
    for (const conn of conns.values()) {
      const socket = conn.wire as Duplex & { [kProgress]?: [number, number] };
      const size = socket.writableLength;
      const last = socket[kProgress];
      if (size === 0 || !last || size < last[1]) socket[kProgress] = [now, size];
      else if (now - last[0] >= limits.sendTimeoutMs) {
        counters.cut++;
        socket.destroy();
      }
    }
  };
  const sweepMs = Math.min(limits.sendTimeoutMs, limits.requestTimeoutMs) / 4;
  const sweeper = setInterval(sweep, Math.min(1000, Math.max(50, sweepMs)));
  sweeper.unref();

  const h1Timeouts = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node's checker looks this often; a quarter of the head bound keeps it within 25%.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, limits.headersTimeoutMs / 4)),
  };
  const h2Settings = { maxConcurrentStreams: limits.http2MaxStreams };
  const server = net.createServer();
  const servers: (http.Server | http2.Http2SecureServer)[] = [];
  let h2: http2.Http2Server | http2.Http2SecureServer;
  if (options.tls) {
    const secure = http2.createSecureServer(
      {
        cert: options.tls.cert,
        key: options.tls.key,
        allowHTTP1: true,
        ALPNProtocols: ["h2", "http/1.1"],
        handshakeTimeout: limits.tlsHandshakeTimeoutMs,
        settings: h2Settings,
      },
      handler,
    );
    // The HTTP/1.1 connections of the secure server use the same checker as http.Server.
    Object.assign(secure, h1Timeouts);
    // A failed or timed-out handshake: the socket is destroyed by tls; nothing to answer.
    secure.on("tlsClientError", () => {});
    // Encrypted output queues in the TLS socket, not in the TCP socket under it.
    secure.on("secureConnection", (tlsSocket: net.Socket) => {
      const conn = conns.get(keyOf(tlsSocket));
      if (conn) conn.wire = tlsSocket;
    });
    h2 = secure;
    servers.push(secure);
    server.on("connection", (socket) => {
      if (!admit(socket)) return;
      secure.emit("connection", socket);
    });
  } else {
    const h1 = http.createServer(h1Timeouts, handler);
    h2 = http2.createServer({ settings: h2Settings }, handler);
    servers.push(h1);
    const h2c = h2;
    server.on("connection", (socket) => {
      if (!admit(socket)) return;
      const firstByte = setTimeout(() => {
        counters.cut++;
        socket.destroy();
      }, limits.firstByteTimeoutMs);
      firstByte.unref();
      socket.once("close", () => clearTimeout(firstByte));
      // Read until the first bytes decide: they differ from the preface (HTTP/1.1), or its
      // first four, "PRI ", have come (HTTP/2; no HTTP/1.1 method is "PRI"). A first segment of
      // just "P" or "PU" could still be either.
      let seen = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        seen = Buffer.concat([seen, chunk]);
        const n = Math.min(seen.length, PREFACE.length);
        const matches = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
        if (matches && n < 4) return;
        clearTimeout(firstByte);
        socket.removeListener("data", onData);
        socket.pause();
        socket.unshift(seen);
        if (matches) {
          // The HTTP/2 session feeds what is already buffered to nghttp2 on its own; resuming
          // the socket here would emit the chunk into the void.
          h2c.emit("connection", socket);
        } else {
          // The HTTP/1.1 server attaches a data listener and needs the flow restarted.
          h1.emit("connection", socket);
          socket.resume();
        }
      };
      socket.on("data", onData);
    });
  }
  h2.on("session", onSession);
  takeStreams(h2);
  // Starts Node's headers/request timeout checker on servers that never listen themselves.
  for (const s of servers) s.emit("listening");

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });

  return {
    address: server.address() as net.AddressInfo,
    counters,
    async close(timeoutMs) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions.keys()) session.close();
      // close() on a server that never listened still stops its timeout checker and closes its
      // idle keep-alive connections; the "not running" error it reports is expected.
      for (const s of servers) s.close(() => {});
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          setTimeout(resolve, timeoutMs).unref();
        });
      }
      clearInterval(sweeper);
      for (const session of sessions.keys()) session.destroy();
      for (const conn of conns.values()) conn.socket.destroy();
      await closed;
    },
  };
}

const kProgress = Symbol("send progress");

/**
 * Whether an HTTP/2 stream's request has yet to arrive whole (the client has not half-closed
 * it). The stream's own state says so even when no one has read the body.
 */
function requestIncomplete(stream: http2.ServerHttp2Stream): boolean {
  if (stream.closed || stream.destroyed) return false;
  const s = stream.state?.state;
  const { NGHTTP2_STREAM_STATE_HALF_CLOSED_REMOTE, NGHTTP2_STREAM_STATE_CLOSED } = http2.constants;
  return s !== NGHTTP2_STREAM_STATE_HALF_CLOSED_REMOTE && s !== NGHTTP2_STREAM_STATE_CLOSED;
}
