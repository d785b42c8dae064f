/**
 * Seeding: head records written with the raw driver in exactly the layout src/store/secret-store.ts
 * stores (its `_id` is "<namespace> <name>"), each value really sealed with the key ring seald
 * runs with, so GetSecret, ListSecrets and DecryptSecrets treat them as any other secret. Writing
 * them through CreateSecret would take minutes for 100,000 (each create is audited); the layout
 * is checked against a record seald itself wrote before any is inserted (shapeOf/sameShape).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Binary, type Collection, type Document } from "mongodb";
import { openValue, sealValue } from "../../../src/crypto/envelope.js";
import { macHead } from "../../../src/crypto/head-mac.js";
import type { KeyRing } from "../../../src/crypto/keyring.js";
import { SecretValue } from "../../../src/crypto/secret-value.js";
import type { Envelope } from "../../../src/domain/sealed.js";

export const benchNamespace = "bench";

/** A stored head record, loosely typed: its `_id` is a string. */
export type HeadDoc = Document & { _id: string };
export const benchLabels: Readonly<Record<string, string>> = { app: "bench", tier: "gold" };

/** The name of secret number i. */
export function secretName(i: number): string {
  return `s${String(i).padStart(6, "0")}`;
}

/** The plaintext seeded for secret `name`. */
export function seededValue(name: string): string {
  return `value-of-${name}-${"v".repeat(48)}`;
}

const bin = (b: Uint8Array) => new Binary(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** A head record as src/store/secret-store.ts writes it (toDoc). */
export function headDoc(
  ring: KeyRing,
  spec: {
    namespace: string;
    name: string;
    value: string;
    decrypters: readonly string[];
    createdBy: string;
  },
): HeadDoc {
  const uid = randomUUID();
  const now = new Date();
  const labels = Object.entries(benchLabels).sort(([a], [b]) => (a < b ? -1 : 1));
  const envelope = sealValue(ring, SecretValue.fromString(spec.value), {
    namespace: spec.namespace,
    name: spec.name,
    uid,
    version: 1,
  });
  const rv = randomBytes(8).toString("hex");
  const { keyId: macKeyId, mac } = macHead(ring, {
    namespace: spec.namespace,
    name: spec.name,
    uid,
    version: 1,
    resourceVersion: rv,
    keeper: "system",
    ref: "",
    decrypters: spec.decrypters,
  });
  return {
    _id: `${spec.namespace} ${spec.name}`,
    uid,
    namespace: spec.namespace,
    name: spec.name,
    labels: labels.map(([k, v]) => ({ k, v })),
    labelKeys: labels.map(([k]) => k),
    labelPairs: labels.map(([k, v]) => `${k}=${v}`),
    annotations: [],
    description: "bench secret",
    decrypters: [...spec.decrypters],
    keeper: "system",
    ref: "",
    version: 1,
    rv,
    createTime: now,
    updateTime: now,
    createdBy: spec.createdBy,
    updatedBy: spec.createdBy,
    sealed: {
      kekId: envelope.kekId,
      dekNonce: bin(envelope.dekNonce),
      wrappedDek: bin(envelope.wrappedDek),
      nonce: bin(envelope.nonce),
      ciphertext: bin(envelope.ciphertext),
    },
    macKeyId,
    mac,
  };
}

/** The envelope of a stored head record. */
export function envelopeOf(doc: Document): Envelope {
  const s = doc.sealed as Record<string, Binary | string>;
  const bytes = (b: unknown) => new Uint8Array((b as Binary).buffer);
  return {
    kekId: s.kekId as string,
    dekNonce: bytes(s.dekNonce),
    wrappedDek: bytes(s.wrappedDek),
    nonce: bytes(s.nonce),
    ciphertext: bytes(s.ciphertext),
  };
}

/** Opens a stored head record's value, as DecryptSecrets does. */
export function openDoc(ring: KeyRing, doc: Document): string {
  const value = openValue(ring, envelopeOf(doc), {
    namespace: doc.namespace as string,
    name: doc.name as string,
    uid: doc.uid as string,
    version: doc.version as number,
  });
  try {
    return value.unsafeRevealString();
  } finally {
    value.dispose();
  }
}

/** The structure of a document: field names and BSON types, recursively (values ignored). */
export function shapeOf(v: unknown): unknown {
  if (v instanceof Binary) return "binary";
  if (v instanceof Date) return "date";
  if (Array.isArray(v)) return v.length === 0 ? ["?"] : [shapeOf(v[0])];
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, x]) => [k, shapeOf(x)]),
    );
  }
  return v === null ? "null" : typeof v;
}

/** Differences between two shapes, as paths; empty when they agree (an empty array matches any). */
export function shapeDiff(a: unknown, b: unknown, path = ""): string[] {
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a[0] === "?" || b[0] === "?") return [];
    return shapeDiff(a[0], b[0], `${path}[]`);
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) =>
      shapeDiff(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
      ),
    );
  }
  return JSON.stringify(a) === JSON.stringify(b)
    ? []
    : [`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}

/**
 * Inserts secrets from..to-1 of the bench namespace, sealing each value, with a few insertMany
 * batches in flight; returns the seconds it took.
 */
export async function seed(
  secrets: Collection<HeadDoc>,
  ring: KeyRing,
  range: { from: number; to: number },
  decrypter: string,
  onProgress?: (done: number) => void,
): Promise<number> {
  const started = performance.now();
  const batchSize = 1000;
  let next = range.from;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const start = next;
      next += batchSize;
      if (start >= range.to) return;
      const docs: HeadDoc[] = [];
      for (let i = start; i < Math.min(start + batchSize, range.to); i++) {
        const name = secretName(i);
        docs.push(
          headDoc(ring, {
            namespace: benchNamespace,
            name,
            value: seededValue(name),
            decrypters: [decrypter],
            createdBy: "admin",
          }),
        );
      }
      await secrets.insertMany(docs, { ordered: false });
      done += docs.length;
      onProgress?.(done);
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  return (performance.now() - started) / 1000;
}
