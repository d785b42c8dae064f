/**
 * The tamper-evident audit trail: every write, decrypt and denial becomes a numbered record whose
 * keyed MAC covers its own fields and the previous record's MAC (audit-chain.ts). Someone who can
 * write to the database but does not hold the master key can neither edit a record nor remove one
 * from the middle without verify() naming it, because they cannot recompute the MACs that follow.
 */
import { loadSodium } from "../crypto/sodium.js";
import { invalid } from "../domain/errors.js";
import { maxPageSize, pageTokenCodec } from "../domain/paging.js";
import {
  type AuditEvent,
  type AuditHead,
  type AuditMacKey,
  type AuditOutcome,
  type AuditRecord,
  auditOutcomes,
  checkKey,
  genesisMac,
  lookUpKey,
  macWith,
  type Sodium,
  sameHex,
  sealRecords,
} from "./audit-chain.js";

/** A stored document that no longer has the shape of a record (edited by hand). */
export interface MalformedAuditRecord {
  readonly seq: number;
  /** What is wrong with it, for verify(). */
  readonly malformed: string;
}

/** What a store read yields: a record, or a document that is not one. */
export type StoredAuditEntry = AuditRecord | MalformedAuditRecord;

/** Filters for list(); every given field must match. */
export interface AuditFilter {
  readonly namespace?: string;
  readonly principal?: string;
  readonly action?: string;
  /** One of auditOutcomes; anything else is an invalid_argument error. */
  readonly outcome?: string;
  /** Only records with time at or after this instant. */
  readonly since?: Date;
  /** Only records with time before this instant. */
  readonly until?: Date;
}

/** A page request: how many records, and where the previous page ended. */
export interface AuditPageRequest {
  readonly pageSize: number;
  readonly pageToken?: string;
}

/** A page of records, newest first, and the token for the next (older) page when there is one. */
export interface AuditPage {
  readonly records: AuditRecord[];
  readonly nextPageToken: string | undefined;
}

/** The answer of verify(): the number of records checked, or the first that fails and why. */
export type AuditVerification =
  | { readonly ok: true; readonly count: number }
  | { readonly ok: false; readonly seq: number; readonly problem: string };

/** Store filters as the store sees them: outcome checked, page position resolved. */
export interface AuditQuery {
  readonly namespace?: string;
  readonly principal?: string;
  readonly action?: string;
  readonly outcome?: AuditOutcome;
  readonly since?: Date;
  readonly until?: Date;
  /** Only records with a smaller seq. */
  readonly beforeSeq?: number;
}

/** The storage the audit trail needs; the MongoDB implementation is src/store/audit-store.ts. */
export interface AuditStore {
  /**
   * Inserts records with consecutive seqs in order, each insert atomic on its own, and resolves
   * with how many were stored: all of them, or fewer when the record at that position had a seq
   * another writer had already taken (none after it is stored). Any other failure throws.
   */
  insert(records: readonly AuditRecord[]): Promise<number>;
  /** The record with the highest seq, or undefined when the log is empty. */
  head(): Promise<AuditHead | undefined>;
  /** Up to `limit` entries matching the query, highest seq first. */
  find(query: AuditQuery, limit: number): Promise<StoredAuditEntry[]>;
  /** Every entry in ascending seq order, streamed (never all in memory). */
  scan(): AsyncIterable<StoredAuditEntry>;
}

/** How an AuditLog gets its MAC keys. */
export interface AuditLogOptions {
  /**
   * The MAC key with this id, or the active one when no id is given. May throw or return
   * undefined for an id it does not know. Returned keys are read, never kept or modified.
   */
  readonly getMacKey: (keyId?: string) => AuditMacKey | undefined;
  /** The most queued events written by one insert; 100 by default. */
  readonly maxBatch?: number;
  /** How many times one batch may lose the race for its seqs before append fails; 1000 by default. */
  readonly maxConflicts?: number;
  /** Told each time another writer took seqs this log tried to use (for metrics and tests). */
  readonly onConflict?: (seq: number) => void;
}

/** An audit list's page token: the seq the next page starts before (the list is newest first). */
const auditPageToken = pageTokenCodec(
  { before: "number" },
  (t) => t.before,
  (seq: number) => ({ before: seq }),
);

