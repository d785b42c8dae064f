#!/usr/bin/env node
// Builds the embedded/test database: FerretDB v1 (SQLite backend) through the project's own Go
// wrapper in test/testdb, into .cache/bin/seald-ferretdb. Idempotent: the build is skipped when
// the binary exists and was built from the same go.mod, go.sum and main.go.
//
//   node scripts/testdb.mjs build    build when missing or stale
//   node scripts/testdb.mjs start    run it on 127.0.0.1:27017 with files in ./data/testdb
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const moduleDir = join(root, "test", "testdb");
const binDir = join(root, ".cache", "bin");
const binary = join(binDir, "seald-ferretdb");
const stamp = `${binary}.sha256`;

function sourceHash() {
  const hash = createHash("sha256");
  for (const f of ["go.mod", "go.sum", "main.go"]) hash.update(readFileSync(join(moduleDir, f)));
  return hash.digest("hex");
}

function build() {
  const want = sourceHash();
  if (existsSync(binary) && existsSync(stamp) && readFileSync(stamp, "utf8").trim() === want) {
    return;
  }
  const go = spawnSync("go", ["version"], { encoding: "utf8" });
  if (go.status !== 0) {
    console.error(
      "testdb: Go is needed to build the embedded database (FerretDB) once; install Go 1.24 or newer, or set SEALD_MONGODB_URI / SEALD_TEST_MONGODB_URI to an existing MongoDB",
    );
    process.exit(1);
  }
  console.error(
    `testdb: building FerretDB with ${go.stdout.trim()} (a few minutes the first time)`,
  );
  mkdirSync(binDir, { recursive: true });
  const tmp = `${binary}.tmp-${process.pid}`;
  const result = spawnSync("go", ["build", "-trimpath", "-o", tmp, "."], {
    cwd: moduleDir,
    stdio: "inherit",
    // A pure-Go SQLite (modernc.org/sqlite): no C toolchain needed. GOTOOLCHAIN=local keeps Go
    // from trying to download another toolchain; go.sum pins every module.
    env: { ...process.env, CGO_ENABLED: "0", GOTOOLCHAIN: "local", GOFLAGS: "-mod=readonly" },
  });
  if (result.status !== 0) {
    console.error("testdb: go build failed");
    process.exit(1);
  }
  renameSync(tmp, binary);
  writeFileSync(stamp, `${want}\n`);
  console.error(`testdb: built ${binary}`);
}

const command = process.argv[2] ?? "build";
if (command === "build") {
  build();
} else if (command === "start") {
  build();
  const dir = join(root, "data", "testdb");
  mkdirSync(dir, { recursive: true });
  spawnSync(
    binary,
    ["-dir", dir, "-listen", process.argv[3] ?? "127.0.0.1:27017", "-log-level", "info"],
    {
      stdio: "inherit",
    },
  );
} else {
  console.error(`usage: node scripts/testdb.mjs build|start [host:port]`);
  process.exit(2);
}
