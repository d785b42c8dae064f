/**
 * First start: a database with no admin gets a user "admin" bound to the admin role in every
 * namespace, with SEALD_BOOTSTRAP_TOKEN as its token or a generated one that is printed once.
 *
 * The token is stored before the binding that makes the database "have an admin", so a crash in
 * between leaves a database that bootstraps again on the next start rather than an admin nobody
 * can log in as. Two replicas racing on an empty database may each store a generated token;
 * both then work for the same admin (with a configured token there is nothing to race).
 */
import { randomBytes } from "node:crypto";
import type { AccessStore } from "../auth/access-store-port.js";
import { generateToken, hashToken } from "../auth/tokens.js";
import type { KeyRing } from "../crypto/keyring.js";

export const bootstrapAdminName = "admin";

export interface BootstrapResult {
  /** True when this call created the admin binding. */
  readonly created: boolean;
  /** The generated token, when one was generated; the caller prints it once. */
  readonly generatedToken?: string;
}

/** Creates the first admin when the database has none. */
export async function bootstrapAdmin(
  store: AccessStore,
  ring: KeyRing,
  configuredToken: string | undefined,
  now: () => Date = () => new Date(),
): Promise<BootstrapResult> {
  if (await store.hasAdmin()) return { created: false };
  await store.insertPrincipal({
    name: bootstrapAdminName,
    kind: "user",
    displayName: "Bootstrap administrator",
    createTime: now(),
    createdBy: "seald",
  });
  const secret = configuredToken ?? generateToken();
  const hash = hashToken(ring, secret);
  const existing = await store.findTokenByHash([hash]);
  if (!existing) {
    await store.insertToken({
      id: randomBytes(8).toString("hex"),
      principal: bootstrapAdminName,
      ...hash,
      description: "bootstrap",
      createTime: now(),
    });
  }
  const created = await store.insertBinding({
    principal: bootstrapAdminName,
    role: "admin",
    namespace: "*",
    createTime: now(),
  });
  return configuredToken === undefined && created
    ? { created, generatedToken: secret }
    : { created };
}