interface Pending {
  readonly event: AuditEvent;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The audit trail: appends events as chained, MACed records, lists them, and verifies the chain.
 *
 * Why concurrent appends are safe on MongoDB and FerretDB alike, with no transactions: the seq is
 * the document's `_id`, and an insert of one document on a unique `_id` is atomic on both. Two
 * writers (this log's queue in-process; other replicas and processes outside it) that both try
 * seq N race on that insert, and exactly one wins; the loser gets a duplicate key error (code
 * 11000; FerretDB v1 reports insert-caused violations as 11000 too, unlike update-caused ones),
 * re-reads the head and re-seals its remaining events after it. A record is only ever written
 * with the MAC of the record stored at seq - 1 at the moment it was read, and records are never
 * updated, so the chain cannot fork. An ordered insertMany stops at the first failure, so a batch
 * never leaves a hole behind the winner's records.
 */
export class AuditLog {
  private readonly store: AuditStore;
  private readonly getMacKey: (keyId?: string) => AuditMacKey | undefined;
  private readonly maxBatch: number;
  private readonly maxConflicts: number;
  private readonly onConflict: ((seq: number) => void) | undefined;
  private readonly queue: Pending[] = [];
  private draining = false;

  constructor(store: AuditStore, options: AuditLogOptions) {
    this.store = store;
    this.getMacKey = options.getMacKey;
    this.maxBatch = options.maxBatch ?? 100;
    this.maxConflicts = options.maxConflicts ?? 1000;
    this.onConflict = options.onConflict;
  }

  /**
   * Appends an event and resolves with its record once it is stored; callers await this before
   * they answer, so that nothing (a decrypted value least of all) leaves unaudited.
   */
  append(event: AuditEvent): Promise<AuditRecord> {
    let copy: AuditEvent;
    try {
      copy = checkEvent(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ event: copy, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  /**
   * Lists records matching the filter, newest first (what an auditor looks at first), paged by
   * an opaque cursor on seq: a page is stable while others append, and no offset is ever skipped.
   */
  async list(filter: AuditFilter, page: AuditPageRequest): Promise<AuditPage> {
    const size = page.pageSize;
    if (!Number.isInteger(size) || size < 1 || size > maxPageSize) {
      throw invalid([{ field: "page_size", message: `must be between 1 and ${maxPageSize}` }]);
    }
    const query: { -readonly [K in keyof AuditQuery]: AuditQuery[K] } = {};
    if (filter.namespace !== undefined) query.namespace = filter.namespace;
    if (filter.principal !== undefined) query.principal = filter.principal;
    if (filter.action !== undefined) query.action = filter.action;
    if (filter.outcome !== undefined) {
      if (!isOutcome(filter.outcome)) {
        throw invalid([
          { field: "outcome", message: `must be one of ${auditOutcomes.join(", ")}` },
        ]);
      }
      query.outcome = filter.outcome;
    }
    if (filter.since !== undefined) query.since = checkDate("start_time", filter.since);
    if (filter.until !== undefined) query.until = checkDate("end_time", filter.until);
    if (page.pageToken !== undefined && page.pageToken !== "") {
      const before = auditPageToken.decode("page_token", page.pageToken);
      if (!Number.isSafeInteger(before) || before < 1) {
        throw invalid([{ field: "page_token", message: "is not a page token this server issued" }]);
      }
      query.beforeSeq = before;
    }
    // One more than asked tells whether another page exists without a count.
    const entries = await this.store.find(query, size + 1);
    const shown = entries.slice(0, size);
    // Malformed documents keep their place in the paging but are not records; verify() is where
    // tampering is reported.
    const records = shown.filter((e): e is AuditRecord => !("malformed" in e));
    const lastShown = shown.at(-1);
    const nextPageToken =
      entries.length > size && lastShown ? auditPageToken.encode(lastShown.seq) : undefined;
    return { records, nextPageToken };
  }

  /**
   * Checks the whole chain in seq order and names the first record that fails: a gap in seq, an
   * unknown key id, a MAC that does not match (an edited field) or a prevMac that does not match
   * the previous record. An anchor (a head saved elsewhere earlier) also catches records removed
   * from the end, which the chain alone cannot show.
   */
  async verify(options: { anchor?: AuditHead } = {}): Promise<AuditVerification> {
    const sodium = await loadSodium();
    const { anchor } = options;
    const keys = new Map<string, AuditMacKey | string>();
    let previous: AuditHead = { seq: 0, mac: genesisMac };
    let count = 0;
    for await (const entry of this.store.scan()) {
      const expected = previous.seq + 1;
      if (entry.seq !== expected) {
        const problem =
          entry.seq > expected
            ? `record ${expected} is missing: the next stored record is ${entry.seq}`
            : `record ${entry.seq} is out of order after record ${previous.seq}`;
        return { ok: false, seq: entry.seq > expected ? expected : entry.seq, problem };
      }
      if ("malformed" in entry) {
        return { ok: false, seq: entry.seq, problem: `malformed record: ${entry.malformed}` };
      }
      let key = keys.get(entry.keyId);
      if (key === undefined) {
        key = lookUpKey(this.getMacKey, entry.keyId);
        keys.set(entry.keyId, key);
      }
      if (typeof key === "string") return { ok: false, seq: entry.seq, problem: key };
      if (!sameHex(macWith(sodium, entry, key.key), entry.mac)) {
        return {
          ok: false,
          seq: entry.seq,
          problem: "MAC mismatch: the record was altered or not written with its key",
        };
      }
      // Checked after the MAC: an edited prevMac is an edit of this record; a well-MACed record
      // on the wrong predecessor is a fork or a splice.
      if (entry.prevMac !== previous.mac) {
        return {
          ok: false,
          seq: entry.seq,
          problem: `prevMac does not match the MAC of record ${previous.seq}`,
        };
      }
      if (anchor && entry.seq === anchor.seq && entry.mac !== anchor.mac) {
        return {
          ok: false,
          seq: entry.seq,
          problem: "record differs from the anchor saved for it",
        };
      }
      previous = { seq: entry.seq, mac: entry.mac };
      count++;
    }
    if (anchor && anchor.seq > previous.seq) {
      return {
        ok: false,
        seq: previous.seq + 1,
        problem: `the log ends at record ${previous.seq} but the anchor names record ${anchor.seq}: records were removed from the end`,
      };
    }
    return { ok: true, count };
  }

  /** The newest stored record's seq and MAC, to keep elsewhere as an anchor for verify(). */
  head(): Promise<AuditHead | undefined> {
    return this.store.head();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      // Awaiting before the first splice lets events appended in the same tick share a batch.
      const sodium = await loadSodium();
      while (this.queue.length > 0) {
        await this.writeBatch(sodium, this.queue.splice(0, this.maxBatch));
      }
    } catch (err) {
      for (const p of this.queue.splice(0)) p.reject(err);
    } finally {
      this.draining = false;
    }
  }

  /** Writes one batch; settles every one of its promises and never throws. */
  private async writeBatch(sodium: Sodium, batch: Pending[]): Promise<void> {
    let pending = batch;
    let conflicts = 0;
    while (pending.length > 0) {
      let records: AuditRecord[];
      let stored: number;
      try {
        // The head is read before every insert, never remembered from this log's own last write:
        // a writer that skips the read always beats one that must make it after losing a race,
        // and under steady load from one replica another could lose every time (measured: with
        // a remembered head the second of two busy writers got nothing in until the first
        // stopped). One indexed read per batch is the price of fairness.
        const head = (await this.store.head()) ?? { seq: 0, mac: genesisMac };
        const key = this.getMacKey();
        if (!key) throw new Error("audit: no active MAC key");
        checkKey(key);
        records = sealRecords(sodium, pending, head, key);
        stored = await this.store.insert(records);
      } catch (err) {
        // Not a lost race, and the outcome may be unknown (a dropped connection may or may not
        // have stored the records): the callers are told the append failed, so nothing is
        // answered unaudited. A record that was stored after all stays a valid link, since the
        // next batch reads the head afresh.
        for (const p of pending) p.reject(err);
        return;
      }
      for (let i = 0; i < stored; i++) pending[i]?.resolve(records[i] as AuditRecord);
      if (stored === records.length) return;
      // Another writer took records[stored].seq: continue after whatever is the head now.
      this.onConflict?.((records[stored] as AuditRecord).seq);
      pending = pending.slice(stored);
      if (++conflicts > this.maxConflicts) {
        const err = new Error(`audit: lost the race for a seq ${conflicts} times in a row`);
        for (const p of pending) p.reject(err);
        return;
      }
      // Events queued meanwhile join the retry, behind the ones that came first.
      pending = pending.concat(this.queue.splice(0, Math.max(0, this.maxBatch - pending.length)));
      // Retry at once for the first few losses: any pause hands the winner the next seq too.
      // After that, a little jitter (growing, capped low) lets many writers in lockstep drift
      // apart without leaving this one far behind.
      if (conflicts > 3) await sleep(Math.random() * Math.min(20, 2 ** (conflicts - 3)));
    }
  }
}

function isOutcome(value: string): value is AuditOutcome {
  return (auditOutcomes as readonly string[]).includes(value);
}

function checkDate(field: string, value: Date): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw invalid([{ field, message: "must be a valid time" }]);
  }
  return value;
}

/** Copies the event (later changes by the caller must not alter what is sealed) and checks it. */
function checkEvent(event: AuditEvent): AuditEvent {
  if (!(event.time instanceof Date) || Number.isNaN(event.time.getTime())) {
    throw new TypeError("audit event: time must be a valid Date");
  }
  if (!isOutcome(event.outcome)) {
    throw new TypeError(`audit event: unknown outcome "${String(event.outcome)}"`);
  }
  for (const field of ["principal", "action", "namespace", "name", "requestId", "remoteAddress"]) {
    if (typeof event[field as keyof AuditEvent] !== "string") {
      throw new TypeError(`audit event: ${field} must be a string`);
    }
  }
  if (event.reason !== undefined && typeof event.reason !== "string") {
    throw new TypeError("audit event: reason must be a string");
  }
  return {
    time: new Date(event.time.getTime()),
    principal: event.principal,
    action: event.action,
    namespace: event.namespace,
    name: event.name,
    outcome: event.outcome,
    requestId: event.requestId,
    remoteAddress: event.remoteAddress,
    ...(event.reason === undefined ? {} : { reason: event.reason }),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
