/**
 * The Grafana SecureValue API (/apis/secret.grafana.app/v1beta1), so Grafana's clients work
 * against seald unchanged. Translation only: parse the request, call the secrets use cases (with
 * Grafana's own rules from rules.ts), render a SecureValue or a Status.
 *
 * Order of checks: authentication first on every path, as Grafana's auth middleware runs before
 * its API server routes anything (so 401 precedes 404 and 405); then the route and method; then
 * the use cases, which authorise before they look anything up (403 before 404) and validate after
 * authorising (403 before 400 Invalid).
 */
import { randomInt } from "node:crypto";
import type { Caller } from "../../auth/caller.js";
import { authenticateRequest } from "../../auth/gate.js";
import { DomainError, invalid, MalformedRecordError } from "../../domain/errors.js";
import { collectUpTo } from "../../domain/paging.js";
import type {
  NodeRequest,
  NodeResponse,
  RequestRecord,
  RouteHandler,
} from "../../domain/request.js";
import type { SecretView } from "../../domain/secret.js";
import {
  type FieldRequirement,
  type LabelRequirement,
  parseFieldSelector,
  parseLabelSelector,
  SelectorSyntaxError,
} from "../../domain/selector.js";
import {
  BodyError,
  maxBodyBytes,
  pathSegments,
  type RestDeps,
  readJson,
  sendJson,
} from "../common.js";
import {
  aggregatedContentType,
  aggregatedList,
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersions,
  discoveryForm,
} from "./discovery.js";
import { grafanaRules } from "./rules.js";
import {
  type Answer,
  answerFor,
  badRequest,
  deletedStatus,
  type ErrorContext,
  failure,
  internalError,
  namespaceForbidden,
  unknownPath,
  type Verb,
} from "./status.js";
import {
  apiVersion,
  BadRequestError,
  group,
  listKind,
  parseSecureValue,
  resource,
  type SecureValueBody,
  type SecureValueList,
  toSecretInput,
  toSecureValue,
  version,
} from "./wire.js";

/**
 * Whether the router owns a path: the discovery roots kubectl and client-go read before anything
 * else (`/api` exactly, the core group `/api/v1` and all under it, `/apis` and all under it), so
 * that an unknown path beneath them is a Status 404 from this router. Every other path under
 * `/api/` is Sensu's (`/api/core/...`, `/api/enterprise/...`), and /version serves both dialects'
 * fields (src/rest/version.ts).
 */
export function grafanaServes(path: string): boolean {
  return (
    path === "/api" ||
    path === "/api/v1" ||
    path.startsWith("/api/v1/") ||
    path === "/apis" ||
    path.startsWith("/apis/")
  );
}

/** The group's own path. */
export const grafanaPrefix = `/apis/${group}`;

/** Field selector names, as Grafana's clients send them, and the fields they select. */
const selectableFields = {
  "metadata.name": "name",
  "metadata.namespace": "namespace",
  // Singular, as Grafana's Synthetic Monitoring client sends it; both mean "decrypters contain".
  "spec.decrypter": "decrypter",
  "spec.decrypters": "decrypter",
} as const;

/** Kubernetes' generateName alphabet: lowercase consonants and digits, so no words are spelt. */
const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789";
const suffixLength = 5;
/** Attempts at a free generated name before the AlreadyExists is reported. */
const generateAttempts = 3;

type Route =
  | { readonly kind: "core" }
  | { readonly kind: "groups" }
  | { readonly kind: "coreNamespace"; readonly name: string }
  | { readonly kind: "group" }
  | { readonly kind: "version" }
  | { readonly kind: "collection"; readonly namespace: string }
  | { readonly kind: "item"; readonly namespace: string; readonly name: string };

/** The Kubernetes verb of each method a route takes (discovery routes take GET only). */
const verbs: Record<Route["kind"], Readonly<Record<string, Verb | undefined>>> = {
  core: { GET: undefined },
  groups: { GET: undefined },
  coreNamespace: { GET: undefined },
  group: { GET: undefined },
  version: { GET: undefined },
  collection: { GET: "list", POST: "create" },
  item: { GET: "get", PUT: "update", DELETE: "delete" },
};

/** The path template (":param" segments) of each route kind, as match() reads paths. */
const templates: Record<Route["kind"], string> = {
  core: "/api",
  groups: "/apis",
  coreNamespace: "/api/v1/namespaces/:name",
  group: grafanaPrefix,
  version: `${grafanaPrefix}/${version}`,
  collection: `${grafanaPrefix}/${version}/namespaces/:namespace/${resource}`,
  item: `${grafanaPrefix}/${version}/namespaces/:namespace/${resource}/:name`,
};

