/**
 * The tamper-evident audit trail: every write, decrypt and denial becomes a numbered record whose
 * keyed MAC covers its own fields and the previous record's MAC (audit-chain.ts). Someone who can
 * write to the database but does not hold the master key can neither edit a record nor remove one
 * from the middle without verify() naming it, because they cannot recompute the MACs that follow.
 * A chain alone cannot show records removed from its end; a sealed head stored beside it (see
 * AuditLog, "The head rule") and anchors kept outside the database (a record sink, an anchor
 * given to verify) can.
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
  headMacWith,
  lookUpKey,
  macWith,
  type SealedHead,
  type Sodium,
  sameHex,
  sealHead,
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

/** What a store read of the head yields: a sealed head, or a document that is not one. */
export type StoredHead = SealedHead | { readonly seq?: number; readonly malformed: string };

/**
 * Where records go besides the database, as they are appended (an anchor outside it). write()
 * resolves once the records are handed to the operating system; when it rejects, the appends it
 * carried fail, so no call is answered with a record the sink lacks.
 */
export interface AuditRecordSink {
  write(records: readonly AuditRecord[]): Promise<void>;
}

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

/**
 * The answer of verify(): the number of records checked and the newest one (to keep elsewhere as
 * an anchor), or the first record that fails and why.
 */
export type AuditVerification =
  | {
      readonly ok: true;
      readonly count: number;
      readonly head?: AuditHead;
      /** With resealHead: what was wrong with the head it replaced ("" when nothing was). */
      readonly replacedHeadProblem?: string;
    }
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
  /** The stored sealed head, or undefined when there is none. */
  sealedHead(): Promise<StoredHead | undefined>;
  /**
   * Replaces the stored head with `to` only if it is still exactly `from` (creates it only if
   * there is none, when `from` is undefined); resolves with whether it did.
   */
  moveHead(from: SealedHead | undefined, to: SealedHead): Promise<boolean>;
  /** Replaces the stored head (or creates it), whatever it is now. */
  replaceHead(to: SealedHead): Promise<void>;
  /** The MAC stored in the record at seq ("" when it is not a string), or undefined without one. */
  macAt(seq: number): Promise<string | undefined>;
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
  /** Also receives every record, in seq order, before its append resolves. */
  readonly sink?: AuditRecordSink;
  /**
   * Told when a writer leaves the head where it is because the head does not check out (the log
   * was tampered with) or could not be written; the append itself succeeds. For the log.
   */
  readonly onHeadProblem?: (problem: string) => void;
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
 *
 * The head rule. A chain that ends early is still a valid chain, so the end is anchored by a
 * sealed head in the database: the seq and MAC of a stored record, MACed with the audit key.
 * Writers move it only after their records are stored, only forward, and only from a head they
 * checked (its MAC verifies and the record it names is stored with that MAC), by compare-and-set;
 * so the head may lag the newest record (appends in flight, or a lost FerretDB race) but never
 * names a record that was not stored before it. verify() reads the head before it scans, so:
 *   - the head must verify, and records must exist up to head.seq, with record head.seq carrying
 *     exactly head.mac: a shorter log had records removed from its end; a different MAC means
 *     the end was removed and rewritten;
 *   - records after head.seq are normal (appends in flight) and are checked as chain only;
 *   - no head while records exist means it was deleted: the first writer into an empty log
 *     stores a genesis head (seq 0, the genesis MAC) before record 1, and no writer ever creates
 *     one otherwise, so a deleted head is never quietly recreated over a cut. (verify reads the
 *     head once more after a scan that began on an empty log, which may have filled meanwhile.)
 * A writer that finds a head that does not check out leaves it in place and reports it, so the
 * evidence is not overwritten by the next append. What the head cannot show: a head copied
 * earlier and put back together with the cut (or a whole old backup restored). Only an anchor
 * kept outside the database (the sink, or a head saved from verify) shows that.
 */
export class AuditLog {
  private readonly store: AuditStore;
  private readonly getMacKey: (keyId?: string) => AuditMacKey | undefined;
  private readonly maxBatch: number;
  private readonly maxConflicts: number;
  private readonly onConflict: ((seq: number) => void) | undefined;
  private readonly sink: AuditRecordSink | undefined;
  private readonly onHeadProblem: (problem: string) => void;
  private readonly queue: Pending[] = [];
  private draining = false;

