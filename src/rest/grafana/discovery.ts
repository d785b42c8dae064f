/**
 * Kubernetes discovery for the Grafana dialect, so that kubectl and client-go's restmapper find
 * secret.grafana.app: /api, /apis, the group, its version, and /version, in the shapes of
 * k8s.io/apimachinery's metav1 and version packages, and the aggregated form
 * (apidiscovery.k8s.io APIGroupDiscoveryList) that kubectl 1.30+ asks for first.
 *
 * seald serves no core ("") group, so /api lists no versions. client-go accepts that in both
 * forms: from the legacy APIVersions it makes an empty group with no versions, from an aggregated
 * list with no items no group at all (discovery_client.go, downloadLegacy). It keeps the
 * aggregated resources only when /api and /apis both answer in the aggregated form, so both
 * negotiate through the same function.
 */
import { apiVersion, group, kind, resource, version } from "./wire.js";

/** The aggregated discovery versions seald answers in, newest first. */
const aggregatedVersions = ["v2", "v2beta1"] as const;
type AggregatedVersion = (typeof aggregatedVersions)[number];

/** The form a discovery answer takes: legacy (metav1) or aggregated in one version. */
export type DiscoveryForm = { readonly aggregated: false } | AggregatedForm;
interface AggregatedForm {
  readonly aggregated: true;
  readonly version: AggregatedVersion;
}

const legacy: DiscoveryForm = { aggregated: false };

/** The Content-Type of an aggregated discovery answer, parameters in client-go's order. */
export const aggregatedContentType = (v: AggregatedVersion) =>
  `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`;

/**
 * The form the Accept header asks for: its media ranges in order of preference (q, then their
 * order), the first that seald can answer winning. An aggregated range must name the group,
 * a version seald serves and the kind; plain JSON and wildcards mean the legacy form. A header
 * that names nothing seald serves (protobuf only, say) still gets the legacy JSON: answering 406
 * is the content negotiation item's (#15.5), and a discovery answer is better than none.
 */
export function discoveryForm(accept: string | undefined): DiscoveryForm {
  if (accept === undefined) return legacy;
  const ranges = accept
    .split(",")
    .map((text, index) => {
      const [type = "", ...rest] = text.split(";").map((p) => p.trim());
      const params = new Map<string, string>();
      for (const p of rest) {
        const eq = p.indexOf("=");
        if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
      }
      const q = Number(params.get("q") ?? "1");
      return { type: type.toLowerCase(), params, q: Number.isFinite(q) ? q : 0, index };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const r of ranges) {
    const wildcard = r.type === "*/*" || r.type === "application/*";
    if (!(wildcard || r.type === "application/json")) continue;
    const as = r.params.get("as");
    if (as === undefined) return legacy;
    const v = r.params.get("v");
    if (
      as === "APIGroupDiscoveryList" &&
      r.params.get("g") === "apidiscovery.k8s.io" &&
      aggregatedVersions.some((known) => known === v)
    ) {
      return { aggregated: true, version: v as AggregatedVersion };
    }
  }
  return legacy;
}

const preferred = { groupVersion: apiVersion, version };

/** GET /api, legacy form: seald serves no core group. */
export function apiVersions() {
  // Kubernetes always sends serverAddressByClientCIDRs; client-go ignores an empty one.
  return { kind: "APIVersions", versions: [], serverAddressByClientCIDRs: [] };
}

/** GET /apis/secret.grafana.app: the group and its one version. */
export function apiGroup() {
  return {
    kind: "APIGroup",
    apiVersion: "v1",
    name: group,
    versions: [preferred],
    preferredVersion: preferred,
  };
}

/** GET /apis, legacy form. */
export function apiGroupList() {
  const { kind: _kind, apiVersion: _apiVersion, ...g } = apiGroup();
  return { kind: "APIGroupList", apiVersion: "v1", groups: [g] };
}

/** GET /apis/secret.grafana.app/v1beta1: the one resource and the verbs actually served. */
export function apiResourceList(verbs: readonly string[]) {
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: apiVersion,
    resources: [
      {
        name: resource,
        singularName: "securevalue",
        namespaced: true,
        kind,
        verbs: [...verbs],
        // Grafana registers SecureValue without short names or categories (its kind and
        // ResourceInfo name only plural, singular and kind), so none are claimed here either.
      },
    ],
  };
}

/**
 * GET /api or /apis, aggregated form: for /api an empty list (no core group), for /apis the
 * group with its resource in every version served.
 */
export function aggregatedList(
  form: AggregatedForm,
  which: "api" | "apis",
  verbs: readonly string[],
) {
  const items =
    which === "api"
      ? []
      : [
          {
            metadata: { name: group, creationTimestamp: null },
            versions: [
              {
                version,
                resources: [
                  {
                    resource,
                    responseKind: { group, version, kind },
                    scope: "Namespaced",
                    singularResource: "securevalue",
                    verbs: [...verbs],
                  },
                ],
                freshness: "Current",
              },
            ],
          },
        ];
  return {
    kind: "APIGroupDiscoveryList",
    apiVersion: `apidiscovery.k8s.io/${form.version}`,
    metadata: {},
    items,
  };
}
