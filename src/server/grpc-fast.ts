/**
 * A lean path for unary gRPC calls over HTTP/2: it answers straight from the http2 'stream'
 * event, without Node's compatibility request/response objects and without connect's streaming
 * plumbing (async iterables, per-call abort wiring), which a profile showed to cost most of the
 * time of a no-op call. It calls the same service implementations through the same interceptors,
 * and writes what connect's gRPC handler writes: the same headers, one length-prefixed message,
 * and trailers built by connect's own setTrailerStatus.
 *
 * It takes only what it serves exactly as connect does: POST, content type `application/grpc`
 * or `application/grpc+proto`, the path of a unary method, and an uncompressed request. Every
 * other stream (gRPC-Web, Connect, JSON, compressed requests, streaming methods, REST, probes) is
 * declined and goes to the compatibility layer and connect untouched.
 *
 * Where it answers differently from connect, on purpose:
 * - a request message that does not decode is InvalidArgument (connect says Internal, which
 *   decode-errors.ts mends on connect's path, so seald answers alike either way);
 * - a second message in a unary request is InvalidArgument (connect says Unimplemented);
 * - a declared message length over the limit, or bytes past the one message, are answered at
 *   once without waiting for (or buffering) the rest; a client that keeps sending is reset with
 *   NO_ERROR after a grace period;
 * - when grpc-timeout passes, the call is answered DeadlineExceeded at once (connect aborts the
 *   handler's signal and waits for the implementation to give up);
 * - errors raised before the interceptors run, and a client going away, are noted as the call's
 *   outcome for the request log and metrics (connect's path logs them as HTTP status "200").
 */
