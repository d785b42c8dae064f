/**
 * The guard every use case calls first: it asks the policy, records a denial in the audit trail,
 * and turns it into a permission_denied error. Decisions come from authorize() alone.
 */
import type { AuditEvent } from "../auth/audit.js";
import type { Caller, RequestMeta } from "../auth/caller.js";
import { authorize, type SecretFacts } from "../auth/policy.js";
import type { Action } from "../auth/principal.js";
import { permissionDenied } from "./errors.js";

/** Where audit events go; resolves once the event is durably stored. */
export interface AuditSink {
  append(event: AuditEvent): Promise<unknown>;
}

type Outcome = AuditEvent["outcome"];

/** Authorises and audits on behalf of the use cases. */
export class Guard {
  constructor(
    private readonly audit: AuditSink,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Throws permission_denied (after auditing the denial) unless the policy allows the action. */
  async require(
    caller: Caller,
    action: Action,
    namespace: string,
    name = "",
    secret?: SecretFacts,
  ): Promise<void> {
    const decision = authorize(caller.principal, action, namespace, name, secret);
    if (decision.allowed) return;
    await this.record(caller, action, namespace, name, "denied", decision.reason);
    throw permissionDenied();
  }

  /** Appends one audit event for the caller (or an unauthenticated request). */
  async record(
    caller: Caller | RequestMeta,
    action: string,
    namespace: string,
    name: string,
    outcome: Outcome,
    reason?: string,
  ): Promise<void> {
    await this.audit.append({
      time: this.now(),
      principal: "principal" in caller ? caller.principal.name : "",
      action,
      namespace,
      name,
      outcome,
      requestId: caller.requestId,
      remoteAddress: caller.remoteAddress,
      ...(reason === undefined ? {} : { reason }),
    });
  }
}
