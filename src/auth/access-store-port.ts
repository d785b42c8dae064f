/**
 * The storage seald's access control needs, as an interface the domain owns; the MongoDB
 * implementation lives in src/store/access-store.ts.
 */
import type { Binding, PrincipalKind, Role } from "./principal.js";

/** A stored principal. */
export interface PrincipalRecord {
  readonly name: string;
  readonly kind: PrincipalKind;
  readonly displayName: string;
  readonly createTime: Date;
  readonly createdBy: string;
}

/** A stored role binding. */
export interface BindingRecord extends Binding {
  readonly principal: string;
  readonly role: Role;
  readonly createTime: Date;
}

/** A stored token: metadata and the keyed hash, never the token. */
export interface TokenRecord {
  readonly id: string;
  readonly principal: string;
  readonly kekId: string;
  readonly hash: string;
  readonly description: string;
  readonly createTime: Date;
  readonly expireTime?: Date | undefined;
  readonly revokeTime?: Date | undefined;
}

export interface AccessStore {
  /** Inserts a principal; false when the name is taken. */
  insertPrincipal(p: PrincipalRecord): Promise<boolean>;
  getPrincipal(name: string): Promise<PrincipalRecord | undefined>;
  /** Principals in name order after the given name. */
  listPrincipals(after: string | undefined, limit: number): Promise<PrincipalRecord[]>;
  /** Deletes a principal with its tokens and bindings; false when it did not exist. */
  deletePrincipal(name: string): Promise<boolean>;

  insertToken(t: TokenRecord): Promise<void>;
  /** The token whose hash matches one of the candidates (one per master key). */
  findTokenByHash(
    candidates: readonly { kekId: string; hash: string }[],
  ): Promise<TokenRecord | undefined>;
  getToken(id: string): Promise<TokenRecord | undefined>;
  /** Tokens newest first, of one principal or of all. */
  listTokens(principal: string | undefined): Promise<TokenRecord[]>;
  /** Sets the revoke time unless already set; returns the token as stored afterwards. */
  revokeToken(id: string, time: Date): Promise<TokenRecord | undefined>;

  /** Inserts a binding; false when it exists already. */
  insertBinding(b: BindingRecord): Promise<boolean>;
  /** Deletes a binding; false when it did not exist. */
  deleteBinding(b: Binding & { principal: string }): Promise<boolean>;
  listBindings(filter: { principal?: string; namespace?: string }): Promise<BindingRecord[]>;
  /** True when some principal holds the admin role in every namespace. */
  hasAdmin(): Promise<boolean>;
  /**
   * Stores the token under a new hash (made with another master key) and removes the old record;
   * used to move tokens to the active key as they are used.
   */
  rekeyToken(token: TokenRecord, next: { kekId: string; hash: string }): Promise<void>;
  /** Master key ids that stored token hashes were made with. */
  kekIdsInUse(): Promise<string[]>;
}
