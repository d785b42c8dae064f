/**
 * The env keeper (Sensu's Env provider): it reads the service's environment, but only variables
 * whose names start with the configured prefix, so that seald's own configuration (master keys,
 * the bootstrap token) can never be read through it, and only within the namespace's own scope,
 * so that a secret of one namespace can never name another namespace's variable. With no prefix
 * configured it resolves nothing.
 *
 * A namespace's scope is the prefix, the namespace's name upper-cased with every run of
 * characters other than letters and digits turned into one "_", and "__": with prefix "APP_",
 * namespace "team-a" may name APP_TEAM_A__DB_PASSWORD. The "__" ends the namespace's part, which
 * never holds "__" itself, so no namespace's scope contains another's ("APP_TEAM__" does not
 * cover "APP_TEAM_A__..."). Namespaces whose names differ only in case or punctuation ("team-a"
 * and "team_a") share a scope; the README says so.
 */
import { SecretValue } from "../crypto/secret-value.js";
import type { ExternalKeepers } from "./ports.js";

/** The start every variable named by a secret of `namespace` must have. */
export function envScope(prefix: string, namespace: string): string {
  return `${prefix}${namespace.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}__`;
}

/** The env keeper over an environment snapshot and an allowlisted prefix. */
export class EnvKeepers implements ExternalKeepers {
  constructor(
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly prefix: string | undefined,
  ) {}

  async checkRef(_keeper: string, ref: string, namespace: string): Promise<string | undefined> {
    // Without a prefix nothing resolves at all; there is no scope to hold a write to.
    if (!this.prefix) return undefined;
    const scope = envScope(this.prefix, namespace);
    if (ref.startsWith(scope)) return undefined;
    return `the env provider resolves only variables starting with "${scope}" for namespace "${namespace}"`;
  }

  async resolve(
    keeper: string,
    ref: string,
    namespace: string,
  ): Promise<SecretValue | { failure: string }> {
    if (keeper !== "env") return { failure: `no provider "${keeper}" can resolve values` };
    if (!this.prefix)
      return { failure: "the env provider is disabled (SEALD_ENV_PROVIDER_PREFIX is unset)" };
    if (!ref.startsWith(this.prefix))
      return { failure: `"${ref}" does not start with the allowed prefix` };
    // Checked at write time too; a record written before scopes existed, or edited in the
    // database, is refused here.
    if (!ref.startsWith(envScope(this.prefix, namespace)))
      return { failure: `"${ref}" is outside namespace "${namespace}"'s scope` };
    const value = this.env[ref];
    if (value === undefined) return { failure: `environment variable "${ref}" is not set` };
    return SecretValue.fromString(value);
  }
}
