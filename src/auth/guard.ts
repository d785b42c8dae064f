/**
 * The guard every use case calls first: it asks the policy, records a denial in the audit trail,
 * and turns it into a permission_denied error. Decisions come from authorize() alone.
 */

import { permissionDenied } from "../domain/errors.js";
import type { RequestMeta } from "../domain/request.js";
import type { AuditEvent } from "./audit-chain.js";
import type { Caller } from "./caller.js";
import { authorize, type SecretFacts } from "./policy.js";
import type { Action } from "./principal.js";

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

  /** Appends one audit event for an authenticated caller. */
  record(
    caller: Caller,
    action: string,
    namespace: string,
    name: string,
    outcome: Outcome,
    reason?: string,
  ): Promise<void> {
    return this.append(caller.principal.name, caller, action, namespace, name, outcome, reason);
  }

  /** Appends one audit event for a request that has no authenticated principal. */
  recordAnonymous(
    origin: RequestMeta,
    action: string,
    outcome: Outcome,
    reason?: string,
  ): Promise<void> {
    return this.append("", origin, action, "", "", outcome, reason);
  }

  private async append(
    principal: string,
    origin: RequestMeta,
    action: string,
    namespace: string,
    name: string,
    outcome: Outcome,
    reason: string | undefined,
  ): Promise<void> {
    await this.audit.append({
      time: this.now(),
      principal,
      action,
      namespace,
      name,
      outcome,
      requestId: origin.requestId,
      remoteAddress: origin.remoteAddress,
      ...(reason === undefined ? {} : { reason }),
    });
  }
}
