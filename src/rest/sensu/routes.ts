/**
 * The Sensu Go secrets API (/api/enterprise/secrets/v1), a translation of Sensu's wire format to
 * the domain services: each route parses, calls SecretsService or ProvidersService, and renders.
 *
 * Order of checks, as on every entry point: the route must exist (404) and take the method (405,
 * with Allow); then authentication (401, or 429 for a refused address), then authorisation
 * (403, decided by the domain before it looks anything up), then existence (404).
 *
 * A Sensu secret is the resource the RPC API and the Grafana routes see: `spec.provider` is its
 * keeper and `spec.id` its ref. How the two worlds meet:
 * - A secret sealed by seald (keeper "system", created through the RPC API or the Grafana routes)
 *   is listed and read here with `provider: "system"` and an empty `id`.
 * - A PUT with provider "system" only updates an existing sealed secret's labels and annotations;
 *   it keeps the sealed value (a Sensu body cannot carry one). Naming a secret that does not
 *   exist is 400: create sealed secrets where a value can be sent.
 * - A PUT naming another provider over a sealed secret is 400 (the domain refuses to switch
 *   between a sealed value and a reference), so no Sensu PUT can destroy a sealed value.
 * - A PUT replaces what Sensu carries (labels, annotations, provider, id) and keeps what it does
 *   not (description, decrypters); the read-modify-write is a compare-and-set on the resource
 *   version, retried on a lost race, so a concurrent RPC update is never silently undone.
 * - Decrypting needs the caller in the secret's decrypters, which Sensu cannot express: set them
 *   through the RPC UpdateSecret (or the Grafana routes); later Sensu PUTs keep them.
 */

import type { Caller } from "../../auth/caller.js";
import { authenticateRequest } from "../../auth/gate.js";
import type { RequestHandler } from "../../server/listener.js";
import { DomainError, invalid } from "../../service/errors.js";
import { decodePageToken, encodePageToken, maxPageSize } from "../../service/paging.js";
import type { ListCursor } from "../../service/secret-store.js";
import { type SecretView, systemKeeper } from "../../service/secrets.js";
import { SelectorSyntaxError } from "../../service/selector.js";
import {
  type NodeRequest,
  type NodeResponse,
  pathSegments,
  type RestDeps,
  readJson,
  requestMeta,
  sendJson,
} from "../common.js";
import { sendError } from "./errors.js";
import { providerRequirements, secretRequirements } from "./selector.js";
import { decodeProvider, decodeSecret, renderProvider, renderSecret } from "./wire.js";

export const sensuPrefix = "/api/enterprise/secrets/v1";

/** What a route handler receives once the caller is authenticated. */
interface Context {
  readonly deps: RestDeps;
  readonly req: NodeRequest;
  readonly res: NodeResponse;
  readonly caller: Caller;
  readonly query: URLSearchParams;
  readonly params: Readonly<Record<string, string>>;
}

type Handler = (ctx: Context) => Promise<void>;

interface Route {
  /** The path template, for the audit record of a failed authentication. */
  readonly template: string;
  readonly methods: Readonly<Record<string, Handler>>;
}

/** Finds the route for the path segments after the prefix, with its parameters. */
function match(
  segments: readonly string[],
): { route: Route; params: Record<string, string> } | undefined {
  const [a, b, c, d, ...rest] = segments;
  if (rest.length > 0) return undefined;
  if (a === "namespaces" && b !== undefined && c === "secrets") {
    if (d === undefined) return { route: routes.namespaceSecrets, params: { namespace: b } };
    return { route: routes.secret, params: { namespace: b, name: d } };
  }
  if (c !== undefined) return undefined;
  if (a === "secrets" && b === undefined) return { route: routes.allSecrets, params: {} };
  if (a === "providers") {
    if (b === undefined) return { route: routes.providers, params: {} };
    return { route: routes.provider, params: { name: b } };
  }
  return undefined;
}

/** Builds the Sensu routes. */
export function sensuRoutes(deps: RestDeps): RequestHandler {
  return (req, res) => {
    serve(deps, req, res).catch((err: unknown) => {
      // serve answers every error itself; this is only for a failure while answering.
      deps.logger.error({ err }, "sensu route failed while answering");
      if (!res.headersSent) sendJson(res, 500, { message: "internal error", code: 0 });
    });
  };
}

async function serve(deps: RestDeps, req: NodeRequest, res: NodeResponse): Promise<void> {
  const meta = requestMeta(req);
  const raw = req.url ?? "/";
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const segments = pathSegments(path.slice(sensuPrefix.length));
  const found = segments && match(segments);
  if (!found) {
    sendJson(res, 404, { message: "not found", code: 2 });
    return;
  }
  const method = req.method ?? "GET";
  const handler = found.route.methods[method];
  if (!handler) {
    sendJson(
      res,
      405,
      { message: `method ${method} not allowed`, code: 1 },
      { allow: Object.keys(found.route.methods).join(", ") },
    );
    return;
  }
  try {
    const caller = await authenticateRequest(
      deps,
      meta,
      req.headers.authorization,
      ["Bearer", "Key"],
      `sensu:${method} ${found.route.template}`,
    );
    await handler({ deps, req, res, caller, query, params: found.params });
  } catch (err) {
    sendError(res, err, deps.logger, meta, `${method} ${found.route.template}`);
  }
}

