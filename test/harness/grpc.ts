/**
 * A real grpc-js client for any generated service: the method table is derived from the
 * protobuf-es descriptor, and messages are (de)serialised with protobuf-es, so tests speak the
 * same bytes as any gRPC caller without a proto loader.
 */
import {
  create,
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/** Creates a grpc-js client for the service at host:port over cleartext HTTP/2. */
export function grpcClient(
  service: DescService,
  address: string,
  credentials = grpc.credentials.createInsecure(),
) {
  const definition: Record<
    string,
    grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>
  > = {};
  for (const method of service.methods) {
    const input: DescMessage = method.input;
    const output: DescMessage = method.output;
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream:
        method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream:
        method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      // create() accepts plain objects as well as messages, so tests can pass either.
      requestSerialize: (m: MessageShape<DescMessage>) =>
        Buffer.from(toBinary(input, create(input, m))),
      requestDeserialize: (b: Buffer) => fromBinary(input, b),
      responseSerialize: (m: MessageShape<DescMessage>) =>
        Buffer.from(toBinary(output, create(output, m))),
      responseDeserialize: (b: Buffer) => fromBinary(output, b),
    };
  }
  const Client = grpc.makeGenericClientConstructor(definition, service.name);
  return new Client(address, credentials) as grpc.Client &
    Record<string, (...args: unknown[]) => unknown>;
}

/** Calls a unary method and resolves with the response or rejects with the grpc-js error. */
export function unary<T>(
  client: grpc.Client & Record<string, (...args: unknown[]) => unknown>,
  method: string,
  request: unknown,
  metadata = new grpc.Metadata(),
): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = client[method];
    if (!fn) throw new Error(`no method ${method}`);
    fn.call(
      client,
      request,
      metadata,
      { deadline: Date.now() + 10_000 },
      (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)),
    );
  });
}

export { grpc };

/** Starts a server-streaming call. */
export function serverStream<T>(
  client: grpc.Client & Record<string, (...args: unknown[]) => unknown>,
  method: string,
  request: unknown,
  metadata = new grpc.Metadata(),
): grpc.ClientReadableStream<T> {
  const fn = client[method];
  if (!fn) throw new Error(`no method ${method}`);
  return fn.call(client, request, metadata) as grpc.ClientReadableStream<T>;
}

/** Metadata carrying `authorization: Bearer <token>`. */
export function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}
