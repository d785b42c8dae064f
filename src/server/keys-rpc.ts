/**
 * KeysService RPC handlers: translate messages to use-case calls and back.
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { KeysService } from "../../gen/secrets/v1/keys_service_pb.js";
import { encodeStandardBase64 } from "../crypto/base64.js";
import type { KeyUseCases } from "../service/key-admin.js";
import type { RewrapJobState } from "../service/rewrap.js";
import { callerOf } from "./context.js";

function jobToProto(job: RewrapJobState) {
  return {
    state: job.state,
    targetKeyId: job.targetKeyId,
    processed: BigInt(job.processed),
    rewrapped: BigInt(job.rewrapped),
    total: BigInt(job.total),
    ...(job.startTime ? { startTime: timestampFromDate(job.startTime) } : {}),
    ...(job.updateTime ? { updateTime: timestampFromDate(job.updateTime) } : {}),
    holder: job.holder,
    error: job.error,
  };
}

/** Builds the KeysService handlers over the use cases. */
export function keysRpc(keys: KeyUseCases): ServiceImpl<typeof KeysService> {
  return {
    async getKeyStatus(_req, ctx) {
      const status = await keys.status(callerOf(ctx));
      return {
        activeKeyId: status.activeKeyId,
        keys: status.keys.map((k) => ({
          keyId: k.keyId,
          configured: k.configured,
          active: k.active,
          values: BigInt(k.values),
          history: BigInt(k.history),
          namespaceKeys: BigInt(k.namespaceKeys),
          tokens: BigInt(k.tokens),
        })),
        rewrap: jobToProto(status.job),
      };
    },
    async startRewrap(_req, ctx) {
      return { rewrap: jobToProto(await keys.startRewrap(callerOf(ctx))) };
    },
    async rotatePublicKey(req, ctx) {
      const r = await keys.rotatePublicKey(callerOf(ctx), req.namespace);
      return {
        keyId: r.current.keyId,
        publicKey: encodeStandardBase64(r.current.publicKey),
        previousKeyId: r.previous?.keyId ?? "",
        ...(r.previous ? { previousValidUntil: timestampFromDate(r.graceUntil) } : {}),
      };
    },
  };
}
