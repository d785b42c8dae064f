/**
 * The bench's clients, the same code for seald and for every floor:
 *
 * - gRPC: one grpc-js channel (one HTTP/2 connection) per target, messages (de)serialised with
 *   protobuf-es from the generated descriptors, as test/harness/grpc.ts does.
 * - HTTP/1.1: node:http with a keep-alive agent, for the Connect protocol's JSON (a unary call is
 *   a POST of the JSON message to /<service>/<method>) and for the REST dialects.
 */
import * as http from "node:http";
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/** How long one call may take before the client gives up on it. */
const callTimeoutMs = 120_000;

export class GrpcTarget {
  readonly client: grpc.Client;
  private readonly metadata: grpc.Metadata;

  constructor(address: string, token?: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      // Large pages (ListSecrets at page_size 1000) stay within the limit.
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    });
    this.metadata = new grpc.Metadata();
    if (token) this.metadata.set("authorization", `Bearer ${token}`);
  }

  /** Calls a unary method and resolves with the decoded response. */
  unary<I extends DescMessage, O extends DescMessage>(
    path: string,
    input: I,
    output: O,
    request: MessageInitShape<I>,
  ): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        path,
        (m: MessageInitShape<I>) => Buffer.from(toBinary(input, create(input, m))),
        (b: Buffer) => fromBinary(output, b),
        request,
        this.metadata,
        { deadline: Date.now() + callTimeoutMs },
        (err: grpc.ServiceError | null, res?: MessageShape<O>) => {
          if (err || res === undefined) reject(err ?? new Error("no response"));
          else resolve(res);
        },
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** A keep-alive HTTP/1.1 client for one origin. */
export class HttpTarget {
  // Idle sockets close after 4 s, before the server's 5 s keep-alive timeout can close one just
  // as a request is sent on it (which a client sees as "socket hang up").
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 4000 });
  private readonly host: string;
  private readonly port: number;
  private readonly headers: Record<string, string>;

  constructor(baseUrl: string, token?: string) {
    const url = new URL(baseUrl);
    this.host = url.hostname;
    this.port = Number(url.port);
    this.headers = token ? { authorization: `Bearer ${token}` } : {};
  }

  request(method: string, path: string, body?: string): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...this.headers };
      if (body !== undefined) {
        headers["content-type"] = "application/json";
        headers["content-length"] = Buffer.byteLength(body);
      }
      const req = http.request(
        { host: this.host, port: this.port, method, path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
          );
          res.on("error", reject);
        },
      );
      req.setTimeout(callTimeoutMs, () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end(body);
    });
  }

  /** GET returning parsed JSON; anything but 200 rejects with the status and the body's start. */
  async getJson<T>(path: string): Promise<T> {
    const answer = await this.request("GET", path);
    if (answer.status !== 200) throw new HttpError(answer);
    return JSON.parse(answer.body) as T;
  }

  /** A unary call in the Connect protocol's JSON; a non-200 answer rejects. */
  async connectJson<T>(procedure: string, message: unknown): Promise<T> {
    const answer = await this.request("POST", procedure, JSON.stringify(message));
    if (answer.status !== 200) throw new HttpError(answer);
    return JSON.parse(answer.body) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

export class HttpError extends Error {
  constructor(readonly answer: HttpAnswer) {
    super(`HTTP ${answer.status}: ${answer.body.slice(0, 200)}`);
    this.name = "HttpError";
  }
}