/**
 * The resource's verbs for discovery, read from the verb table, so that discovery never claims
 * a verb the router does not serve (patch and watch are not served yet: #15.3, #15.4).
 */
const servedVerbs: readonly string[] = [
  ...new Set(
    [verbs.collection, verbs.item].flatMap((table) =>
      Object.values(table).filter((v): v is Verb => v !== undefined),
    ),
  ),
].sort();

/**
 * Every method and path template the router serves, read from the verb table it dispatches on,
 * so the OpenAPI document's tests cannot drift from it.
 */
export const grafanaRouteTable: readonly { readonly method: string; readonly path: string }[] = (
  Object.keys(verbs) as Route["kind"][]
).flatMap((k) => Object.keys(verbs[k]).map((method) => ({ method, path: templates[k] })));

/** An error that is already an answer (unknown route, wrong method, body too large). */
class AnswerError extends Error {
  constructor(readonly answer: Answer) {
    super("answer");
  }
}

type MutableContext = { -readonly [K in keyof ErrorContext]: ErrorContext[K] };

/** Builds the Grafana routes. */
export function grafanaRoutes(deps: RestDeps): RouteHandler {
  return (req, res, request) => {
    const ctx: MutableContext = {
      verb: undefined,
      namespace: "",
      name: "",
      generated: false,
      principal: "",
    };
    serve(deps, req, res, request, ctx).catch((err: unknown) => {
      send(res, toAnswer(deps, err, ctx));
    });
  };
}

async function serve(
  deps: RestDeps,
  req: NodeRequest,
  res: NodeResponse,
  request: RequestRecord,
  ctx: MutableContext,
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const route = match(url.pathname);
  const method = req.method ?? "GET";
  const routeVerbs = route ? verbs[route.kind] : undefined;
  ctx.verb = routeVerbs?.[method];
  if (route?.kind === "collection" || route?.kind === "item") {
    ctx.namespace = route.namespace;
    if (route.kind === "item") ctx.name = route.name;
  }
  const caller = await authenticateRequest(
    deps,
    request,
    req.headers.authorization,
    ["Bearer"],
    `grafana:${ctx.verb ?? method.toLowerCase()}`,
  );
  ctx.principal = caller.principal.name;

  if (!route || !routeVerbs) throw new AnswerError({ code: 404, body: unknownPath() });
  if (!Object.hasOwn(routeVerbs, method)) {
    const allow = Object.keys(routeVerbs).join(", ");
    throw new AnswerError({
      code: 405,
      body: failure(
        405,
        "MethodNotAllowed",
        `the server does not allow method ${method} here`,
        ctx,
      ),
      headers: { allow },
    });
  }

  switch (route.kind) {
    case "core":
    case "groups": {
      // The answer depends on Accept, so a cache must key on it.
      const form = discoveryForm(req.headers.accept);
      const vary = { vary: "Accept" };
      if (form.aggregated) {
        const which = route.kind === "core" ? "api" : "apis";
        return send(res, {
          code: 200,
          body: aggregatedList(form, which, servedVerbs),
          headers: { ...vary, "content-type": aggregatedContentType(form.version) },
        });
      }
      const body = route.kind === "core" ? apiVersions() : apiGroupList();
      return send(res, { code: 200, body, headers: vary });
    }
    case "coreNamespace":
      return send(res, {
        code: 403,
        body: namespaceForbidden(route.name, caller.principal.name),
      });
    case "group":
      return send(res, { code: 200, body: apiGroup() });
    case "version":
      return send(res, { code: 200, body: apiResourceList(servedVerbs) });
    case "collection": {
      if (method === "GET") {
        const watch = url.searchParams.get("watch");
        if (watch === "true" || watch === "1") {
          // Not served yet: a 405 Status, which client-go reports as such, rather than a list
          // it would fail to decode as a watch stream.
          throw new AnswerError({
            code: 405,
            body: failure(405, "MethodNotAllowed", "watch is not supported on securevalues", ctx),
          });
        }
        const list = await listSecureValues(deps, caller, route.namespace, url.searchParams);
        return send(res, { code: 200, body: list });
      }
      const created = await createSecureValue(deps, caller, route.namespace, req, ctx);
      return send(res, { code: 201, body: toSecureValue(created) });
    }
    case "item": {
      if (method === "GET") {
        const got = await deps.secrets.get(caller, route.namespace, route.name);
        return send(res, { code: 200, body: toSecureValue(got) });
      }
      if (method === "PUT") {
        const updated = await replaceSecureValue(deps, caller, route.namespace, route.name, req);
        return send(res, { code: 200, body: toSecureValue(updated) });
      }
      const precondition = await deletePrecondition(req);
      await deps.secrets.delete(caller, route.namespace, route.name, precondition);
      return send(res, { code: 200, body: deletedStatus(route.name) });
    }
  }
}

