/**
 * The Sensu Go secrets API (/api/enterprise/secrets/v1), a translation of Sensu's wire format to
 * the domain services: each route parses, calls the secret or provider use cases, and renders.
 *
 * Order of checks, as on every entry point: the route must exist (404) and take the method (405,
 * with Allow); then authentication (401, or 429 for a refused address), then authorisation
 * (403, decided by the domain before it looks anything up), then existence (404).
 *
 * The router also answers every other path under /api/ (Sensu's API root) with Sensu's JSON 404,
 * since sensuctl reports an empty 404 as "unexpected end of JSON input"; and Sensu's top-level
 * GET /health and GET /version, which, as in Sensu, need no credentials: they say whether the
 * database answers and which API seald speaks, as /readyz and /openapi already do publicly.
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
 * - A DELETE does delete, a sealed secret too, with its history: Sensu's meaning, which sensuctl
 *   and the Ansible collection rely on; the delete permission is what guards the value.
 * - A PUT replaces what Sensu carries (labels, annotations, provider, id) and keeps what it does
 *   not (description, decrypters); the read-modify-write is a compare-and-set on the resource
 *   version, retried on a lost race, so a concurrent RPC update is never silently undone.
 * - Decrypting needs the caller in the secret's decrypters, which Sensu cannot express: set them
 *   through the RPC UpdateSecret (or the Grafana routes); later Sensu PUTs keep them.
 */

import type { Caller } from "../../auth/caller.js";
import { authenticateRequest } from "../../auth/gate.js";
import { DomainError, renamingFields } from "../../domain/errors.js";
import { collectUpTo } from "../../domain/paging.js";
import type {
  NodeRequest,
  NodeResponse,
  RequestRecord,
  RouteHandler,
} from "../../domain/request.js";
import { systemKeeper } from "../../domain/secret.js";
import { SelectorSyntaxError } from "../../domain/selector.js";
import type { DialectRules } from "../../service/secret-rules.js";
import { pathSegments, type RestDeps, readJson, sendJson } from "../common.js";
import { sendError } from "./errors.js";
import { providerRequirements, secretRequirements } from "./selector.js";
import { healthBody, versionBody } from "./status.js";
import { decodeProvider, decodeSecret, renderProvider, renderSecret } from "./wire.js";

export const sensuPrefix = "/api/enterprise/secrets/v1";

/** Sensu's API root: every path under it that no route serves is Sensu's JSON 404. */
const apiRoot = "/api/";

/** What the Sensu routes need: the dialects' dependencies and the database's readiness. */
export interface SensuDeps extends RestDeps {
  readonly readiness: { check(): Promise<boolean> };
}

/**
 * Whether a path is the Sensu router's: anything under /api/ (but not /api itself, which is
 * Kubernetes discovery's), and Sensu's /health and /version.
 */
export function sensuServes(path: string): boolean {
  return path.startsWith(apiRoot) || Object.hasOwn(publicRoutes, path);
}

