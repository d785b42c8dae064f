/**
 * Floor: a bare connect-node server answering grpc.health.v1.Health/Check (SERVING for the empty
 * service name, NotFound for any other, as seald does): cleartext HTTP/2 for gRPC on one port,
 * HTTP/1.1 for the Connect protocol on another, no interceptors, logging or metrics. Prints
 * "listening h2=<port> h1=<port>" and serves until SIGTERM.
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";

const handler = connectNodeAdapter({
  routes: (router) => {
    router.service(Health, {
      check(req) {
        if (req.service !== "") throw new ConnectError("unknown service", Code.NotFound);
        return { status: HealthCheckResponse_ServingStatus.SERVING };
      },
      async *watch() {
        yield { status: HealthCheckResponse_ServingStatus.SERVING };
      },
    });
  },
});
const listen = (server: http.Server | http2.Http2Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
const h2 = http2.createServer(handler);
const h1 = http.createServer(handler);
const [p2, p1] = await Promise.all([listen(h2), listen(h1)]);
process.stdout.write(`listening h2=${p2} h1=${p1}\n`);
process.on("SIGTERM", () => process.exit(0));