const param = (ctx: Context, key: string): string => ctx.params[key] ?? "";

/** Sends 201 or 204 with no body. */
function sendEmpty(res: NodeResponse, status: 201 | 204): void {
  if (res.headersSent) return;
  // 204 carries no Content-Length (RFC 9110, section 8.6); 201 says its body is empty.
  res.writeHead(status, status === 201 ? { "content-length": "0" } : {});
  res.end();
}

/** Parses the selector parameters, turning a syntax error into Sensu's 400. */
function selectors<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof SelectorSyntaxError) {
      throw new DomainError("invalid_argument", `could not parse the operations: ${err.message}`);
    }
    throw err;
  }
}

/** Sensu's `limit`: a positive number caps the list; anything else (or nothing) means no limit. */
function limitOf(query: URLSearchParams): number | undefined {
  const text = query.get("limit") ?? "";
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n > 0 && Number.isSafeInteger(n) ? n : undefined;
}

/** Pages through a domain list until `limit` items (or the end); the domain caps each page. */
async function collect<T, C>(
  limit: number | undefined,
  first: C | undefined,
  page: (after: C | undefined, size: number) => Promise<{ items: T[]; next: C | undefined }>,
): Promise<{ items: T[]; next: C | undefined }> {
  const items: T[] = [];
  let after = first;
  for (;;) {
    const size = Math.min(maxPageSize, limit === undefined ? maxPageSize : limit - items.length);
    const got = await page(after, size);
    items.push(...got.items);
    if (got.next === undefined || (limit !== undefined && items.length >= limit)) {
      return { items, next: got.next };
    }
    after = got.next;
  }
}

/** Renames the domain's neutral field paths to Sensu's in a validation error. */
function sensuFields(err: unknown, paths: Readonly<Record<string, string>>): unknown {
  if (!(err instanceof DomainError) || err.code !== "invalid_argument" || !err.details.violations)
    return err;
  return invalid(
    err.details.violations.map((v) => {
      const base = /^[a-z_]+/.exec(v.field)?.[0] ?? "";
      const renamed = paths[base];
      return {
        field: renamed ? renamed + v.field.slice(base.length) : v.field,
        message: v.message,
      };
    }),
  );
}

const secretPaths = {
  name: "metadata.name",
  namespace: "metadata.namespace",
  labels: "metadata.labels",
  annotations: "metadata.annotations",
  keeper: "spec.provider",
  ref: "spec.id",
  // The domain names "value" when a write would turn a reference into a sealed value.
  value: "spec.provider",
};
const providerPaths = { name: "metadata.name", type: "type" };

// --- secrets ---------------------------------------------------------------------------------

async function listSecrets(ctx: Context, namespace: string): Promise<void> {
  const { labels, fields } = selectors(() =>
    secretRequirements(ctx.query.getAll("labelSelector"), ctx.query.getAll("fieldSelector")),
  );
  const token = ctx.query.get("continue") ?? "";
  // The same keyset cursor as ListSecrets' page_token, so either side can continue the other.
  const start = token
    ? decodePageToken("continue", token, { ns: "string", n: "string" })
    : undefined;
  const { items, next } = await collect<SecretView, ListCursor>(
    limitOf(ctx.query),
    start ? { namespace: String(start.ns), name: String(start.n) } : undefined,
    async (after, limit) => {
      const page = await ctx.deps.secrets.list(ctx.caller, {
        namespace,
        labels,
        fields,
        after,
        limit,
      });
      return { items: page.secrets, next: page.next };
    },
  );
  sendJson(
    ctx.res,
    200,
    items.map(renderSecret),
    next ? { "sensu-continue": encodePageToken({ ns: next.namespace, n: next.name }) } : {},
  );
}

async function getSecret(ctx: Context): Promise<void> {
  const secret = await ctx.deps.secrets.get(
    ctx.caller,
    param(ctx, "namespace"),
    param(ctx, "name"),
  );
  sendJson(ctx.res, 200, renderSecret(secret));
}

/** The secret, or undefined when it does not exist (after the domain authorised the read). */
async function find(ctx: Context, namespace: string, name: string) {
  try {
    return await ctx.deps.secrets.get(ctx.caller, namespace, name);
  } catch (err) {
    if (err instanceof DomainError && err.code === "not_found") return undefined;
    throw err;
  }
}

