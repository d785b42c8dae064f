/**
 * Secret providers: the named, cluster-wide places that hold the values of secrets whose keeper
 * is not "system" (a secret's keeper names its provider, Sensu's `spec.provider`). seald can
 * resolve one provider type, `Env`; the provider `env` of that type exists by default and may be
 * deleted and created again, as in Sensu. A deleted provider leaves a tombstone, so the default
 * does not come back by itself on the next start.
 *
 * Reading providers needs only an authenticated caller (a provider holds a type and a name, no
 * secret material); creating, changing and deleting them is administration ("keys:write", which
 * only a binding in every namespace grants), because a provider decides where values come from.
 */
import type { Caller } from "../auth/caller.js";
import type { Guard } from "../auth/guard.js";
import { adminActions } from "../auth/principal.js";
import type { SecretValue } from "../crypto/secret-value.js";
import { notFound, Violations } from "../domain/errors.js";
import { pageSize, pageTokenCodec } from "../domain/paging.js";
import type { LabelRequirement } from "../domain/selector.js";
import type { ExternalKeepers } from "./ports.js";
import { checkLabels, defaultLimits } from "./secret-rules.js";
import { checkObjectName } from "./validation.js";

/** The provider types seald can resolve. */
export const supportedProviderTypes = ["Env"] as const;
export type ProviderType = (typeof supportedProviderTypes)[number];

/** The provider that exists by default. */
export const defaultProvider = { name: "env", type: "Env" } as const;

/** The keeper name of values sealed by seald itself; never a provider. */
const reservedNames = new Set(["system"]);

/** A provider as stored. */
export interface ProviderRecord {
  readonly name: string;
  readonly type: ProviderType;
  /** Labels and annotations, as every Sensu resource has (sensuctl adds `sensu.io/managed_by`). */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly createTime: Date;
  readonly updateTime: Date;
  /** Empty for the default provider, which nobody created. */
  readonly createdBy: string;
  readonly updatedBy: string;
}

/** A requirement on the provider's name (its one selectable field besides its labels). */
export interface ProviderRequirement {
  readonly op: "=" | "!=" | "in" | "notin" | "matches";
  readonly values: readonly string[];
}

export interface ProviderQuery {
  readonly names: readonly ProviderRequirement[];
  /** Requirements on the labels, with the secrets' semantics (a missing label passes `!=`). */
  readonly labels: readonly LabelRequirement[];
  /** Only providers of these types (Sensu's `types` parameter); every type when empty. */
  readonly types: readonly string[];
  /** Start after this name (keyset paging). */
  readonly after: string | undefined;
  readonly limit: number;
}

/** The storage providers need; the MongoDB implementation is src/store/provider-store.ts. */
export interface ProviderStore {
  /** Stores the record unless a record or a tombstone with its name exists. */
  insertIfAbsent(record: ProviderRecord): Promise<void>;
  get(name: string): Promise<ProviderRecord | undefined>;
  /** Live providers in name order; the requirements are evaluated by the database. */
  list(query: ProviderQuery): Promise<ProviderRecord[]>;
  /** Creates or replaces; keeps the original creation time and creator on replace. */
  put(record: ProviderRecord): Promise<"created" | "updated">;
  /** Replaces a live provider with a tombstone; false when there was none. */
  delete(name: string): Promise<boolean>;
}

/** A providers list's page token: the name the next page starts after. */
const providersPageToken = pageTokenCodec(
  { n: "string" },
  (t) => t.n,
  (name: string) => ({ n: name }),
);

/** What a put carries. */
export interface ProviderInput {
  readonly name: string;
  readonly type: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** Providers over a store; also the resolver of every keeper other than "system". */
export class ProviderUseCases implements ExternalKeepers {
  private defaults: Promise<void> | undefined;

