/**
 * AuditService RPC handlers: admins read and verify the audit trail.
 */
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AuditService as AuditServiceDesc } from "../../gen/secrets/v1/audit_service_pb.js";
import { type AuditLog, formatAnchor, parseAnchor } from "../auth/audit.js";
import type { Guard } from "../auth/guard.js";
import { adminActions } from "../auth/principal.js";
import { pageSize } from "../domain/paging.js";
import { callerOf } from "./context.js";

/** Builds the AuditService handlers. */
export function auditRpc(audit: AuditLog, guard: Guard): ServiceImpl<typeof AuditServiceDesc> {
  return {
    async listAuditEvents(req, ctx) {
      await guard.require(callerOf(ctx), adminActions.auditRead, "");
      const page = await audit.list(
        {
          ...(req.namespace ? { namespace: req.namespace } : {}),
          ...(req.principal ? { principal: req.principal } : {}),
          ...(req.action ? { action: req.action } : {}),
          ...(req.outcome ? { outcome: req.outcome } : {}),
          ...(req.startTime ? { since: timestampDate(req.startTime) } : {}),
          ...(req.endTime ? { until: timestampDate(req.endTime) } : {}),
        },
        {
          pageSize: pageSize("page_size", req.pageSize),
          ...(req.pageToken ? { pageToken: req.pageToken } : {}),
        },
      );
      return {
        events: page.records.map((r) => ({
          seq: BigInt(r.seq),
          time: timestampFromDate(r.time),
          principal: r.principal,
          action: r.action,
          namespace: r.namespace,
          name: r.name,
          outcome: r.outcome,
          requestId: r.requestId,
          remoteAddress: r.remoteAddress,
          reason: r.reason ?? "",
        })),
        nextPageToken: page.nextPageToken ?? "",
      };
    },
    async verifyAuditLog(req, ctx) {
      const caller = callerOf(ctx);
      // audit:read also covers resealing: only an admin binding ("*") holds it.
      await guard.require(caller, adminActions.auditRead, "");
      const anchor = req.anchor === "" ? undefined : parseAnchor("anchor", req.anchor);
      const result = await audit.verify({
        ...(anchor ? { anchor } : {}),
        ...(req.resealHead ? { resealHead: true } : {}),
      });
      if (!result.ok) return { ok: false, failedSeq: BigInt(result.seq), problem: result.problem };
      const head = result.head ? formatAnchor(result.head) : "";
      if (result.replacedHeadProblem !== undefined) {
        // Resealing accepts the log as it is: the chain itself keeps the record of that.
        await guard.record(
          caller,
          "audit:head.reseal",
          "",
          "",
          "success",
          `head resealed at ${head || "0"}; ${result.replacedHeadProblem || "the old head checked out"}`,
        );
      }
      return {
        ok: true,
        count: BigInt(result.count),
        head,
        replacedHeadProblem: result.replacedHeadProblem ?? "",
      };
    },
  };
}