  constructor(store: AuditStore, options: AuditLogOptions) {
    this.store = store;
    this.getMacKey = options.getMacKey;
    this.maxBatch = options.maxBatch ?? 100;
    this.maxConflicts = options.maxConflicts ?? 1000;
    this.onConflict = options.onConflict;
    this.sink = options.sink;
    this.onHeadProblem = options.onHeadProblem ?? (() => {});
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
   * the previous record; then the sealed head by the head rule (see the class). An anchor (a
   * head saved elsewhere earlier) must name a record that is still stored with that MAC.
   *
   * resealHead is the operator's way out after investigating a head problem (or after upgrading
   * from a seald that did not seal its head): when every record verifies (and the anchor holds),
   * the stored head is replaced by one sealed on the newest record, whatever it was. The caller
   * audits that it happened.
   */
  async verify(
    options: { anchor?: AuditHead; resealHead?: boolean } = {},
  ): Promise<AuditVerification> {
    const sodium = await loadSodium();
    const { anchor } = options;
    const keys = new Map<string, AuditMacKey | string>();
    const keyFor = (keyId: string): AuditMacKey | string => {
      let key = keys.get(keyId);
      if (key === undefined) {
        key = lookUpKey(this.getMacKey, keyId);
        keys.set(keyId, key);
      }
      return key;
    };
    // Read before the scan: the head only ever names a record stored before it was written, and
    // records are never removed, so every record up to it must be in a scan that starts later.
    let stored = await this.store.sealedHead();
    const sealed = stored && !("malformed" in stored) ? stored : undefined;
    let previous: AuditHead = { seq: 0, mac: genesisMac };
    let macAtHead: string | undefined;
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
      const key = keyFor(entry.keyId);
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
          problem: `record ${entry.seq} differs from the anchor given for it: the log was cut and rewritten from there`,
        };
      }
      if (entry.seq === sealed?.seq) macAtHead = entry.mac;
      previous = { seq: entry.seq, mac: entry.mac };
      count++;
    }
    const last = previous;
    if (anchor && anchor.seq > last.seq) {
      return {
        ok: false,
        seq: last.seq + 1,
        problem: `the log ends at record ${last.seq} but the anchor names record ${anchor.seq}: records were removed from the end`,
      };
    }
    // A log that was empty when the head was read may have gained its genesis head and first
    // records since: look once more. A head found now may name a record stored after the scan
    // passed; its stored MAC decides.
    const secondLook = stored === undefined && count > 0;
    if (secondLook) stored = await this.store.sealedHead();
    const headProblem = await this.checkStoredHead(
      sodium,
      stored,
      secondLook ? undefined : last,
      last,
      keyFor,
      (seq) =>
        seq === 0
          ? Promise.resolve(genesisMac)
          : sealed?.seq === seq
            ? Promise.resolve(macAtHead)
            : this.store.macAt(seq),
    );
    if (options.resealHead) {
      const key = this.getMacKey();
      if (!key) throw new Error("audit: no active MAC key");
      checkKey(key);
      await this.store.replaceHead(sealHead(sodium, last, key));
      const replacedHeadProblem = headProblem?.problem ?? "";
      return count === 0
        ? { ok: true, count, replacedHeadProblem }
        : { ok: true, count, head: last, replacedHeadProblem };
    }
    // A genesis head (seq 0) that does not check out is reported at record 1.
    if (headProblem) {
      return { ok: false, seq: Math.max(1, headProblem.seq), problem: headProblem.problem };
    }
    return count === 0 ? { ok: true, count } : { ok: true, count, head: last };
  }

  /**
   * The head rule's verdict on the stored head, given the last record of a scan that started
   * after the head was read (`scanned`; undefined for the second look, read after the scan), the
   * last record scanned in any case, and the stored MAC at a seq.
   */
  private async checkStoredHead(
    sodium: Sodium,
    stored: StoredHead | undefined,
    scanned: AuditHead | undefined,
    last: AuditHead,
    keyFor: (keyId: string) => AuditMacKey | string,
    macAt: (seq: number) => Promise<string | undefined>,
  ): Promise<{ seq: number; problem: string } | undefined> {
    if (stored === undefined) {
      if (last.seq === 0) return undefined;
      return {
        seq: last.seq,
        problem: `the head is missing while ${last.seq} records exist: it was deleted, so records may have been removed from the end`,
      };
    }
    if ("malformed" in stored) {
      return {
        seq: stored.seq ?? Math.max(last.seq, 1),
        problem: `the head is malformed: ${stored.malformed}`,
      };
    }
    const key = keyFor(stored.keyId);
    if (typeof key === "string") return { seq: stored.seq, problem: `the head's ${key}` };
    if (!sameHex(headMacWith(sodium, stored, key.key), stored.headMac)) {
      return {
        seq: stored.seq,
        problem: "the head's MAC does not verify: the head was edited or not written with its key",
      };
    }
    if (scanned !== undefined && stored.seq > scanned.seq) {
      return {
        seq: last.seq + 1,
        problem: `the head names record ${stored.seq} but the log ends at record ${last.seq}: records were removed from the end`,
      };
    }
    const mac = await macAt(stored.seq);
    if (mac === undefined) {
      return {
        seq: stored.seq,
        problem: `the head names record ${stored.seq}, which is not stored: records were removed from the end`,
      };
    }
    if (mac !== stored.mac) {
      return {
        seq: stored.seq,
        problem: `record ${stored.seq} is not the record the head names (its MAC differs): records were removed from the end and others written in their place`,
      };
    }
    return undefined;
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
      let key: AuditMacKey;
      try {
        // The head is read before every insert, never remembered from this log's own last write:
        // a writer that skips the read always beats one that must make it after losing a race,
        // and under steady load from one replica another could lose every time (measured: with
        // a remembered head the second of two busy writers got nothing in until the first
        // stopped). One indexed read per batch is the price of fairness.
        const newest = await this.store.head();
        const head = newest ?? { seq: 0, mac: genesisMac };
        const active = this.getMacKey();
        if (!active) throw new Error("audit: no active MAC key");
        checkKey(active);
        key = active;
        // The genesis head (seq 0) goes in before record 1, so that a head exists whenever a
        // record does; a head already there (another first writer's) is left alone.
        if (newest === undefined) await this.store.moveHead(undefined, sealHead(sodium, head, key));
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
      if (stored > 0) {
        const written = records.slice(0, stored);
        await this.advanceHead(sodium, written, key);
        let sinkError: unknown;
        try {
          await this.sink?.write(written);
        } catch (err) {
          sinkError = err ?? new Error("audit: the record sink failed");
        }
        // Fail closed: a call whose record the sink lacks is not answered. The records stay in
        // the database (they cannot be taken back), chained and covered by the head.
        for (let i = 0; i < stored; i++) {
          if (sinkError === undefined) pending[i]?.resolve(records[i] as AuditRecord);
          else pending[i]?.reject(sinkError);
        }
      }
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

  /**
   * Moves the sealed head forward to the last of `written` (just stored) by the head rule: only
   * from a head that checks out, by compare-and-set, and never creating one (the genesis head is
   * written before record 1). Never throws: the records are stored whatever happens here, and a
   * head left behind is moved by the next append (or, when it does not check out, reported and
   * left as evidence).
   */
  private async advanceHead(
    sodium: Sodium,
    written: readonly AuditRecord[],
    key: AuditMacKey,
  ): Promise<void> {
    const last = written.at(-1) as AuditRecord;
    const next = sealHead(sodium, last, key);
    try {
      // Each lost compare-and-set means another writer moved the head meanwhile; a few rounds
      // are enough to either pass it or see it already at or beyond this batch.
      for (let round = 0; round < 8; round++) {
        const stored = await this.store.sealedHead();
        if (stored === undefined) {
          this.onHeadProblem(
            `the audit head is missing while records exist (record ${last.seq} was just written); not recreating it, so that verify keeps reporting it`,
          );
          return;
        }
        if ("malformed" in stored) {
          this.onHeadProblem(`the audit head is malformed (${stored.malformed}); leaving it`);
          return;
        }
        if (stored.seq >= last.seq) {
          // Seqs are unique, so a head at one of this batch's seqs with another MAC can only
          // name a record that was removed before this batch took its place.
          const mine = written.find((r) => r.seq === stored.seq);
          if (mine && mine.mac !== stored.mac) {
            this.onHeadProblem(
              `the audit head names record ${stored.seq} with a MAC other than the record just written there: records were removed from the end of the log`,
            );
          }
          return;
        }
        const problem = await this.headProblem(sodium, stored);
        if (problem) {
          this.onHeadProblem(`${problem}; leaving the head where it is`);
          return;
        }
        if (await this.store.moveHead(stored, next)) return;
      }
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      this.onHeadProblem(`the audit head could not be moved to record ${last.seq}: ${detail}`);
    }
  }

  /** Why a stored head behind the newest record does not check out, or undefined when it does. */
  private async headProblem(sodium: Sodium, head: SealedHead): Promise<string | undefined> {
    const key = lookUpKey(this.getMacKey, head.keyId);
    if (typeof key === "string") return `the audit head's ${key}`;
    if (!sameHex(headMacWith(sodium, head, key.key), head.headMac)) {
      return "the audit head's MAC does not verify";
    }
    const mac = head.seq === 0 ? genesisMac : await this.store.macAt(head.seq);
    if (mac !== head.mac) {
      return `the audit head names record ${head.seq}, which is ${mac === undefined ? "not stored" : "stored with another MAC"}: records were removed from the end of the log`;
    }
    return undefined;
  }
}

/** An anchor's text form, "<seq>:<mac>" (what verify prints and the sink's seq and mac give). */
export function formatAnchor(head: AuditHead): string {
  return `${head.seq}:${head.mac}`;
}

/** Parses "<seq>:<mac>"; anything else is an invalid_argument error naming the field. */
export function parseAnchor(field: string, text: string): AuditHead {
  const match = /^([1-9][0-9]{0,15}):([0-9a-f]{64})$/.exec(text.trim());
  const seq = Number(match?.[1]);
  if (!match || !Number.isSafeInteger(seq)) {
    throw invalid([
      { field, message: "must be <seq>:<mac>, a record's seq and its 64 hex digit MAC" },
    ]);
  }
  return { seq, mac: match[2] as string };
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
