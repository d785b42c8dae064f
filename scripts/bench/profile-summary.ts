/**
 * Summarises V8 CPU profiles (node --cpu-prof, as `run.ts --profile <dir>` writes for seald):
 * self time by function and by where the code lives (a package, seald's own src/, Node
 * internals, idle and GC).
 *
 *   npx tsx scripts/bench/profile-summary.ts <file.cpuprofile | dir> [--top 30]
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: "string", default: "30" },
    // Seconds since the profile started: run.ts --profile logs each cell's window.
    from: { type: "string", default: "0" },
    to: { type: "string", default: "1e9" },
  },
});
const top = Number(values.top);
const fromUs = Number(values.from) * 1e6;
const toUs = Number(values.to) * 1e6;
const files = positionals.flatMap((p) =>
  statSync(p).isDirectory()
    ? readdirSync(p)
        .filter((f) => f.endsWith(".cpuprofile"))
        .map((f) => join(p, f))
    : [p],
);
if (files.length === 0) throw new Error("no .cpuprofile given");

/** Where a frame's code lives. */
function area(url: string, name: string): string {
  if (name === "(idle)" || name === "(garbage collector)" || name === "(program)") return name;
  if (url === "") return "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1]) return pkg[1];
  if (url.startsWith("node:")) return "node internals";
  const own = /\/(src|gen|scripts)\/(.*)$/.exec(url);
  if (own?.[1] === "src") return `src/${own[2]?.split("/")[0] ?? ""}`;
  if (own) return own[1] ?? url;
  return url;
}

const byFunction = new Map<string, number>();
const byArea = new Map<string, number>();
let total = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  let at = 0;
  profile.samples.forEach((id, i) => {
    const node = nodes.get(id);
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    if (!node || at < fromUs || at > toUs) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url
      ? `${url.replace(/^.*\/(node_modules|src|gen)\//, "$1/")}:${lineNumber + 1}`
      : "";
    const fn = `${functionName || "(anonymous)"} ${where}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
    const a = area(url, functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + dt);
    total += dt;
  });
}
const busy = total - (byArea.get("(idle)") ?? 0);
const show = (title: string, map: Map<string, number>) => {
  process.stdout.write(
    `\n${title} (% of busy time; busy ${(busy / 1e6).toFixed(1)} s of ${(total / 1e6).toFixed(1)} s)\n`,
  );
  for (const [k, v] of [...map]
    .filter(([k]) => k !== "(idle)" && !k.startsWith("(idle)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    process.stdout.write(`${((100 * v) / busy).toFixed(1).padStart(6)}%  ${k}\n`);
  }
};
show("self time by area", byArea);
show("self time by function", byFunction);