async function putSecret(ctx: Context): Promise<void> {
  const namespace = param(ctx, "namespace");
  const name = param(ctx, "name");
  const body = await readJson(ctx.req);
  // Reading first authorises (403 before any 400) and finds what a Sensu body does not carry.
  let existing = await find(ctx, namespace, name);
  const put = decodeSecret(body, { namespace, name });
  for (let attempt = 1; ; attempt++) {
    try {
      await writeSecret(ctx, put, existing);
      break;
    } catch (err) {
      // A lost race (created, changed or deleted meanwhile): read again and reapply.
      const raced =
        err instanceof DomainError &&
        (err.code === "conflict" ||
          err.code === "already_exists" ||
          (err.code === "not_found" && existing !== undefined));
      if (!raced || attempt >= 5) throw sensuFields(err, secretPaths);
      existing = await find(ctx, namespace, name);
    }
  }
  sendEmpty(ctx.res, 201);
}

async function writeSecret(
  ctx: Context,
  put: ReturnType<typeof decodeSecret>,
  existing: SecretView | undefined,
): Promise<void> {
  const input = {
    namespace: put.namespace,
    name: put.name,
    labels: put.labels,
    annotations: put.annotations,
    keeper: put.provider,
    ref: put.id,
    value: undefined,
  };
  if (!existing) {
    if (put.provider === systemKeeper) {
      throw new DomainError(
        "invalid_argument",
        `secret "${put.name}" does not exist, and provider "${systemKeeper}" means a value sealed by seald, which a Sensu body cannot carry: create it through the RPC API or the Grafana routes`,
      );
    }
    await ctx.deps.secrets.create(ctx.caller, { ...input, description: "", decrypters: [] });
    return;
  }
  // Sensu does not know description and decrypters: keep them.
  await ctx.deps.secrets.update(
    ctx.caller,
    { ...input, description: existing.description, decrypters: existing.decrypters },
    { expectedResourceVersion: existing.resourceVersion, allowMissing: false },
  );
}

async function deleteSecret(ctx: Context): Promise<void> {
  await ctx.deps.secrets.delete(ctx.caller, param(ctx, "namespace"), param(ctx, "name"));
  sendEmpty(ctx.res, 204);
}

// --- providers -------------------------------------------------------------------------------

async function listProviders(ctx: Context): Promise<void> {
  const names = selectors(() =>
    providerRequirements(ctx.query.getAll("labelSelector"), ctx.query.getAll("fieldSelector")),
  );
  const token = ctx.query.get("continue") ?? "";
  const start = token ? decodePageToken("continue", token, { n: "string" }) : undefined;
  const { items, next } = await collect(
    limitOf(ctx.query),
    start ? String(start.n) : undefined,
    async (after, limit) => {
      const page = await ctx.deps.providers.list(ctx.caller, { names, after, limit });
      return { items: page.providers, next: page.next };
    },
  );
  sendJson(
    ctx.res,
    200,
    items.map(renderProvider),
    next ? { "sensu-continue": encodePageToken({ n: next }) } : {},
  );
}

async function getProvider(ctx: Context): Promise<void> {
  sendJson(
    ctx.res,
    200,
    renderProvider(await ctx.deps.providers.get(ctx.caller, param(ctx, "name"))),
  );
}

async function putProvider(ctx: Context): Promise<void> {
  const put = decodeProvider(await readJson(ctx.req), { name: param(ctx, "name") });
  try {
    await ctx.deps.providers.put(ctx.caller, put);
  } catch (err) {
    throw sensuFields(err, providerPaths);
  }
  sendEmpty(ctx.res, 201);
}

async function deleteProvider(ctx: Context): Promise<void> {
  await ctx.deps.providers.delete(ctx.caller, param(ctx, "name"));
  sendEmpty(ctx.res, 204);
}

const routes = {
  namespaceSecrets: {
    template: "/namespaces/:namespace/secrets",
    methods: { GET: (ctx) => listSecrets(ctx, param(ctx, "namespace")) },
  },
  allSecrets: {
    template: "/secrets",
    // The empty namespace lists every namespace the caller may read, and only those.
    methods: { GET: (ctx) => listSecrets(ctx, "") },
  },
  secret: {
    template: "/namespaces/:namespace/secrets/:name",
    methods: { GET: getSecret, PUT: putSecret, DELETE: deleteSecret },
  },
  providers: { template: "/providers", methods: { GET: listProviders } },
  provider: {
    template: "/providers/:name",
    methods: { GET: getProvider, PUT: putProvider, DELETE: deleteProvider },
  },
} satisfies Record<string, Route>;

/**
 * Every method and path template (":param" segments) the router serves, read from the table the
 * router dispatches on, so the OpenAPI document's tests cannot drift from it.
 */
export const sensuRouteTable: readonly { readonly method: string; readonly path: string }[] =
  Object.values(routes as Record<string, Route>).flatMap((r) =>
    Object.keys(r.methods).map((method) => ({ method, path: `${sensuPrefix}${r.template}` })),
  );
