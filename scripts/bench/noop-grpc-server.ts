/**
 * Floor: a bare grpc-js server answering grpc.health.v1.Health/Check (SERVING for the empty
 * service name, NOT_FOUND for any other, as seald does), with protobuf-es messages. Prints
 * "listening grpc=<port>" and serves until SIGTERM.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type HealthCheckRequest,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../../gen/grpc/health/v1/health_pb.js";

const serving = create(HealthCheckResponseSchema, {
  status: HealthCheckResponse_ServingStatus.SERVING,
});
const server = new grpc.Server();
server.addService(
  {
    Check: {
      path: "/grpc.health.v1.Health/Check",
      requestStream: false,
      responseStream: false,
      requestSerialize: (m: HealthCheckRequest) =>
        Buffer.from(toBinary(HealthCheckRequestSchema, m)),
      requestDeserialize: (b: Buffer) => fromBinary(HealthCheckRequestSchema, b),
      responseSerialize: (m: HealthCheckResponse) =>
        Buffer.from(toBinary(HealthCheckResponseSchema, m)),
      responseDeserialize: (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
    },
  },
  {
    Check: (
      call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
      callback: grpc.sendUnaryData<HealthCheckResponse>,
    ) => {
      if (call.request.service === "") callback(null, serving);
      else callback({ code: grpc.status.NOT_FOUND, details: "unknown service" });
    },
  },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening grpc=${port}\n`);
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
