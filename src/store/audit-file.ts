/**
 * The audit record sink: every record, as it is appended, becomes one JSON line in a file (or on
 * stdout), the anchor outside the database. Vault's file audit device is the model: append-only,
 * one object per line, written before the request is answered, and a write that fails fails the
 * request.
 *
 * A line is {"type":"audit_record", seq, time, principal, action, namespace, name, outcome,
 * requestId, remoteAddress, reason?, prevMac, mac, keyId}: the stored record, so `seq` and `mac`
 * of any line are an anchor for `seald audit verify --anchor <seq>:<mac>`. Records hold no secret
 * value or token, so neither does the file. The "type" field tells the lines apart from the log
 * when the sink is stdout.
 *
 * Lines reach the operating system (write(2) on a file opened O_APPEND) before the append
 * resolves; there is no fsync per record, so a machine crash can lose the last lines, a process
 * crash cannot. After a failed write the file is closed and reopened by the next write, so a
 * full disk or a fixed permission recovers without a restart, and rotation by copy-and-truncate
 * works (a rename is followed only after a failure).
 */
import { type FileHandle, open } from "node:fs/promises";
import type { AuditRecordSink } from "../auth/audit.js";
import type { AuditRecord } from "../auth/audit-chain.js";

/** One record as its sink line (with the newline). */
export function auditLine(r: AuditRecord): string {
  return `${JSON.stringify({
    type: "audit_record",
    seq: r.seq,
    time: r.time.toISOString(),
    principal: r.principal,
    action: r.action,
    namespace: r.namespace,
    name: r.name,
    outcome: r.outcome,
    requestId: r.requestId,
    remoteAddress: r.remoteAddress,
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    prevMac: r.prevMac,
    mac: r.mac,
    keyId: r.keyId,
  })}\n`;
}

/** A sink appending to the file at path (created with mode 0600), opened now to fail early. */
export async function auditFileSink(
  path: string,
): Promise<AuditRecordSink & { close(): Promise<void> }> {
  let handle: FileHandle | undefined = await open(path, "a", 0o600);
  // Batches are written one after another (the audit log drains one batch at a time); the chain
  // keeps that order even if a caller ever overlaps writes.
  let tail: Promise<void> = Promise.resolve();
  const write = async (text: string): Promise<void> => {
    handle ??= await open(path, "a", 0o600);
    try {
      await handle.appendFile(text, "utf8");
    } catch (err) {
      const failed = handle;
      handle = undefined;
      await failed.close().catch(() => {});
      throw err;
    }
  };
  return {
    write(records) {
      const text = records.map(auditLine).join("");
      const done = tail.then(() => write(text));
      tail = done.catch(() => {});
      return done;
    },
    async close() {
      await tail;
      await handle?.close();
      handle = undefined;
    },
  };
}

/** A sink writing to stdout, which the log shares: each line is written whole, in one write. */
export function auditStdoutSink(stream: NodeJS.WritableStream = process.stdout): AuditRecordSink {
  return {
    write(records) {
      const text = records.map(auditLine).join("");
      return new Promise((resolve, reject) => {
        stream.write(text, (err) => (err ? reject(err) : resolve()));
      });
    },
  };
}
