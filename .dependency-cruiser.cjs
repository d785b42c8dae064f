/**
 * The layer order of src/ (README, "Layers"), enforced by dependency-cruiser in `npm run check`.
 * Every import runs downward: a layer may import the layers below it, never one above.
 *
 *   entry    src/main.ts, src/app.ts, src/config.ts, src/master-keys.ts, src/cli/
 *   server   src/server    transport: one port, Connect, the lean gRPC path, probes, metrics
 *   rest     src/rest      the Sensu and Grafana dialects: parse, call a use case, render
 *   store    src/store     the MongoDB implementations of the ports the use cases own
 *   service  src/service   use cases, their rules and their ports
 *   auth     src/auth      principals, policy, the guard, the gate, the audit chain
 *   crypto   src/crypto    key ring, envelopes, sealed boxes, SecretValue
 *   domain   src/domain    shared vocabulary (and src/log.ts); imports nothing of seald's
 *
 * gen/ (the generated protobuf code) is for the RPC edge only: server, and the entry layer.
 */
const layers = [
  ["domain", "^src/(domain/|log\\.ts$)"],
  ["crypto", "^src/crypto/"],
  ["auth", "^src/auth/"],
  ["service", "^src/service/"],
  ["store", "^src/store/"],
  ["rest", "^src/rest/"],
  ["server", "^src/server/"],
  ["entry", "^src/(main\\.ts|app\\.ts|config\\.ts|master-keys\\.ts|cli/)"],
];

const upward = layers.slice(0, -1).map(([name, path], i) => ({
  name: `${name}-imports-upward`,
  comment: `${name} may import only the layers below it`,
  severity: "error",
  from: { path },
  to: { path: layers.slice(i + 1).map(([, p]) => p) },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: "rest-imports-store",
      comment: "the dialects reach storage only through the use cases",
      severity: "error",
      from: { path: "^src/rest/" },
      to: { path: "^src/store/" },
    },
    {
      name: "generated-code-beyond-the-rpc-edge",
      comment: "only the RPC edge (server) and the entry layer speak protobuf",
      severity: "error",
      from: { path: "^src/(domain|crypto|auth|service|store|rest)/" },
      to: { path: "^gen/" },
    },
    {
      name: "unlayered-module",
      comment: "every module of src/ belongs to a layer of the table above",
      severity: "error",
      from: { path: "^src/", pathNot: layers.map(([, p]) => p) },
      to: {},
    },
    {
      name: "no-circular",
      comment: "modules that import each other cannot be understood one at a time",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|test|scripts)/" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
  },
};
