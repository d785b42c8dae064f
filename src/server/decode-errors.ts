/**
 * A Connect-protocol request whose binary message does not decode is the client's error, so it
 * is answered `invalid_argument` (HTTP 400), as the lean gRPC path answers InvalidArgument.
 * connect-es reports it as `internal` (HTTP 500) with the message "parse binary: ...", because
 * its binary serialization is shared with clients, where a bad message is the server's fault;
 * it offers no hook between reading a request and parsing it, so the answer is mended here,
 * around each route's handler: an unary Connect error answer of exactly that kind (HTTP 500,
 * JSON, not compressed, code "internal", message starting "parse binary:") gets the code the
 * Connect protocol gives InvalidArgument. Nothing else is touched. gRPC-Web puts its status in
 * the body's trailer frame and is left as it is (README, known gaps).
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

/** Wraps every handler of the router so that undecodable Connect messages are invalid_argument. */
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
