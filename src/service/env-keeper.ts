/**
 * External keepers: where values that seald does not seal itself are resolved. Today the `env`
 * keeper (Sensu's Env provider): it reads the service's environment, but only variables whose
 * names start with the configured prefix, so that seald's own configuration (master keys, the
 * bootstrap token) can never be read through it. With no prefix configured it resolves nothing.
 */
import { SecretValue } from "../crypto/secret-value.js";
import type { ExternalKeepers } from "./ports.js";

/** The env keeper over an environment snapshot and an allowlisted prefix. */
export class EnvKeepers implements ExternalKeepers {
  constructor(
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly prefix: string | undefined,
  ) {}

  async resolve(keeper: string, ref: string): Promise<SecretValue | { failure: string }> {
    if (keeper !== "env") return { failure: `no provider "${keeper}" can resolve values` };
    if (!this.prefix)
      return { failure: "the env provider is disabled (SEALD_ENV_PROVIDER_PREFIX is unset)" };
    if (!ref.startsWith(this.prefix))
      return { failure: `"${ref}" does not start with the allowed prefix` };
    const value = this.env[ref];
    if (value === undefined) return { failure: `environment variable "${ref}" is not set` };
    return SecretValue.fromString(value);
  }
}
