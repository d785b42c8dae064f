/**
 * Results: one cell per (dataset, protocol, operation, concurrency), ratios to floors, the table
 * and the targets checked against what was measured.
 */
import type { LoadResult } from "./load.js";

export interface Cell extends Partial<LoadResult> {
  /** Secrets in the dataset, or null for the no-op cells. */
  readonly dataset: number | null;
  /** "grpc", "connect-json", "sensu", "grafana", or a floor: "driver", "grpc-js", "connect-node". */
  readonly via: string;
  readonly op: string;
  readonly concurrency: number;
  /** The cell this one is compared with (same dataset and concurrency), as "via op". */
  readonly floor?: string | undefined;
  /** Why the cell did not run. */
  skipped?: string;
  serverCpuMsPerCall?: number;
  dbCpuMsPerCall?: number;
  clientCpuMsPerCall?: number;
  serverRssMb?: number;
  auditRecords?: number;
  ratio?: number;
  note?: string;
}

export const key = (via: string, op: string) => `${via} ${op}`;

/** Fills in each cell's ratio to its floor's throughput. */
export function computeRatios(cells: Cell[]): void {
  for (const c of cells) {
    if (!c.floor || c.throughput === undefined) continue;
    const f = find(cells, c.dataset, c.floor, c.concurrency);
    if (f?.throughput) c.ratio = c.throughput / f.throughput;
  }
}

export function find(
  cells: readonly Cell[],
  dataset: number | null,
  what: string,
  concurrency: number,
): Cell | undefined {
  return cells.find(
    (c) =>
      c.dataset === dataset &&
      key(c.via, c.op) === what &&
      c.concurrency === concurrency &&
      c.skipped === undefined,
  );
}

const fmt = (n: number | undefined, digits = 1) =>
  n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits);
const fmtRate = (n: number | undefined) =>
  n === undefined || Number.isNaN(n) ? "-" : n >= 100 ? n.toFixed(0) : n.toFixed(1);

/** The results table, one line per cell. */
export function table(cells: readonly Cell[]): string {
  const header = [
    "dataset",
    "via",
    "operation",
    "c",
    "calls/s",
    "xfloor",
    "floor",
    "p50 ms",
    "p99 ms",
    "p99/p50",
    "srv cpu ms",
    "db cpu ms",
    "calls",
    "err",
  ];
  const rows = cells.map((c) => {
    if (c.skipped !== undefined) {
      return [
        c.dataset === null ? "no-op" : String(c.dataset),
        c.via,
        c.op,
        String(c.concurrency),
        `skipped: ${c.skipped}`,
      ];
    }
    return [
      c.dataset === null ? "no-op" : String(c.dataset),
      c.via,
      c.op,
      String(c.concurrency),
      fmtRate(c.throughput),
      c.ratio === undefined ? "" : fmt(c.ratio, 2),
      c.floor ?? "",
      fmt(c.p50Ms, 2),
      fmt(c.p99Ms, 2),
      c.p50Ms && c.p99Ms ? fmt(c.p99Ms / c.p50Ms, 1) : "-",
      fmt(c.serverCpuMsPerCall, 3),
      fmt(c.dbCpuMsPerCall, 3),
      String(c.calls ?? 0),
      String(c.errors ?? 0),
    ];
  });
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r.length > 5 || i < 4 ? (r[i]?.length ?? 0) : 0))),
  );
  const line = (r: string[]) =>
    r.length <= 5
      ? r
          .slice(0, 4)
          .map((v, i) => v.padEnd(widths[i] ?? 0))
          .concat(r[4] ?? "")
          .join("  ")
      : r
          .map((v, i) => (i < 3 || i === 6 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0)))
          .join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | null;
}

