/**
 * Reference, not a floor the issue names: grpc.health.v1.Health/Check answered straight from
 * node:http2 'stream' events (no compat request/response objects, no Connect), the shape a lean
 * gRPC unary path inside seald could take while keeping one port. Prints "listening h2=<port>".
 */
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../../gen/grpc/health/v1/health_pb.js";

const serving = toBinary(
  HealthCheckResponseSchema,
  create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.SERVING }),
);
const server = http2.createServer();
server.on("stream", (stream, headers) => {
  if (headers[":path"] !== "/grpc.health.v1.Health/Check") {
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "grpc-status": "12" },
      {
        endStream: true,
      },
    );
    return;
  }
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.on("end", () => {
    const body = Buffer.concat(chunks);
    const request = fromBinary(
      HealthCheckRequestSchema,
      body.subarray(5, 5 + body.readUInt32BE(1)),
    );
    if (request.service !== "") {
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": "5",
          "grpc-message": "unknown service",
        },
        { endStream: true },
      );
      return;
    }
    const frame = Buffer.allocUnsafe(5 + serving.length);
    frame[0] = 0;
    frame.writeUInt32BE(serving.length, 1);
    frame.set(serving, 5);
    stream.respond(
      { ":status": 200, "content-type": "application/grpc" },
      { waitForTrailers: true },
    );
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(frame);
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening h2=${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