  constructor(
    private readonly store: ProviderStore,
    private readonly guard: Guard,
    /** Resolves `env` references (the Env type's behaviour, with its prefix allowlist). */
    private readonly env: ExternalKeepers,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Lists one page of providers in name order. Errors name `page_token` and `page_size`. */
  async list(
    _caller: Caller,
    query: {
      readonly names: readonly ProviderRequirement[];
      readonly labels: readonly LabelRequirement[];
      readonly types?: readonly string[];
      readonly pageToken: string;
      readonly pageSize: number;
    },
  ): Promise<{ providers: ProviderRecord[]; nextPageToken: string }> {
    await this.ensureDefaults();
    const limit = pageSize("page_size", query.pageSize);
    const after = query.pageToken
      ? providersPageToken.decode("page_token", query.pageToken)
      : undefined;
    const found = await this.store.list({
      names: query.names,
      labels: query.labels,
      types: query.types ?? [],
      after,
      limit: limit + 1,
    });
    const page = found.slice(0, limit);
    const last = page.at(-1);
    return {
      providers: page,
      nextPageToken: found.length > limit && last ? providersPageToken.encode(last.name) : "",
    };
  }

  /** Reads one provider. */
  async get(_caller: Caller, name: string): Promise<ProviderRecord> {
    await this.ensureDefaults();
    const record = await this.store.get(name);
    if (!record) throw notFound("provider", name);
    return record;
  }

  /** Creates or replaces a provider; labels and annotations follow the secrets' rules. */
  async put(caller: Caller, input: ProviderInput): Promise<"created" | "updated"> {
    await this.guard.require(caller, adminActions.keysWrite, "", input.name);
    const v = new Violations();
    checkObjectName(v, "name", input.name);
    if (reservedNames.has(input.name)) {
      v.add("name", `"${input.name}" is reserved for values that seald seals itself`);
    }
    if (!(supportedProviderTypes as readonly string[]).includes(input.type)) {
      v.add(
        "type",
        `unsupported provider type "${input.type}"; supported: ${supportedProviderTypes.join(", ")}`,
      );
    }
    // The secrets' rules and default limits, so a label valid on a secret is valid here too.
    checkLabels(v, input, defaultLimits);
    v.throwIfAny();
    await this.ensureDefaults();
    const now = this.now();
    const outcome = await this.store.put({
      name: input.name,
      type: input.type as ProviderType,
      labels: { ...input.labels },
      annotations: { ...input.annotations },
      createTime: now,
      updateTime: now,
      createdBy: caller.principal.name,
      updatedBy: caller.principal.name,
    });
    await this.guard.record(
      caller,
      adminActions.keysWrite,
      "",
      input.name,
      "success",
      `${outcome === "created" ? "created" : "replaced"} provider of type ${input.type}`,
    );
    return outcome;
  }

  /** Deletes a provider; secrets that name it stay, and fail to resolve until it is back. */
  async delete(caller: Caller, name: string): Promise<void> {
    await this.guard.require(caller, adminActions.keysWrite, "", name);
    await this.ensureDefaults();
    if (!(await this.store.delete(name))) throw notFound("provider", name);
    await this.guard.record(
      caller,
      adminActions.keysWrite,
      "",
      name,
      "success",
      "deleted provider",
    );
  }

  async checkRef(keeper: string, ref: string, namespace: string): Promise<string | undefined> {
    await this.ensureDefaults();
    // A provider that does not exist (yet) resolves nothing; naming it is allowed, as in Sensu.
    if (!(await this.store.get(keeper))) return undefined;
    return this.env.checkRef(defaultProvider.name, ref, namespace);
  }

  async resolve(
    keeper: string,
    ref: string,
    namespace: string,
  ): Promise<SecretValue | { failure: string }> {
    await this.ensureDefaults();
    const provider = await this.store.get(keeper);
    if (!provider) return { failure: `secret provider "${keeper}" not found` };
    // Every Env provider reads the one environment, under the one prefix allowlist and the
    // namespace's scope within it.
    return this.env.resolve(defaultProvider.name, ref, namespace);
  }

  /** Creates the default provider once per database (a tombstone keeps it deleted). */
  private ensureDefaults(): Promise<void> {
    this.defaults ??= this.store
      .insertIfAbsent({
        ...defaultProvider,
        labels: {},
        annotations: {},
        createTime: this.now(),
        updateTime: this.now(),
        createdBy: "",
        updatedBy: "",
      })
      .catch((err: unknown) => {
        // Try again on the next call rather than remembering a failure.
        this.defaults = undefined;
        throw err;
      });
    return this.defaults;
  }
}