/** The targets, checked against the cells (null: not measured in this run). */
export function checkTargets(cells: readonly Cell[], sizes: readonly number[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const small = Math.min(...sizes);
  const large = Math.max(...sizes);
  const ratioAt = (dataset: number | null, what: string, c: number) =>
    find(cells, dataset, what, c)?.ratio;
  const push = (target: string, value: number | undefined, threshold: number, show: string) =>
    checks.push({
      target,
      measured: value === undefined ? "not measured" : show,
      met: value === undefined ? null : value >= threshold,
    });

  // At concurrency 16 where both cells ran; otherwise at 1 (said so), since on a large
  // FerretDB dataset a pipeline of 16 calls of seconds each is skipped.
  const at16or1 = (dataset: number, what: string) => {
    for (const c of [16, 1]) {
      const cell = find(cells, dataset, what, c);
      if (cell?.ratio !== undefined) return { c, ratio: cell.ratio };
    }
    return undefined;
  };
  for (const size of sizes) {
    for (const [op, threshold, floor] of [
      ["GetSecret", 0.8, "the raw driver"],
      ["DecryptSecrets(1)", 0.7, "driver + envelope open"],
    ] as const) {
      const r = at16or1(size, key("grpc", op));
      push(
        `gRPC ${op} c16 >= ${threshold} of ${floor} (${size} secrets)`,
        r?.ratio,
        threshold,
        r ? `${fmt(r.ratio, 2)}${r.c === 16 ? "" : " (at c1: c16 not run)"}` : "",
      );
    }
  }
  for (const c of [16, 64]) {
    const noop = ratioAt(null, key("grpc", "Health/Check"), c);
    push(`gRPC no-op (Health/Check) c${c} >= 0.9 of bare grpc-js`, noop, 0.9, `${fmt(noop, 2)}`);
    const nf = ratioAt(null, key("grpc", "Health/Check NotFound"), c);
    push(
      `gRPC no-op without I/O (Health/Check NotFound) c${c} >= 0.9 of bare grpc-js`,
      nf,
      0.9,
      `${fmt(nf, 2)}`,
    );
  }
  if (large !== small) {
    for (const op of ["GetSecret", "DecryptSecrets(1)"]) {
      for (const c of [16, 1]) {
        const a = find(cells, small, key("grpc", op), c)?.throughput;
        const b = find(cells, large, key("grpc", op), c)?.throughput;
        if (!a || !b) continue;
        const r = b / a;
        push(
          `gRPC ${op} with ${large} secrets within 10% of ${small} (c${c})`,
          r,
          0.9,
          `${fmt(b, 2)} vs ${fmt(a, 1)} calls/s = ${fmt(r, 3)}`,
        );
        break;
      }
    }
  }
  for (const size of sizes) {
    for (const c of [16, 1]) {
      const first = find(cells, size, key("grpc", "ListSecrets"), c);
      const last = find(cells, size, key("grpc", "ListSecrets last page"), c);
      if (!first?.throughput || !last?.throughput) continue;
      const r = last.throughput / first.throughput;
      push(
        `ListSecrets last page as fast as the first (${size} secrets, c${c})`,
        r,
        0.9,
        `${fmt(last.throughput)} vs ${fmt(first.throughput)} calls/s = ${fmt(r, 2)}`,
      );
      break;
    }
  }
  // Issue 17: a page of 100 costs at most 10 GetSecrets, at every size. The cost in GetSecrets
  // is GetSecret's calls/s over the page's, both over gRPC at the same concurrency (c16 where
  // both ran, else c1).
  for (const size of sizes) {
    for (const page of ["ListSecrets", "ListSecrets last page"]) {
      for (const c of [16, 1]) {
        const get = find(cells, size, key("grpc", "GetSecret"), c)?.throughput;
        const list = find(cells, size, key("grpc", page), c)?.throughput;
        if (!get || !list) continue;
        const r = get / list;
        checks.push({
          target: `list page / GetSecret <= 10: gRPC ${page} of 100 (${size} secrets, c${c})`,
          measured: `${fmt(get)} / ${fmt(list)} calls/s = ${fmt(r, 1)} GetSecrets per page`,
          met: r <= 10,
        });
        break;
      }
    }
  }
  for (const cell of cells) {
    if (cell.concurrency !== 16 || cell.via !== "grpc" || cell.dataset === null) continue;
    if (!cell.p50Ms || !cell.p99Ms) continue;
    const r = cell.p99Ms / cell.p50Ms;
    checks.push({
      target: `p99 <= 3 x p50 at c16: gRPC ${cell.op} (${cell.dataset} secrets)`,
      measured: `${fmt(cell.p99Ms, 1)} / ${fmt(cell.p50Ms, 1)} ms = ${fmt(r, 2)}`,
      met: r <= 3,
    });
  }
  return checks;
}

export function targetsText(checks: readonly TargetCheck[]): string {
  return checks
    .map(
      (t) => `${t.met === null ? "  n/a" : t.met ? "  MET" : "  MISS"}  ${t.target}: ${t.measured}`,
    )
    .join("\n");
}