async function createSecureValue(
  deps: RestDeps,
  caller: Caller,
  namespace: string,
  req: NodeRequest,
  ctx: MutableContext,
): Promise<SecretView> {
  const body = await readSecureValue(req);
  try {
    checkNamespace(body, namespace);
    ctx.generated = body.name === "" && body.generateName !== "";
    for (let attempt = 1; ; attempt++) {
      const name = ctx.generated ? body.generateName + randomSuffix() : body.name;
      ctx.name = name;
      try {
        return await deps.secrets.create(
          caller,
          toSecretInput(body, namespace, name),
          grafanaRules,
        );
      } catch (err) {
        // A generated name that happens to be taken is retried, as Kubernetes does.
        const taken = err instanceof DomainError && err.code === "already_exists";
        if (!(taken && ctx.generated && attempt < generateAttempts)) throw err;
      }
    }
  } finally {
    body.value?.dispose();
  }
}

async function replaceSecureValue(
  deps: RestDeps,
  caller: Caller,
  namespace: string,
  name: string,
  req: NodeRequest,
): Promise<SecretView> {
  const body = await readSecureValue(req);
  try {
    checkNamespace(body, namespace);
    if (body.name !== "" && body.name !== name) {
      throw new BadRequestError(
        `the name of the object (${body.name}) does not match the name on the URL (${name})`,
      );
    }
    // PUT replaces but never creates: Grafana answers 404 for a missing name.
    return await deps.secrets.update(caller, toSecretInput(body, namespace, name), {
      expectedResourceVersion: body.resourceVersion,
      allowMissing: false,
      rules: grafanaRules,
    });
  } finally {
    body.value?.dispose();
  }
}

async function listSecureValues(
  deps: RestDeps,
  caller: Caller,
  namespace: string,
  query: URLSearchParams,
): Promise<SecureValueList> {
  const labels = selector<LabelRequirement[]>("labelSelector", () =>
    parseLabelSelector(query.get("labelSelector") ?? ""),
  );
  const fields = selector<FieldRequirement[]>("fieldSelector", () =>
    parseFieldSelector(query.get("fieldSelector") ?? "", selectableFields),
  );
  const limitText = query.get("limit") ?? "";
  if (limitText !== "" && !/^\d{1,9}$/.test(limitText)) {
    throw new BadRequestError(
      `limit must be a non-negative integer, not ${JSON.stringify(limitText)}`,
    );
  }
  // Kubernetes: no limit (or 0) means every item; a limit gets at most that many and a continue
  // token when more remain.
  const limit = Number(limitText || "0");
  let page: { items: SecretView[]; nextPageToken: string };
  try {
    page = await collectUpTo(
      limit === 0 ? undefined : limit,
      query.get("continue") ?? "",
      async (pageToken, pageSize) => {
        const got = await deps.secrets.list(caller, {
          namespace,
          labels,
          fields,
          pageToken,
          pageSize,
        });
        return { items: got.secrets, nextPageToken: got.nextPageToken };
      },
    );
  } catch (err) {
    // The continue token is the use cases' page token; say what is wrong with it in Kubernetes'
    // words (a BadRequest), as the API server does.
    const problem =
      err instanceof DomainError
        ? err.details.violations?.find((v) => v.field === "page_token")
        : undefined;
    if (problem) throw new BadRequestError(`the continue token ${problem.message}`);
    throw err;
  }
  return {
    apiVersion,
    kind: listKind,
    metadata: {
      // seald keeps no collection-wide revision to report. Kubernetes clients expect a list to
      // carry one, opaque like every resourceVersion; the time the list was served is honest.
      resourceVersion: String(Date.now()),
      ...(page.nextPageToken ? { continue: page.nextPageToken } : {}),
    },
    items: page.items.map(toSecureValue),
  };
}

function selector<T>(parameter: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof SelectorSyntaxError) {
      throw new BadRequestError(`unable to parse ${parameter}: ${err.message}`);
    }
    throw err;
  }
}

