/**
 * The route label of a REST request for metrics and the request log: the template of the route
 * the dialect's router dispatches it to (".../namespaces/:namespace/secrets/:name"), so that no
 * label carries a namespace, secret or provider name, and a path no route matches is one label,
 * "unmatched", which says so without any of the path's names.
 * Built from the same route tables the routers and the OpenAPI tests use.
 */
import { grafanaRouteTable } from "./grafana/routes.js";
import { sensuRouteTable } from "./sensu/routes.js";

const templates = [...new Set([...sensuRouteTable, ...grafanaRouteTable].map((r) => r.path))].map(
  (path) => ({ path, segments: path.split("/") }),
);

/** The template matching this path ("unmatched" when none does), without the method. */
export function restRouteTemplate(path: string): string {
  const segments = path.split("/");
  const match = templates.find(
    (t) =>
      t.segments.length === segments.length &&
      t.segments.every((s, i) => s.startsWith(":") || s === segments[i]),
  );
  return match?.path ?? "unmatched";
}
