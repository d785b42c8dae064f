/**
 * Authentication: credentials in an Authorization header become an AuthenticatedPrincipal, or a
 * DomainError "unauthenticated" saying whether they were missing or invalid.
 *
 * Successful lookups are cached for `cacheTtlMs` (1 s by default) so the hot path does not pay
 * three database reads per call. That bounds how long a revoked or expired token, a deleted
 * principal, or a removed role binding keeps working on a replica: at most that long. Failures
 * are never cached.
 */
import type { KeyRing } from "../crypto/keyring.js";
import { unauthenticated } from "../domain/errors.js";
import type { AccessStore } from "./access-store-port.js";
import type { AuthenticatedPrincipal } from "./principal.js";
import { candidateHashes, looksLikeToken, sameHash } from "./tokens.js";

/** The Authorization schemes a route accepts; the Sensu routes also take "Key". */
export type Scheme = "Bearer" | "Key";

/** Extracts the token from an Authorization header, or throws unauthenticated("missing"). */
export function credentialFrom(header: string | undefined, schemes: readonly Scheme[]): string {
  if (!header) throw unauthenticated("missing");
  const space = header.indexOf(" ");
  const scheme = space < 0 ? header : header.slice(0, space);
  const token = space < 0 ? "" : header.slice(space + 1).trim();
  // Schemes are case-insensitive (RFC 9110, section 11.1).
  if (!schemes.some((s) => s.toLowerCase() === scheme.toLowerCase()) || token === "") {
    throw unauthenticated("missing");
  }
  return token;
}

export interface AuthenticatorOptions {
  readonly cacheTtlMs?: number;
  readonly cacheSize?: number;
  readonly now?: () => number;
}

interface CacheEntry {
  readonly principal: AuthenticatedPrincipal;
  readonly hash: string;
  readonly until: number;
}

/** Resolves tokens to principals through the access store. */
export class Authenticator {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly ttl: number;
  private readonly size: number;
  private readonly now: () => number;

  constructor(
    private readonly store: AccessStore,
    private readonly ring: KeyRing,
    options: AuthenticatorOptions = {},
  ) {
    this.ttl = options.cacheTtlMs ?? 1000;
    this.size = options.cacheSize ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** The principal a token belongs to; throws unauthenticated("invalid") for any bad token. */
  async authenticate(token: string): Promise<AuthenticatedPrincipal> {
    // Anything not shaped like a token cannot match; skip the hashing and the database.
    if (!looksLikeToken(token) && token.length < 32) throw unauthenticated("invalid");
    const candidates = candidateHashes(this.ring, token);
    const active = candidates[0]?.hash ?? "";
    const now = this.now();
    const cached = this.cache.get(active);
    if (cached && cached.until > now && sameHash(cached.hash, active)) return cached.principal;

    const record = await this.store.findTokenByHash(candidates);
    const matched = record && candidates.find((c) => c.kekId === record.kekId);
    if (!record || !matched || !sameHash(record.hash, matched.hash))
      throw unauthenticated("invalid");
    if (record.revokeTime) throw unauthenticated("invalid");
    if (record.expireTime && record.expireTime.getTime() <= now) throw unauthenticated("invalid");

    // A token hashed under an older master key moves to the active one now that its plaintext is
    // at hand, so that the old key stops being needed (see GetKeyStatus).
    if (record.kekId !== this.ring.activeId) {
      await this.store.rekeyToken(record, { kekId: this.ring.activeId, hash: active });
    }
    const p = await this.store.getPrincipal(record.principal);
    if (!p) throw unauthenticated("invalid");
    const bindings = await this.store.listBindings({ principal: p.name });
    const principal: AuthenticatedPrincipal = {
      name: p.name,
      kind: p.kind,
      bindings: bindings.map((b) => ({ role: b.role, namespace: b.namespace })),
    };
    // Never cache past the token's own expiry.
    const until = Math.min(
      now + this.ttl,
      record.expireTime?.getTime() ?? Number.POSITIVE_INFINITY,
    );
    if (this.cache.size >= this.size) this.cache.delete(this.cache.keys().next().value ?? "");
    this.cache.set(active, { principal, hash: active, until });
    return principal;
  }

  /** Drops every cached lookup, so this replica's own changes apply at once. */
  invalidate(): void {
    this.cache.clear();
  }
}
