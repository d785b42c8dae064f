/**
 * A request whose binary message does not decode (a protobuf `string` that is not UTF-8
 * included) is the client's error, so it is answered InvalidArgument, as the lean gRPC path
 * answers it. connect-es reports it as Internal with the message "parse binary: ...", because
 * its binary serialization is shared with clients, where a bad message is the server's fault;
 * it offers no hook between reading a request and parsing it, so the answer is mended here,
 * around each route's handler, for each protocol where connect carries the status:
 * - Connect: an unary error answer of exactly that kind (HTTP 500, JSON, not compressed, code
 *   "internal", message starting "parse binary:") gets the code and HTTP status of
 *   invalid_argument;
 * - gRPC (compressed requests, and whatever the lean path declines): trailers with grpc-status 13
 *   and such a grpc-message get grpc-status 3;
 * - gRPC-Web: a body that is one uncompressed trailer frame saying the same gets status 3.
 * Nothing else is touched: every other answer passes through byte for byte.
 */
import type { ConnectRouter } from "@connectrpc/connect";
import {
  createAsyncIterable,
  readAllBytes,
  type UniversalHandler,
} from "@connectrpc/connect/protocol";

const decodeFailure = "parse binary:";
// Connect error bodies are small; a larger one is not the answer this looks for.
const maxErrorBody = 64 * 1024;

/** Wraps every handler of the router so that undecodable request messages are invalid_argument. */
export function answerDecodeFailuresAsInvalid(router: ConnectRouter): void {
  const handlers = router.handlers as UniversalHandler[];
  for (let i = 0; i < handlers.length; i++) {
    const inner = handlers[i] as UniversalHandler;
    const wrapped = async (req: Parameters<UniversalHandler>[0]) => mend(await inner(req));
    handlers[i] = Object.assign(wrapped, inner);
  }
}

type UniversalResponse = Awaited<ReturnType<UniversalHandler>>;

async function mend(res: UniversalResponse): Promise<UniversalResponse> {
  const type = res.header?.get("content-type") ?? "";
  if (type.startsWith("application/grpc-web")) return mendGrpcWeb(res);
  if (type.startsWith("application/grpc")) return mendGrpc(res);
  return mendConnect(res);
}

/** Whether a grpc-message (percent-encoded, as gRPC sends it) is connect's decode failure. */
function isDecodeFailure(grpcMessage: string | null | undefined): boolean {
  if (grpcMessage == null) return false;
  try {
    return decodeURIComponent(grpcMessage).startsWith(decodeFailure);
  } catch {
    return false;
  }
}

function mendTrailer(trailer: Headers): void {
  if (trailer.get("grpc-status") === "13" && isDecodeFailure(trailer.get("grpc-message"))) {
    trailer.set("grpc-status", "3");
  }
}

/**
 * connect sets the trailers while the body is produced, and the adapter writes them after the
 * last body chunk: a decode failure of a unary request has set them by the time the handler
 * answers, and anything later is mended when the body ends.
 */
function mendGrpc(res: UniversalResponse): UniversalResponse {
  const trailer = res.trailer;
  if (trailer === undefined) return res;
  mendTrailer(trailer);
  const body = res.body;
  if (body === undefined || body instanceof Uint8Array) return res;
  return {
    ...res,
    body: (async function* () {
      yield* body;
      mendTrailer(trailer);
    })(),
  };
}

const trailerFlag = 0x80;
const grpcWebDecodeFailure = /^grpc-status: 13\r$/m;

/** The gRPC-Web status is a trailer frame in the body; only a lone uncompressed one is read. */
function mendGrpcWeb(res: UniversalResponse): UniversalResponse {
  const body = res.body;
  if (body === undefined) return res;
  const chunks = body instanceof Uint8Array ? createAsyncIterable([body]) : body;
  return {
    ...res,
    body: (async function* () {
      let first = true;
      for await (const chunk of chunks) {
        yield first ? mendTrailerFrame(chunk) : chunk;
        first = false;
      }
    })(),
  };
}

function mendTrailerFrame(chunk: Uint8Array): Uint8Array {
  if (chunk.byteLength < 5 || chunk[0] !== trailerFlag) return chunk;
  const length = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength).getUint32(1);
  if (5 + length !== chunk.byteLength) return chunk;
  const text = new TextDecoder().decode(chunk.subarray(5));
  const message = /^grpc-message: (.*)\r$/m.exec(text)?.[1];
  if (!grpcWebDecodeFailure.test(text) || !isDecodeFailure(message)) return chunk;
  const mended = new TextEncoder().encode(text.replace(grpcWebDecodeFailure, "grpc-status: 3\r"));
  const frame = new Uint8Array(5 + mended.byteLength);
  frame[0] = trailerFlag;
  new DataView(frame.buffer).setUint32(1, mended.byteLength);
  frame.set(mended, 5);
  return frame;
}

async function mendConnect(res: UniversalResponse): Promise<UniversalResponse> {
  const header = res.header;
  if (
    res.status !== 500 ||
    !header?.get("content-type")?.startsWith("application/json") ||
    header.has("content-encoding") ||
    res.body === undefined
  ) {
    return res;
  }
  const bytes =
    res.body instanceof Uint8Array ? res.body : await readAllBytes(res.body, maxErrorBody);
  let error: { code?: unknown; message?: unknown };
  try {
    error = JSON.parse(new TextDecoder().decode(bytes)) as typeof error;
  } catch {
    return { ...res, body: createAsyncIterable([bytes]) };
  }
  if (
    error.code !== "internal" ||
    typeof error.message !== "string" ||
    !error.message.startsWith(decodeFailure)
  ) {
    return { ...res, body: createAsyncIterable([bytes]) };
  }
  const body = new TextEncoder().encode(JSON.stringify({ ...error, code: "invalid_argument" }));
  header.set("content-length", String(body.byteLength));
  return { ...res, status: 400, body: createAsyncIterable([body]) };
}
