/**
 * The Grafana dialect's discovery negotiation, as a pure function: which form an Accept header
 * gets. The HTTP behaviour around it is in grafana-discovery.test.ts.
 */
import { describe, expect, it } from "vitest";
import { aggregatedContentType, discoveryForm } from "../../src/rest/grafana/discovery.js";

const v2 = aggregatedContentType("v2");
const v2beta1 = aggregatedContentType("v2beta1");

describe("discoveryForm", () => {
  it("answers the legacy form when nothing asks for the aggregated one", () => {
    for (const accept of [undefined, "", "application/json", "*/*", "application/*", "text/html"]) {
      expect(discoveryForm(accept), String(accept)).toEqual({ aggregated: false });
    }
  });

  it("answers the aggregated version asked for first, as client-go and older kubectl send it", () => {
    expect(discoveryForm(`${v2},application/json`)).toEqual({ aggregated: true, version: "v2" });
    expect(discoveryForm(`${v2},${v2beta1},application/json`)).toEqual({
      aggregated: true,
      version: "v2",
    });
    expect(discoveryForm(`${v2beta1},application/json`)).toEqual({
      aggregated: true,
      version: "v2beta1",
    });
  });

  it("reads parameters in any order and case of names, with spaces", () => {
    expect(
      discoveryForm("Application/JSON ; AS=APIGroupDiscoveryList ; V=v2 ; G=apidiscovery.k8s.io"),
    ).toEqual({ aggregated: true, version: "v2" });
  });

  it("follows the order of preference: q first, then position; q=0 refuses", () => {
    expect(discoveryForm(`application/json,${v2}`)).toEqual({ aggregated: false });
    expect(discoveryForm(`application/json;q=0.9,${v2}`)).toEqual({
      aggregated: true,
      version: "v2",
    });
    expect(discoveryForm(`${v2};q=0,application/json`)).toEqual({ aggregated: false });
    expect(discoveryForm(`${v2};q=bogus,application/json`)).toEqual({ aggregated: false });
  });

  it("skips ranges it cannot answer and takes the next one", () => {
    const skipped = [
      "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
      "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList",
      "application/json;g=meta.k8s.io;v=v1;as=Table",
      "application/json;v=v2;as=APIGroupDiscoveryList",
    ];
    for (const first of skipped) {
      expect(discoveryForm(`${first},${v2beta1}`), first).toEqual({
        aggregated: true,
        version: "v2beta1",
      });
      expect(discoveryForm(first), first).toEqual({ aggregated: false });
    }
  });
});
