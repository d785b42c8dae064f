/**
 * Typed Connect clients for tests, over gRPC (HTTP/2) or the Connect protocol's JSON on
 * HTTP/1.1, each authenticating with a bearer token.
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { rememberValuesIn } from "./plaintexts.js";

export type Protocol = "grpc" | "connect-json";

/** A client for the service at baseUrl that sends the token with every call. */
export function client<T extends DescService>(
  service: T,
  baseUrl: string,
  token: string,
  protocol: Protocol = "grpc",
): Client<T> {
  const auth: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    if (!req.stream) rememberValuesIn(req.message);
    const res = await next(req);
    if (!res.stream) rememberValuesIn(res.message);
    return res;
  };
  const transport =
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl, interceptors: [auth] })
      : createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [auth] });
  return createClient(service, transport);
}
