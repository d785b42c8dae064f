/**
 * The audit chain's records and their MAC: what a record holds, how it is sealed onto the chain,
 * and how its MAC is computed and compared. The audit log (audit.ts) appends, lists and verifies
 * with these; nothing here touches storage.
 *
 * MAC: BLAKE2b-256 keyed (libsodium crypto_generichash) with a subkey the caller supplies by id,
 * over a canonical, length-prefixed encoding of (seq, prevMac, keyId, the event's fields in a
 * fixed order). Each record names its key id, so the chain survives master key rotation.
 */
import { timingSafeEqual } from "node:crypto";
import { loadSodium } from "../crypto/sodium.js";

/** How an audited action ended. */
export const auditOutcomes = [
  "success",
  "denied",
  "unauthenticated",
  "not_found",
  "failed",
  "conflict",
  "invalid",
] as const;

/** How an audited action ended. */
export type AuditOutcome = (typeof auditOutcomes)[number];

/** One audited action: who did what to which secret, and how it ended. */
export interface AuditEvent {
  readonly time: Date;
  /** The authenticated principal, or "" when authentication failed. */
  readonly principal: string;
  readonly action: string;
  readonly namespace: string;
  readonly name: string;
  readonly outcome: AuditOutcome;
  readonly requestId: string;
  readonly remoteAddress: string;
  /** Detail for auditors (for example "decryption failed: value did not open"); never a value. */
  readonly reason?: string;
}

/** An event as stored: its place in the chain and the keyed MAC that seals it. */
export interface AuditRecord extends AuditEvent {
  /** 1, 2, 3, ... with no gaps. */
  readonly seq: number;
  /** The previous record's mac (hex), or genesisMac for seq 1. */
  readonly prevMac: string;
  /** BLAKE2b-256 keyed MAC (hex) of this record; see auditMac. */
  readonly mac: string;
  /** The id of the MAC key, so verification can find it after rotation. */
  readonly keyId: string;
}

/** The newest record's position and MAC: where the next append continues, or an anchor. */
export interface AuditHead {
  readonly seq: number;
  readonly mac: string;
}

/**
 * The head as stored in the database: the seq and MAC of a record every writer had stored before
 * it wrote this, sealed with headMac under the audit key named by keyId, so that someone without
 * the master key can neither move it nor forge one for a shorter log. See AuditLog for the rule.
 */
export interface SealedHead extends AuditHead {
  readonly keyId: string;
  /** BLAKE2b-256 keyed MAC (hex) of (seq, mac, keyId); see sealedHeadMac. */
  readonly headMac: string;
}

/** A MAC key and its id; keys are 16 to 64 bytes (BLAKE2b's key limits). */
export interface AuditMacKey {
  readonly keyId: string;
  readonly key: Uint8Array;
}

/** The prevMac of record 1. */
export const genesisMac = "0".repeat(64);

/**
 * The keyed MAC (hex) of a record's fields under the given key; exported for tools and tests
 * that need to forge or recheck one record.
 */
export async function auditMac(record: Omit<AuditRecord, "mac">, key: Uint8Array): Promise<string> {
  const sodium = await loadSodium();
  return macWith(sodium, record, key);
}

export type Sodium = Awaited<ReturnType<typeof loadSodium>>;

export function sealRecords(
  sodium: Sodium,
  pending: readonly { readonly event: AuditEvent }[],
  head: AuditHead,
  key: AuditMacKey,
): AuditRecord[] {
  const records: AuditRecord[] = [];
  let previous = head;
  for (const { event } of pending) {
    const body = { ...event, seq: previous.seq + 1, prevMac: previous.mac, keyId: key.keyId };
    const record: AuditRecord = { ...body, mac: macWith(sodium, body, key.key) };
    records.push(record);
    previous = record;
  }
  return records;
}

export function macWith(sodium: Sodium, record: Omit<AuditRecord, "mac">, key: Uint8Array): string {
  return sodium.to_hex(sodium.crypto_generichash(32, canonicalBytes(record), key));
}

/** Seals a head for storage: the MAC covers seq, the record's MAC and the key id. */
export function sealHead(sodium: Sodium, head: AuditHead, key: AuditMacKey): SealedHead {
  const body = { seq: head.seq, mac: head.mac, keyId: key.keyId };
  return { ...body, headMac: headMacWith(sodium, body, key.key) };
}

/**
 * The head's MAC (hex). Its encoding starts with a tag of its own ("seald.audit.head.v1"), so a
 * head's MAC can never be presented as a record's or the other way round, though both use the
 * same audit subkey.
 */
export function headMacWith(
  sodium: Sodium,
  head: Omit<SealedHead, "headMac">,
  key: Uint8Array,
): string {
  const bytes = encodeFields(["seald.audit.head.v1", String(head.seq), head.mac, head.keyId]);
  return sodium.to_hex(sodium.crypto_generichash(32, bytes, key));
}

/**
 * The MAC's input. Every field is a presence byte then a 4-byte big-endian length then its UTF-8
 * bytes, in a fixed order after a version tag, so that no two different records encode alike
 * (moving text from one field to the next changes the lengths; an absent reason differs from an
 * empty one). Never change this encoding: stored MACs would stop matching; add a new tag instead.
 */
function canonicalBytes(r: Omit<AuditRecord, "mac">): Uint8Array {
  const fields: (string | undefined)[] = [
    "seald.audit.v1",
    String(r.seq),
    r.prevMac,
    r.keyId,
    String(r.time.getTime()),
    r.principal,
    r.action,
    r.namespace,
    r.name,
    r.outcome,
    r.requestId,
    r.remoteAddress,
    r.reason,
  ];
  return encodeFields(fields);
}

function encodeFields(fields: readonly (string | undefined)[]): Uint8Array {
  const parts: Buffer[] = [];
  for (const field of fields) {
    if (field === undefined) {
      parts.push(Buffer.of(0));
      continue;
    }
    const bytes = Buffer.from(field, "utf8");
    const header = Buffer.alloc(5);
    header[0] = 1;
    header.writeUInt32BE(bytes.length, 1);
    parts.push(header, bytes);
  }
  return Buffer.concat(parts);
}

export function lookUpKey(
  getMacKey: (keyId?: string) => AuditMacKey | undefined,
  keyId: string,
): AuditMacKey | string {
  try {
    const key = getMacKey(keyId);
    if (key === undefined || key.keyId !== keyId) return `unknown MAC key id "${keyId}"`;
    checkKey(key);
    return key;
  } catch (err) {
    // Key ring errors name ids, never key material.
    const detail = err instanceof Error ? `: ${err.message}` : "";
    return `unknown MAC key id "${keyId}"${detail}`;
  }
}

export function checkKey(key: AuditMacKey): void {
  if (key.key.byteLength < 16 || key.key.byteLength > 64) {
    throw new Error(`audit: MAC key "${key.keyId}" must be 16 to 64 bytes`);
  }
}

export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}