/** Reads and parses a SecureValue body. */
async function readSecureValue(req: NodeRequest): Promise<SecureValueBody> {
  return parseSecureValue(await readBody(req));
}

/** Reads a JSON body; a malformed one never has its text echoed back. */
async function readBody(req: NodeRequest): Promise<unknown> {
  try {
    return await readJson(req);
  } catch (err) {
    if (!(err instanceof BodyError)) throw err;
    if (err.kind === "too_large") {
      throw new AnswerError({
        code: 413,
        body: failure(
          413,
          "RequestEntityTooLarge",
          `the request body is larger than ${maxBodyBytes} bytes`,
          { name: "" },
        ),
      });
    }
    // A string that is not text is an invalid field: one cause names it (never its text).
    if (err.kind === "not_text") {
      throw invalid([{ field: err.field || "body", message: err.detail }]);
    }
    // The parser's own message quotes the text around the error, which may be spec.value.
    throw new BadRequestError(
      err.kind === "too_deep" ? err.message : "the request body is not valid JSON",
    );
  }
}

/**
 * The resourceVersion precondition of a DELETE's DeleteOptions body, as Kubernetes clients send
 * it; a DELETE without a body (the documented request) has none.
 */
async function deletePrecondition(req: NodeRequest): Promise<string> {
  const length = Number(req.headers["content-length"] ?? "0");
  if (!(length > 0) && req.headers["transfer-encoding"] === undefined) return "";
  const body = await readBody(req);
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new BadRequestError("the request body must be a JSON object (DeleteOptions)");
  }
  const preconditions = (body as { preconditions?: unknown }).preconditions;
  if (preconditions === undefined || preconditions === null) return "";
  if (typeof preconditions !== "object" || Array.isArray(preconditions)) {
    throw new BadRequestError("preconditions must be a JSON object");
  }
  const rv = (preconditions as { resourceVersion?: unknown }).resourceVersion;
  if (rv === undefined || rv === null) return "";
  if (typeof rv !== "string") {
    throw new BadRequestError("preconditions.resourceVersion must be a string");
  }
  return rv;
}

function checkNamespace(body: SecureValueBody, namespace: string): void {
  if (body.namespace !== "" && body.namespace !== namespace) {
    throw new BadRequestError(
      `the namespace of the provided object (${body.namespace}) does not match the namespace sent on the request (${namespace})`,
    );
  }
}

function randomSuffix(): string {
  let s = "";
  for (let i = 0; i < suffixLength; i++) s += suffixAlphabet[randomInt(suffixAlphabet.length)];
  return s;
}

function match(pathname: string): Route | undefined {
  const segments = pathSegments(pathname);
  if (segments === undefined) return undefined;
  if (segments.length === 1) {
    if (segments[0] === "api") return { kind: "core" };
    if (segments[0] === "apis") return { kind: "groups" };
  }
  if (segments.length === 4 && segments[0] === "api" && segments[1] === "v1") {
    const [, , namespaces, name] = segments;
    if (namespaces === "namespaces" && name !== undefined) return { kind: "coreNamespace", name };
  }
  if (segments[0] !== "apis" || segments[1] !== group) return undefined;
  const rest = segments.slice(2);
  if (rest.length === 0) return { kind: "group" };
  if (rest[0] !== version) return undefined;
  if (rest.length === 1) return { kind: "version" };
  const [namespaces, namespace, collection, name, ...extra] = rest.slice(1);
  if (namespaces !== "namespaces" || namespace === undefined || collection !== resource) {
    return undefined;
  }
  if (extra.length > 0) return undefined;
  return name === undefined ? { kind: "collection", namespace } : { kind: "item", namespace, name };
}

function toAnswer(deps: RestDeps, err: unknown, ctx: ErrorContext): Answer {
  if (err instanceof AnswerError) return err.answer;
  if (err instanceof BadRequestError) return badRequest(err.message, ctx);
  if (err instanceof MalformedRecordError) {
    deps.logger.error(
      { verb: ctx.verb, namespace: ctx.namespace, problem: err.problem },
      err.message,
    );
  }
  if (err instanceof DomainError) return answerFor(err, ctx);
  deps.logger.error({ err, verb: ctx.verb, namespace: ctx.namespace }, "grafana request failed");
  return internalError(ctx);
}

function send(res: NodeResponse, answer: Answer): void {
  sendJson(res, answer.code, answer.body, {
    "content-type": "application/json; charset=UTF-8",
    ...answer.headers,
  });
}
