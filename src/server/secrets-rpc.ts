/**
 * SecretsService RPC handlers: translate messages to use-case calls and back. Field paths in
 * validation errors are prefixed with "secret." to match the request message. No rule lives here.
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Secret, SecretValue as SecretValueProto } from "../../gen/secrets/v1/resource_pb.js";
import type { DecryptResult, SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { encodeStandardBase64 } from "../crypto/base64.js";
import { SecretValue } from "../crypto/secret-value.js";
import { invalid, renamingFields } from "../domain/errors.js";
import type { SecretView } from "../domain/secret.js";
import { parseFieldSelector, parseLabelSelector, SelectorSyntaxError } from "../domain/selector.js";
import type { SecretInput, ValueInput } from "../service/secret-rules.js";
import type { SecretUseCases } from "../service/secrets.js";
import { callerOf } from "./context.js";

type Init<T> = Omit<T, "$typeName" | "$unknown">;

/** Field names a ListSecrets field selector may use. */
const selectableFields = {
  name: "name",
  namespace: "namespace",
  keeper: "keeper",
  ref: "ref",
  decrypter: "decrypter",
  decrypters: "decrypter",
} as const;

function toProto(s: SecretView): Init<Secret> {
  return {
    namespace: s.namespace,
    name: s.name,
    uid: s.uid,
    labels: { ...s.labels },
    annotations: { ...s.annotations },
    description: s.description,
    decrypters: [...s.decrypters],
    keeper: s.keeper,
    ref: s.ref,
    version: BigInt(s.version),
    resourceVersion: s.resourceVersion,
    createTime: timestampFromDate(s.createTime),
    updateTime: timestampFromDate(s.updateTime),
    createdBy: s.createdBy,
    updatedBy: s.updatedBy,
  };
}

function fromProto(s: Secret | undefined): SecretInput {
  const value = s?.value?.kind;
  return {
    namespace: s?.namespace ?? "",
    name: s?.name ?? "",
    labels: s?.labels ?? {},
    annotations: s?.annotations ?? {},
    description: s?.description ?? "",
    decrypters: s?.decrypters ?? [],
    keeper: s?.keeper ?? "",
    ref: s?.ref ?? "",
    value: valueFromProto(value),
  };
}

/** The three wire forms of a value; text and bytes both become the same byte string. */
function valueFromProto(kind: SecretValueProto["kind"] | undefined): ValueInput | undefined {
  switch (kind?.case) {
    case "plaintext":
      return { kind: "plaintext", value: SecretValue.fromString(kind.value) };
    case "plaintextBytes": {
      const value = SecretValue.fromBytes(kind.value);
      // fromBytes copied it: the request's own buffer need not hold the plaintext any longer.
      kind.value.fill(0);
      return { kind: "plaintext", value };
    }
    case "sealed":
      return { kind: "sealed", keyId: kind.value.keyId, box: kind.value.box };
    default:
      return undefined;
  }
}

/** Runs fn, renaming the field paths of validation errors for the request message. */
async function withFieldPrefix<T>(prefix: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw renamingFields(err, (field) => prefix + field);
  }
}

function selector<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof SelectorSyntaxError) throw invalid([{ field, message: err.message }]);
    throw err;
  }
}

/** Builds the SecretsService handlers over the use cases. */
export function secretsRpc(secrets: SecretUseCases): ServiceImpl<typeof SecretsService> {
  return {
    async createSecret(req, ctx) {
      const input = fromProto(req.secret);
      try {
        return {
          secret: toProto(
            await withFieldPrefix("secret.", () => secrets.create(callerOf(ctx), input)),
          ),
        };
      } finally {
        if (input.value?.kind === "plaintext") input.value.value.dispose();
      }
    },
    async getSecret(req, ctx) {
      return { secret: toProto(await secrets.get(callerOf(ctx), req.namespace, req.name)) };
    },
    async listSecrets(req, ctx) {
      const labels = selector("label_selector", () => parseLabelSelector(req.labelSelector));
      const fields = selector("field_selector", () =>
        parseFieldSelector(req.fieldSelector, selectableFields),
      );
      const page = await secrets.list(callerOf(ctx), {
        namespace: req.namespace,
        labels,
        fields,
        pageToken: req.pageToken,
        pageSize: req.pageSize,
      });
      return { secrets: page.secrets.map(toProto), nextPageToken: page.nextPageToken };
    },
    async updateSecret(req, ctx) {
      const input = fromProto(req.secret);
      try {
        const updated = await withFieldPrefix("secret.", () =>
          secrets.update(callerOf(ctx), input, {
            expectedResourceVersion: req.expectedResourceVersion,
            allowMissing: req.allowMissing,
          }),
        );
        return { secret: toProto(updated) };
      } finally {
        if (input.value?.kind === "plaintext") input.value.value.dispose();
      }
    },
    async deleteSecret(req, ctx) {
      await secrets.delete(callerOf(ctx), req.namespace, req.name, req.expectedResourceVersion);
      return {};
    },
    async decryptSecrets(req, ctx) {
      const results = await secrets.decrypt(
        callerOf(ctx),
        req.namespace,
        req.names,
        Number(req.version),
        req.asBytes ? "bytes" : "text",
      );
      const out: Record<string, Init<DecryptResult>> = {};
      for (const [name, r] of results) {
        if ("value" in r) {
          // The one place a plaintext leaves seald: the decrypt response to an authorised caller,
          // in the form it asked for (the use case has refused a non-UTF-8 value to a text caller).
          out[name] = {
            result: req.asBytes
              ? { case: "valueBytes", value: r.value.unsafeRevealBytes() }
              : { case: "value", value: r.value.unsafeRevealString() },
            version: BigInt(r.version),
          };
          r.value.dispose();
        } else {
          out[name] = { result: { case: "error", value: r.error }, version: 0n };
        }
      }
      return { results: out };
    },
    async getPublicKey(req, ctx) {
      const key = await secrets.getPublicKey(callerOf(ctx), req.namespace);
      return { keyId: key.keyId, publicKey: encodeStandardBase64(key.publicKey) };
    },
  };
}