import type * as http2 from "node:http2";
import { constants } from "node:http2";
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextKey,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImplSpec,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { type Compression, compressionNegotiate } from "@connectrpc/connect/protocol";
import {
  contentTypeProto,
  grpcStatusOk,
  parseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import type { RequestRecord } from "../domain/request.js";

/** Takes an HTTP/2 stream and answers it (true), or declines it (false) and leaves it untouched. */
export type StreamHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => boolean;

export interface GrpcFastOptions {
  /** The service implementations; their unary methods are served. */
  readonly services: readonly ServiceImplSpec[];
  /** The interceptors every RPC passes through, outermost first (as connect applies them). */
  readonly interceptors: readonly Interceptor[];
  /** Largest request message accepted. */
  readonly readMaxBytes: number;
  /** The compressions the connect handler accepts: they decide the response's grpc-encoding. */
  readonly acceptCompression: readonly Compression[];
  /** Aborts every call's signal when the server begins shutting down. */
  readonly shutdownSignal: AbortSignal;
  /** A new call's request record, from its headers and socket. */
  newRequest(headers: http2.IncomingHttpHeaders, remoteAddress: string): RequestRecord;
  /** The context values of a call, holding its request record. */
  contextValues(request: RequestRecord): ContextValues;
  /** Called once per call the fast path takes, when its stream closes (the request log). */
  finished(request: RequestRecord, route: string, status: number, started: bigint): void;
}

// connect's default: smaller messages are not worth compressing.
const compressMinBytes = 1024;
const compressedFlag = 0b00000001;
const headerSize = 5;
// How long a client that was answered before it finished sending may go on sending.
const earlyCloseMs = 1000;
const maxTimerMs = 2 ** 31 - 1;

type UnaryFn = (req: UnaryRequest) => Promise<UnaryResponse>;

interface UnaryMethod {
  readonly route: string;
  readonly spec: MethodImplSpec & { kind: "unary" };
  /** The interceptors around the implementation, composed once. */
  readonly chain: UnaryFn;
}

// The call a request belongs to, for the implementation at the end of a chain composed once.
const kFastCall = createContextKey<Call | undefined>(undefined);

/**
 * Applies the interceptors to the implementation, outermost first, as connect does per call.
 * Composing once per method saves a closure per interceptor and call; it relies on interceptors
 * keeping per-call state inside the function they return, as seald's (and connect's examples)
 * do, not in the factory.
 */
function compose(interceptors: readonly Interceptor[]): UnaryFn {
  let next: UnaryFn = (req) => {
    const call = req.contextValues.get(kFastCall);
    if (!call) throw new ConnectError("internal error: request without its call", Code.Internal);
    return call.implement(req);
  };
  for (let i = interceptors.length - 1; i >= 0; i--) {
    next = (interceptors[i] as Interceptor)(next as never) as UnaryFn;
  }
  return next;
}

/** What every call of one fast path shares. */
interface Shared {
  readonly options: GrpcFastOptions;
  /** Calls whose implementation runs: their signals abort when the server shuts down. */
  readonly live: Set<Call>;
}

const kCall = Symbol("grpc-fast call");
type CallStream = http2.ServerHttp2Stream & { [kCall]?: Call };

/** Builds the lean unary gRPC handler for HTTP/2 streams. */
export function createGrpcFastPath(options: GrpcFastOptions): StreamHandler {
  const methods = new Map<string, UnaryMethod>();
  for (const service of options.services) {
    for (const spec of Object.values(service.methods)) {
      if (spec.kind !== "unary") continue;
      const route = `/${service.service.typeName}/${spec.method.name}`;
      methods.set(route, { route, spec, chain: compose(options.interceptors) });
    }
  }
  const shared: Shared = { options, live: new Set() };
  // One listener for every call, rather than one per call on the long-lived shutdown signal.
  options.shutdownSignal.addEventListener(
    "abort",
    () => {
      for (const call of shared.live) call.abort(options.shutdownSignal.reason);
    },
    { once: true },
  );
  return (stream, headers) => {
    if (headers[":method"] !== "POST") return false;
    const contentType = headers["content-type"];
    if (contentType !== "application/grpc" && contentType !== "application/grpc+proto") {
      return false;
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const method = methods.get(headers[":path"] ?? "");
    if (method === undefined) return false;
    new Call(shared, stream as CallStream, headers, method);
    return true;
  };
}

/** One unary call, from its request headers to its trailers. */
class Call {
  readonly started = process.hrtime.bigint();
  readonly request: RequestRecord;
  private readonly chunks: Buffer[] = [];
  private received = 0;
  /** The declared length of the request message, once its 5-byte prefix has arrived. */
  private declared = -1;
  private readonly timeoutMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly responseEncoding: Compression | null;
  /** The handler's signal, once asked for: aborted by the deadline, the client going away, shutdown. */
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private reqHeader: Headers | undefined;
  private resHeader: Headers | undefined;
  private resTrailer: Headers | undefined;
  private url = "";
  /** When grpc-timeout runs out (Date.now() time), if it was sent. */
  private deadline: number | undefined;
  /** The response the implementation made, to tell it from one an interceptor made. */
  private own: UnaryResponse | undefined;
  private readonly options: GrpcFastOptions;
  /** Set once headers are on their way: nothing else is written. */
  private responded = false;
  /** Set when the response went out before the request ended: the stream is reset after it. */
  private early = false;
  private ended = false;
  /** The trailers to send once the response body is out. */
  private trailers: http2.OutgoingHttpHeaders | undefined;

  constructor(
    private readonly shared: Shared,
    private readonly stream: CallStream,
    private readonly headers: http2.IncomingHttpHeaders,
    private readonly method: UnaryMethod,
  ) {
    const options = shared.options;
    this.options = options;
    this.request = options.newRequest(headers, stream.session?.socket?.remoteAddress ?? "");
    stream[kCall] = this;
    stream.on("error", onError);
    // 'on', not 'once': these fire at most once per stream, and once() allocates a wrapper.
    stream.on("close", onClose);
    stream.on("data", onData);
    stream.on("end", onEnd);
    this.responseEncoding = compressionNegotiate(
      options.acceptCompression as Compression[],
      null,
      single(headers["grpc-accept-encoding"]),
      "grpc-accept-encoding",
    ).response;
    const timeout = parseTimeout(single(headers["grpc-timeout"]), Number.MAX_SAFE_INTEGER);
    this.timeoutMs = timeout.timeoutMs;
    if (timeout.error) {
      this.fail(timeout.error);
      return;
    }
    // Past setTimeout's range (about 24.8 days) a timer would fire at once: no timer then.
    if (timeout.timeoutMs !== undefined && timeout.timeoutMs <= maxTimerMs) {
      this.timer = setTimeout(onDeadline, timeout.timeoutMs, this);
    }
  }

  data(chunk: Buffer): void {
    if (this.responded) return;
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.declared < 0 && this.received >= headerSize) {
      const prefix = this.chunks.length === 1 ? chunk : this.body();
      this.declared = prefix.readUInt32BE(1);
      // Refuse an oversized message from its prefix, before its bytes arrive.
      if (this.declared > this.options.readMaxBytes) {
        this.fail(
          new ConnectError(
            `message size ${this.declared} is larger than configured readMaxBytes ${this.options.readMaxBytes}`,
            Code.ResourceExhausted,
          ),
        );
        return;
      }
    }
    // Bytes past the one message: refuse now rather than buffer whatever the client sends.
    if (this.declared >= 0 && this.received > headerSize + this.declared) this.extra();
  }

  private extra(): void {
    this.fail(
      new ConnectError(
        "protocol error: received extra input message for unary method",
        Code.InvalidArgument,
      ),
    );
  }

  end(): void {
    this.ended = true;
    if (this.responded) return;
    if (this.received === 0) {
      // As connect: a unary call without its message.
      this.fail(
        new ConnectError(
          "protocol error: missing input message for unary method",
          Code.Unimplemented,
        ),
      );
      return;
    }
    const body = this.body();
    const length = this.declared;
    if (length < 0 || body.length < headerSize + length) {
      this.fail(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      return;
    }
    if (body.length > headerSize + length) {
      this.extra();
      return;
    }
    if (((body[0] ?? 0) & compressedFlag) !== 0) {
      // The gRPC compression spec: a compressed message without grpc-encoding is INTERNAL.
      this.fail(
        new ConnectError(
          "received compressed envelope, but do not know how to decompress",
          Code.Internal,
        ),
      );
      return;
    }
    const spec = this.method.spec;
    let input: MessageShape<DescMessage>;
    try {
      input = fromBinary(spec.method.input, body.subarray(headerSize));
    } catch (e) {
      // The client sent bytes that are not the request message: its error, not ours.
      this.fail(
        new ConnectError(
          `parse binary: ${e instanceof Error ? e.message : String(e)}`,
          Code.InvalidArgument,
        ),
      );
      return;
    }
    this.invoke(input).then(
      (output) => this.succeed(output),
      (err: unknown) => this.fail(ConnectError.from(err)),
    );
  }

  /**
   * Runs the interceptors and the implementation, as connect's invokeUnaryImplementation does,
   * but with the handler's signal and headers made on first use: a no-op call reads neither,
   * and creating and aborting an AbortSignal and three Headers per call showed in the profile.
   * They are accessor properties of the request and context objects themselves, so an
   * interceptor that copies the request (`{ ...req }`) copies their values.
   */
  private async invoke(input: MessageShape<DescMessage>): Promise<MessageShape<DescMessage>> {
    const call = this;
    const method = this.method.spec.method;
    const headers = this.headers;
    this.url = `${headers[":scheme"] ?? "http"}://${headers[":authority"] ?? headers.host ?? ""}${this.method.route}`;
    if (this.timeoutMs !== undefined) this.deadline = Date.now() + this.timeoutMs;
    const values = this.options.contextValues(this.request);
    values.set(kFastCall, this);
    const res = await this.method.chain({
      stream: false,
      message: input,
      method,
      service: method.parent,
      requestMethod: "POST",
      url: this.url,
      contextValues: values,
      get signal() {
        return call.signal();
      },
      get header() {
        return call.requestHeader();
      },
    });
    if (res !== this.own) {
      // An interceptor answered with a response of its own: its headers and trailers win, as
      // connect's copyHeaders makes them.
      replaceHeaders(res.header, this.responseHeader());
      replaceHeaders(res.trailer, this.responseTrailer());
    }
    return res.message;
  }

  /** Calls the implementation with a context made from the (possibly intercepted) request. */
  async implement(req: UnaryRequest): Promise<UnaryResponse> {
    const call = this;
    const spec = this.method.spec;
    const method = spec.method;
    const deadline = this.deadline;
    const context: HandlerContext = {
      method,
      service: req.service,
      protocolName: "grpc",
      requestMethod: "POST",
      url: this.url,
      timeoutMs: deadline === undefined ? noTimeout : () => deadline - Date.now(),
      values: req.contextValues,
      get signal() {
        return req.signal;
      },
      get requestHeader() {
        return req.header;
      },
      get responseHeader() {
        return call.responseHeader();
      },
      get responseTrailer() {
        return call.responseTrailer();
      },
    };
    const output = create(method.output, await spec.impl(req.message, context));
    this.own = {
      stream: false,
      message: output,
      method,
      service: method.parent,
      get header() {
        return call.responseHeader();
      },
      get trailer() {
        return call.responseTrailer();
      },
    };
    return this.own;
  }

  private signal(): AbortSignal {
    if (!this.controller) {
      const controller = new AbortController();
      this.controller = controller;
      const shutdown = this.options.shutdownSignal;
      if (this.abortReason !== undefined) controller.abort(this.abortReason);
      else if (shutdown.aborted) controller.abort(shutdown.reason);
      else this.shared.live.add(this);
    }
    return this.controller.signal;
  }

  private requestHeader(): Headers {
    if (!this.reqHeader) {
      const headers = this.headers;
      const init: [string, string][] = [];
      for (const name in headers) {
        if (name.charCodeAt(0) === 58 /* ":" */) continue;
        const value = headers[name];
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const v of value) init.push([name, v]);
        else init.push([name, String(value)]);
      }
      this.reqHeader = new Headers(init);
    }
    return this.reqHeader;
  }

  private responseHeader(): Headers {
    this.resHeader ??= new Headers(this.baseHeaders());
    return this.resHeader;
  }

  private responseTrailer(): Headers {
    this.resTrailer ??= new Headers({ "grpc-status": grpcStatusOk });
    return this.resTrailer;
  }

  /** Aborts the handler's signal (now, or when it is first asked for), once. */
  abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.shared.live.delete(this);
    this.controller?.abort(reason);
  }

  /** The response headers connect's gRPC handler starts from. */
  private baseHeaders(): Record<string, string> {
    const h: Record<string, string> = { "content-type": contentTypeProto };
    if (this.responseEncoding) h["grpc-encoding"] = this.responseEncoding.name;
    return h;
  }

  private succeed(output: MessageShape<DescMessage>): void {
    if (this.responded || this.stream.destroyed) return;
    let data: Uint8Array;
    try {
      data = toBinary(this.method.spec.method.output, output);
    } catch (e) {
      this.fail(
        new ConnectError(
          `serialize binary: ${e instanceof Error ? e.message : String(e)}`,
          Code.Internal,
        ),
      );
      return;
    }
    const compression = this.responseEncoding;
    if (compression && data.byteLength >= compressMinBytes) {
      compression.compress(data).then(
        (compressed) => this.send(compressed, compressedFlag),
        (err: unknown) => this.fail(ConnectError.from(err, Code.Internal)),
      );
      return;
    }
    this.send(data, 0);
  }

  private send(data: Uint8Array, flags: number): void {
    if (this.responded || this.stream.destroyed) return;
    const frame = Buffer.allocUnsafe(headerSize + data.byteLength);
    frame[0] = flags;
    frame.writeUInt32BE(data.byteLength, 1);
    frame.set(data, headerSize);
    this.respond(frame);
  }

  /** Answers the call with an error status in the trailers, as connect's gRPC handler does. */
  fail(error: ConnectError): void {
    if (this.responded || this.stream.destroyed) return;
    // Errors raised before the interceptors ran (framing, decoding) are outcomes too.
    this.request.outcome = Code[error.code] ?? "unknown";
    this.abort(error);
    this.respond(undefined, error);
  }

  private respond(frame: Buffer | undefined, error?: ConnectError): void {
    this.responded = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const stream = this.stream;
    const headers: http2.OutgoingHttpHeaders = {
      ":status": 200,
      "x-request-id": this.request.requestId,
    };
    if (this.resHeader) {
      this.resHeader.forEach((value, key) => {
        appendHeader(headers, key, value);
      });
    } else {
      Object.assign(headers, this.baseHeaders());
    }
    headers.date = utcDate();
    let trailers: http2.OutgoingHttpHeaders = successTrailers;
    if (error || this.resTrailer) {
      const trailer = this.responseTrailer();
      if (error) setTrailerStatus(trailer, error);
      trailers = {};
      trailer.forEach((value, key) => {
        appendHeader(trailers, key, value);
      });
    }
    this.trailers = trailers;
    this.early = !this.ended;
    try {
      stream.respond(headers, { waitForTrailers: true });
      stream.on("wantTrailers", onWantTrailers);
      if (frame) stream.end(frame);
      else stream.end();
    } catch {
      // The stream went away between the check and the write (a reset in flight): nothing can
      // reach the client any more.
      stream.destroy();
    }
    // The call is over for the implementation: abort its signal (if it made one), as connect does.
    if (!error) this.abort(callFinished);
  }

  private body(): Buffer {
    if (this.chunks.length !== 1) {
      const all = Buffer.concat(this.chunks, this.received);
      this.chunks.length = 0;
      this.chunks.push(all);
    }
    return this.chunks[0] as Buffer;
  }

  wantTrailers(): void {
    this.stream.sendTrailers(this.trailers ?? {});
    // The client is still sending a request we no longer read. grpc-js resets the stream itself
    // once it has the status; for a client that does not, reset it with NO_ERROR after a grace
    // period, as gRPC servers do. Not at once: nghttp2 sends RST_STREAM ahead of queued HEADERS,
    // and the trailers would be lost.
    if (this.early && !this.ended) setTimeout(closeEarly, earlyCloseMs, this.stream).unref();
  }

  closed(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (!this.responded) {
      // The client went away (cancelled, or its connection dropped): abort the handler's signal.
      this.responded = true;
      const rst = this.stream.rstCode ?? 0;
      this.abort(
        new ConnectError(
          `http/2 stream closed with error code 0x${rst.toString(16)}`,
          rst === constants.NGHTTP2_CANCEL ? Code.Canceled : Code.Aborted,
        ),
      );
      this.request.outcome = Code[Code.Canceled] ?? "Canceled";
    }
    this.options.finished(
      this.request,
      this.method.route,
      Number(this.stream.sentHeaders?.[":status"] ?? 200),
      this.started,
    );
  }

  deadlinePassed(): void {
    this.timer = undefined;
    this.fail(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  }
}

// Reason given to a finished call's signal (a preallocated one: aborting without a reason makes
// a DOMException per call).
const callFinished = new ConnectError("call finished", Code.Canceled);
// The trailers of a call whose implementation set none.
const successTrailers: http2.OutgoingHttpHeaders = { "grpc-status": grpcStatusOk };

// Listeners shared by every call (no closures per call): `this` is the stream.
function onData(this: CallStream, chunk: Buffer): void {
  this[kCall]?.data(chunk);
}
function onEnd(this: CallStream): void {
  this[kCall]?.end();
}
function onClose(this: CallStream): void {
  this[kCall]?.closed();
}
function onError(): void {
  // A reset or broken connection: 'close' follows and ends the call.
}
function onWantTrailers(this: CallStream): void {
  this[kCall]?.wantTrailers();
}
function closeEarly(stream: CallStream): void {
  if (!stream.closed && !stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR);
}
function noTimeout(): undefined {
  return undefined;
}
function onDeadline(call: Call): void {
  call.deadlinePassed();
}

function single(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Replaces the contents of `to` with those of `from`, as connect's copyHeaders does. */
function replaceHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  for (const key of [...to.keys()]) to.delete(key);
  from.forEach((value, key) => {
    to.set(key, value);
  });
}

function appendHeader(target: http2.OutgoingHttpHeaders, key: string, value: string): void {
  const existing = target[key];
  if (existing === undefined) target[key] = value;
  else if (Array.isArray(existing)) existing.push(value);
  else target[key] = [String(existing), value];
}

// The Date header the compatibility layer sends, formatted at most once a second.
let dateSecond = 0;
let dateText = "";
function utcDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