/** What a route handler receives once the caller is authenticated. */
interface Context {
  readonly deps: SensuDeps;
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

/** Sensu's top-level routes, served without authentication (as Sensu serves them). */
const publicRoutes: Readonly<Record<string, Readonly<Record<string, PublicHandler>>>> = {
  "/health": { GET: health },
  "/version": { GET: version },
};

type PublicHandler = (deps: SensuDeps, res: NodeResponse) => Promise<void>;

/** Builds the Sensu routes. */
export function sensuRoutes(deps: SensuDeps): RouteHandler {
  return (req, res, request) => {
    serve(deps, req, res, request).catch((err: unknown) => {
      // serve answers every error itself; this is only for a failure while answering.
      deps.logger.error({ err }, "sensu route failed while answering");
      if (!res.headersSent) sendJson(res, 500, { message: "internal error", code: 0 });
    });
  };
}

async function serve(
  deps: SensuDeps,
  req: NodeRequest,
  res: NodeResponse,
  request: RequestRecord,
): Promise<void> {
  const raw = req.url ?? "/";
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const method = req.method ?? "GET";
  const publicRoute = Object.hasOwn(publicRoutes, path) ? publicRoutes[path] : undefined;
  if (publicRoute) {
    const handler = publicRoute[method];
    if (!handler) return notAllowed(res, method, publicRoute);
    return handler(deps, res);
  }
  const under = path === sensuPrefix || path.startsWith(`${sensuPrefix}/`);
  const segments = under ? pathSegments(path.slice(sensuPrefix.length)) : undefined;
  const found = segments && match(segments);
  if (!found) {
    sendJson(res, 404, { message: "not found", code: 2 });
    return;
  }
  const handler = found.route.methods[method];
  if (!handler) return notAllowed(res, method, found.route.methods);
  try {
    const caller = await authenticateRequest(
      deps,
      request,
      req.headers.authorization,
      ["Bearer", "Key"],
      `sensu:${method} ${found.route.template}`,
    );
    await handler({ deps, req, res, caller, query, params: found.params });
  } catch (err) {
    sendError(res, err, deps.logger, request, `${method} ${found.route.template}`);
  }
}

/** 405 with the route's methods in Allow. */
function notAllowed(res: NodeResponse, method: string, methods: Readonly<Record<string, unknown>>) {
  sendJson(
    res,
    405,
    { message: `method ${method} not allowed`, code: 1 },
    { allow: Object.keys(methods).join(", ") },
  );
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

/** Renames the domain's neutral field paths to Sensu's in a validation error. */
function sensuFields(err: unknown, paths: Readonly<Record<string, string>>): unknown {
  return renamingFields(err, (field) => {
    const base = /^[a-z_]+/.exec(field)?.[0] ?? "";
    const renamed = paths[base];
    return renamed ? renamed + field.slice(base.length) : field;
  });
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
const providerPaths = {
  name: "metadata.name",
  type: "type",
  labels: "metadata.labels",
  annotations: "metadata.annotations",
};
/** A list's `continue` parameter is the use cases' page token. */
const listPaths = { page_token: "continue" };

// --- secrets ---------------------------------------------------------------------------------

async function listSecrets(ctx: Context, namespace: string): Promise<void> {
  const { labels, fields } = selectors(() =>
    secretRequirements(ctx.query.getAll("labelSelector"), ctx.query.getAll("fieldSelector")),
  );
  // The RPC API's page token, so either side can continue a list the other started.
  const { items, nextPageToken } = await listing(() =>
    collectUpTo(
      limitOf(ctx.query),
      ctx.query.get("continue") ?? "",
      async (pageToken, pageSize) => {
        const page = await ctx.deps.secrets.list(ctx.caller, {
          namespace,
          labels,
          fields,
          pageToken,
          pageSize,
        });
        return { items: page.secrets, nextPageToken: page.nextPageToken };
      },
    ),
  );
  sendJson(ctx.res, 200, items.map(renderSecret), continueHeader(nextPageToken));
}

/** Runs a list, naming its page token by Sensu's name for it in errors. */
async function listing<T>(list: () => Promise<T>): Promise<T> {
  try {
    return await list();
  } catch (err) {
    throw sensuFields(err, listPaths);
  }
}

function continueHeader(nextPageToken: string): Record<string, string> {
  return nextPageToken ? { "sensu-continue": nextPageToken } : {};
}

async function getSecret(ctx: Context): Promise<void> {
  const secret = await ctx.deps.secrets.get(
    ctx.caller,
    param(ctx, "namespace"),
    param(ctx, "name"),
  );
  sendJson(ctx.res, 200, renderSecret(secret));
}

/** What a Sensu secret carries; description and decrypters, which it does not, are kept. */
const sensuSecretFields = ["labels", "annotations", "keeper", "ref"] as const;

/**
 * Sensu's one rule of its own: a secret it creates must name a provider, since a Sensu body
 * cannot carry the value that provider "system" (a value sealed by seald) needs.
 */
const sensuRules: DialectRules = (input, creating) =>
  creating && input.keeper === systemKeeper
    ? [
        {
          field: "keeper",
          message: `secret "${input.name}" does not exist, and provider "${systemKeeper}" means a value sealed by seald, which a Sensu body cannot carry: create it through the RPC API or the Grafana routes`,
        },
      ]
    : [];

async function putSecret(ctx: Context): Promise<void> {
  const put = decodeSecret(await readJson(ctx.req), {
    namespace: param(ctx, "namespace"),
    name: param(ctx, "name"),
  });
  try {
    // Creates, or replaces what Sensu carries; the use case retries lost races.
    await ctx.deps.secrets.update(
      ctx.caller,
      {
        namespace: put.namespace,
        name: put.name,
        labels: put.labels,
        annotations: put.annotations,
        description: "",
        decrypters: [],
        keeper: put.provider,
        ref: put.id,
        value: undefined,
      },
      { allowMissing: true, replace: sensuSecretFields, rules: sensuRules },
    );
  } catch (err) {
    throw sensuFields(err, secretPaths);
  }
  sendEmpty(ctx.res, 201);
}

async function deleteSecret(ctx: Context): Promise<void> {
  await ctx.deps.secrets.delete(ctx.caller, param(ctx, "namespace"), param(ctx, "name"));
  sendEmpty(ctx.res, 204);
}

// --- health and version --------------------------------------------------------------------

/**
 * Sensu's GET /health: 200 whenever the request reached seald, with the database's health in the
 * body. Sensu documents exactly this (its status code says that the request reached Sensu, not
 * that Sensu is healthy: clients read `ClusterHealth[].Healthy`); a probe that wants a status
 * code has /readyz, which is 503 while the database does not answer.
 */
async function health(deps: SensuDeps, res: NodeResponse): Promise<void> {
  const ready = await deps.readiness.check().catch(() => false);
  sendJson(res, 200, healthBody(ready), { "cache-control": "no-store" });
}

async function version(_deps: SensuDeps, res: NodeResponse): Promise<void> {
  sendJson(res, 200, versionBody());
}

// --- providers -------------------------------------------------------------------------------

async function listProviders(ctx: Context): Promise<void> {
  const { names, labels } = selectors(() =>
    providerRequirements(ctx.query.getAll("labelSelector"), ctx.query.getAll("fieldSelector")),
  );
  const { items, nextPageToken } = await listing(() =>
    collectUpTo(
      limitOf(ctx.query),
      ctx.query.get("continue") ?? "",
      async (pageToken, pageSize) => {
        const page = await ctx.deps.providers.list(ctx.caller, {
          names,
          labels,
          // Sensu's `types=Env&types=VaultProvider`: providers of any of these types.
          types: ctx.query.getAll("types"),
          pageToken,
          pageSize,
        });
        return { items: page.providers, nextPageToken: page.nextPageToken };
      },
    ),
  );
  sendJson(ctx.res, 200, items.map(renderProvider), continueHeader(nextPageToken));
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
export const sensuRouteTable: readonly { readonly method: string; readonly path: string }[] = [
  ...Object.values(routes as Record<string, Route>).flatMap((r) =>
    Object.keys(r.methods).map((method) => ({ method, path: `${sensuPrefix}${r.template}` })),
  ),
  ...Object.entries(publicRoutes).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => ({ method, path })),
  ),
];
