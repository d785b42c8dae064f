/**
 * The SecretsService RPC handlers. Typed as the full ServiceImpl so a missing method is a
 * compile error. The bodies arrive with the sealed-secrets work; until then each answers
 * Unimplemented, which every gRPC and Connect client understands.
 */
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";

function unimplemented(method: string): never {
  throw new ConnectError(
    `secrets.v1.SecretsService/${method} is not implemented yet`,
    Code.Unimplemented,
  );
}

/** Builds the SecretsService handlers. */
export function secretsRpc(): ServiceImpl<typeof SecretsService> {
  return {
    createSecret: () => unimplemented("CreateSecret"),
    getSecret: () => unimplemented("GetSecret"),
    listSecrets: () => unimplemented("ListSecrets"),
    updateSecret: () => unimplemented("UpdateSecret"),
    deleteSecret: () => unimplemented("DeleteSecret"),
    decryptSecrets: () => unimplemented("DecryptSecrets"),
    getPublicKey: () => unimplemented("GetPublicKey"),
  };
}
