/**
 * seald's use cases wired as src/app.ts wires them, over the in-memory stores instead of MongoDB:
 * a real key ring and libsodium, the real audit log with its MAC chain, the real guard, policy
 * and authenticator. What the unit tier tests is therefore the use cases themselves; only the
 * storage is a stand-in (memory-stores.ts).
 */
import { randomUUID } from "node:crypto";
import { AuditLog } from "../../src/auth/audit.js";
import type { AuditRecord } from "../../src/auth/audit-chain.js";
import { Authenticator } from "../../src/auth/authenticate.js";
import type { Caller } from "../../src/auth/caller.js";
import { FailureAudit } from "../../src/auth/failure-audit.js";
import { Guard } from "../../src/auth/guard.js";
import type { Binding, PrincipalKind, Role } from "../../src/auth/principal.js";
import { FailureLimiter } from "../../src/auth/rate-limit.js";
import { deriveSubkey, type KeyRing, parseMasterKeys } from "../../src/crypto/keyring.js";
import { SecretValue } from "../../src/crypto/secret-value.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import { AccessUseCases } from "../../src/service/access.js";
import { bootstrapAdmin } from "../../src/service/bootstrap.js";
import { EnvKeepers } from "../../src/service/env-keeper.js";
import { KeyUseCases } from "../../src/service/key-admin.js";
import { ProviderUseCases } from "../../src/service/providers.js";
import { RewrapJob, type RewrapStore } from "../../src/service/rewrap.js";
import {
  defaultLimits,
  type SecretInput,
  type SecretLimits,
} from "../../src/service/secret-rules.js";
import { SecretUseCases } from "../../src/service/secrets.js";
import { masterKeyLine } from "./keys.js";
import {
  MemoryAccessStore,
  MemoryAuditStore,
  MemoryProviderStore,
  MemorySecretStore,
} from "./memory-stores.js";

/** The bootstrap admin's token in the unit tier (shaped like a real token). */
export const unitAdminToken = `seald_${"U".repeat(43)}`;

export interface MemorySealdOptions {
  /** Limits of the secrets use cases; the defaults otherwise. */
  readonly limits?: Partial<SecretLimits>;
  /** Values kept per secret, the current one included (SEALD_MAX_VERSIONS); 10 by default. */
  readonly maxVersions?: number;
  /** The environment the env provider reads, and the allowed prefix. */
  readonly env?: Readonly<Record<string, string>>;
  readonly envPrefix?: string;
  /** The clock of the use cases and the guard (namespace key grace periods, record times). */
  readonly now?: () => Date;
  /** How long a namespace's previous public key is accepted after a rotation; one day by default. */
  readonly publicKeyGraceMs?: number;
}

/** The use cases over in-memory stores, and the stores, for tests to look behind them. */
export interface MemorySeald {
  readonly ring: KeyRing;
  readonly stores: {
    readonly secrets: MemorySecretStore;
    readonly access: MemoryAccessStore;
    readonly audit: MemoryAuditStore;
    readonly providers: MemoryProviderStore;
  };
  readonly audit: AuditLog;
  readonly guard: Guard;
  readonly authenticator: Authenticator;
  readonly limiter: FailureLimiter;
  readonly anonymous: FailureLimiter;
  readonly failureAudit: FailureAudit;
  readonly secrets: SecretUseCases;
  readonly access: AccessUseCases;
  readonly providers: ProviderUseCases;
  readonly keys: KeyUseCases;
  /** The audit records stored so far, in seq order. */
  auditRecords(): AuditRecord[];
}

/**
 * The re-wrap job's storage is not faked: nothing in the unit tier runs the job, and a test that
 * starts it by mistake should fail loudly rather than pass against a stand-in.
 */
const noRewrapStore: RewrapStore = new Proxy({} as RewrapStore, {
  get: (_target, method) => () =>
    Promise.reject(new Error(`the unit tier has no re-wrap store (called ${String(method)})`)),
});

/** Builds seald's use cases over fresh in-memory stores, with a bootstrapped admin. */
export async function memorySeald(options: MemorySealdOptions = {}): Promise<MemorySeald> {
  await loadSodium();
  const ring = parseMasterKeys(masterKeyLine("unit", 9), "unit test keys");
  const stores = {
    secrets: new MemorySecretStore({ ring, maxVersions: options.maxVersions ?? 10 }),
    access: new MemoryAccessStore(),
    audit: new MemoryAuditStore(),
    providers: new MemoryProviderStore(),
  };
  const audit = new AuditLog(stores.audit, {
    getMacKey: (keyId = ring.activeId) => ({ keyId, key: deriveSubkey(ring, "audit", keyId) }),
  });
  const now = options.now ?? (() => new Date());
  const guard = new Guard(audit, now);
  const authenticator = new Authenticator(stores.access, ring);
  // Failures answer after a short delay (50 ms, then more); none of the unit tests waits long.
  const limiter = new FailureLimiter({ maxFailures: 10, windowMs: 60_000, delayStepMs: 1 });
  const anonymous = new FailureLimiter({ maxFailures: 100, windowMs: 60_000 });
  const failureAudit = new FailureAudit(guard, { windowMs: 60_000 });
  const access = new AccessUseCases(stores.access, ring, guard, authenticator);
  const providers = new ProviderUseCases(
    stores.providers,
    guard,
    new EnvKeepers(options.env ?? {}, options.envPrefix),
  );
  const secrets = new SecretUseCases({
    store: stores.secrets,
    ring,
    guard,
    keepers: providers,
    limits: { ...defaultLimits, ...options.limits },
    now,
  });
  const keys = new KeyUseCases({
    ring,
    guard,
    rewrap: new RewrapJob(noRewrapStore, ring),
    namespaceKeys: secrets.namespaceKeys,
    publicKeyGraceMs: options.publicKeyGraceMs ?? 86_400_000,
    now,
  });
  await bootstrapAdmin(stores.access, ring, unitAdminToken);
  return {
    ring,
    stores,
    audit,
    guard,
    authenticator,
    limiter,
    anonymous,
    failureAudit,
    secrets,
    access,
    providers,
    keys,
    auditRecords: () => stores.audit.records,
  };
}

/**
 * A caller as the edge hands it to the use cases once authentication succeeded: `bindings` as
 * "role@namespace" ("admin@*", "decrypter@team-a").
 */
/**
 * A write of the system-kept secret "db" of team-a, decryptable by billing, with the plaintext
 * "s3cret": what the unit tests start from, each replacing the fields it is about.
 */
export function secretInput(overrides: Partial<SecretInput> = {}): SecretInput {
  return {
    namespace: "team-a",
    name: "db",
    labels: {},
    annotations: {},
    description: "",
    decrypters: ["billing"],
    keeper: "",
    ref: "",
    value: { kind: "plaintext", value: SecretValue.fromString("s3cret") },
    ...overrides,
  };
}

export function callerOf(
  name: string,
  kind: PrincipalKind,
  ...bindings: `${Role}@${string}`[]
): Caller {
  return {
    requestId: randomUUID(),
    remoteAddress: "192.0.2.10",
    principal: {
      name,
      kind,
      bindings: bindings.map((b): Binding => {
        const at = b.indexOf("@");
        return { role: b.slice(0, at) as Role, namespace: b.slice(at + 1) };
      }),
    },
  };
}
