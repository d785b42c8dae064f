/**
 * The Sensu selector grammar and its translation into domain requirements, as pure functions.
 * The end-to-end behaviour (the database evaluating them) is in sensu.test.ts.
 */
import { describe, expect, it } from "vitest";
import { SelectorSyntaxError } from "../../src/domain/selector.js";
import {
  parseSelector,
  providerRequirements,
  secretRequirements,
} from "../../src/rest/sensu/selector.js";

describe("Sensu selector parser", () => {
  it("parses every operator, lists, quotes and &&", () => {
    expect(
      parseSelector(
        `a == b && 'x y' != "p-q" && k in [v1, "v 2",v3] && k notin [] && n matches Foo && z in w`,
      ),
    ).toEqual([
      { key: "a", op: "==", values: ["b"], bare: false },
      { key: "x y", op: "!=", values: ["p-q"], bare: false },
      { key: "k", op: "in", values: ["v1", "v 2", "v3"], bare: false },
      { key: "k", op: "notin", values: [], bare: false },
      { key: "n", op: "matches", values: ["Foo"], bare: false },
      { key: "z", op: "in", values: ["w"], bare: true },
    ]);
    expect(parseSelector("")).toEqual([]);
    expect(parseSelector("   ")).toEqual([]);
    expect(parseSelector("app.kubernetes.io/name==web")).toEqual([
      { key: "app.kubernetes.io/name", op: "==", values: ["web"], bare: false },
    ]);
    // Keywords are case-insensitive; a key spelled like one must be quoted.
    expect(parseSelector("k NOTIN [a]")[0]?.op).toBe("notin");
    expect(parseSelector('"in" == x')[0]?.key).toBe("in");
    expect(() => parseSelector("in == x")).toThrow(SelectorSyntaxError);
  });

  it("names the position of the first problem", () => {
    const at = (text: string) => {
      try {
        parseSelector(text);
      } catch (err) {
        if (err instanceof SelectorSyntaxError) return err.position;
        throw err;
      }
      return -1;
    };
    expect(at("a === b")).toBe(4);
    expect(at("a == b &&& c == d")).toBe(9);
    expect(at("a in [b c]")).toBe(8);
    expect(at("a in [b,]")).toBe(8);
    expect(at("a in b]")).toBe(6);
    expect(at("a == 'b")).toBe(5);
    expect(at("a == b;")).toBe(6);
    expect(at("a == b && ")).toBe(10);
  });
});

describe("Sensu selector translation", () => {
  it("maps secret fields to the domain's, labels to label requirements", () => {
    expect(
      secretRequirements(
        ["region == eu && tier in [db, web]", "x matches y"],
        [
          "secret.provider == env && secret.id != APP_X",
          "secret.name notin [a] && secret.namespace matches ops",
          "secret.labels.team == red && vault in secret.provider",
        ],
      ),
    ).toEqual({
      labels: [
        { key: "region", op: "=", values: ["eu"] },
        { key: "tier", op: "in", values: ["db", "web"] },
        { key: "x", op: "matches", values: ["y"] },
        { key: "team", op: "=", values: ["red"] },
      ],
      fields: [
        { field: "keeper", op: "=", values: ["env"] },
        { field: "ref", op: "!=", values: ["APP_X"] },
        { field: "name", op: "notin", values: ["a"] },
        { field: "namespace", op: "matches", values: ["ops"] },
        { field: "keeper", op: "=", values: ["vault"] },
      ],
    });
  });

  it("turns unknown fields and impossible label keys into match-nothing or nothing at all", () => {
    const nothing = { field: "name", op: "in", values: [] };
    expect(secretRequirements([], ["secret.color == red"]).fields).toEqual([nothing]);
    expect(secretRequirements([], ["secret.color matches r"]).fields).toEqual([nothing]);
    expect(secretRequirements([], ["secret.color != red && secret.color notin [a]"])).toEqual({
      labels: [],
      fields: [],
    });
    expect(secretRequirements(['"a=b" == c'], [])).toEqual({ labels: [], fields: [nothing] });
    expect(secretRequirements(['"a=b" != c'], [])).toEqual({ labels: [], fields: [] });
    // A bare word that is not a field is a one-value list, as in Sensu.
    expect(secretRequirements([], ["secret.provider in env"]).fields).toEqual([
      { field: "keeper", op: "in", values: ["env"] },
    ]);
  });

  it("selects providers by name and by labels, with the secrets' label semantics", () => {
    expect(
      providerRequirements(["region != eu"], ["provider.name in [a,b] && provider.kind != x"]),
    ).toEqual({
      names: [{ op: "in", values: ["a", "b"] }],
      labels: [{ key: "region", op: "!=", values: ["eu"] }],
    });
    expect(
      providerRequirements(['"sensu.io/managed_by" == sensuctl'], ["provider.labels.team in [a]"]),
    ).toEqual({
      names: [],
      labels: [
        { key: "sensu.io/managed_by", op: "=", values: ["sensuctl"] },
        { key: "team", op: "in", values: ["a"] },
      ],
    });
    // An unknown field, or a label key holding "=", matches nothing with == and all with !=.
    expect(providerRequirements(['"a=b" == c'], ["provider.kind == x"])).toEqual({
      names: [
        { op: "in", values: [] },
        { op: "in", values: [] },
      ],
      labels: [],
    });
    expect(providerRequirements(['"a=b" != c'], [])).toEqual({ names: [], labels: [] });
    expect(providerRequirements([], ["env in provider.name"])).toEqual({
      names: [{ op: "=", values: ["env"] }],
      labels: [],
    });
  });
});
