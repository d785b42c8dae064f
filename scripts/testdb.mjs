#!/usr/bin/env node
// Builds the embedded/test database: FerretDB v1 (SQLite backend) through the project's own Go
// wrapper in test/testdb, into .cache/bin/seald-ferretdb. Idempotent: the build is skipped when
// the binary exists and was built from the same go.mod, go.sum, main.go and patches.
//
// FerretDB is built patched: test/testdb/ferretdb-patches.json lists exact text replacements in
// its module source (each must match exactly once, or the build fails). They make _id lookups use
// the _id index: FerretDB 1.24 creates indexes on `_ferretdb_sjson->"_id"` but filters on
// `_ferretdb_sjson->'$._id'`, which SQLite's planner does not match, so every lookup by _id
// scanned the collection (217 ms at 100,000 secrets); and it pushed no numeric _id (the audit
// log's seq) down to SQLite at all. The module is copied from the Go module cache into
// .cache/testdb-build/, patched there, and used through a `replace` in a generated modfile
// (go build -modfile), so test/testdb/go.mod stays as committed. Those patches change only
// the queries, so databases created before them get working indexes without a rebuild.
//
// The "(_id sort)" patches make a page of a keyset list one index range: FerretDB 1.24 filters,
// sorts and limits in memory any find with a filter or a sort, so a page of 100 read the whole
// collection (300 ms at 1,000 secrets, 20 s at 100,000). A find sorted on _id alone whose filter
// bounds a string _id at its top level ($gt/$gte/$lt/$lte) now reads, in order, one range of a
// second index every collection gets, on the unescaped _id (`_ferretdb_sjson->>'$._id'`, named
// "$id_string_<table>", partial over the documents whose _id is a string; the JSON text the _id_
// index is built on does not sort as strings do), with
// the find's limit when those bounds are the whole filter; otherwise the handler filters the
// ordered rows and stops at the limit. The handler's filter, skip, limit and projection still
// run. Collections of databases created before these patches get the index when FerretDB opens
// them. Two more make reading each document cheaper, which a page of 101 pays 101 times:
// "(iterator tracking)" stops registering iterators over in-memory documents and arrays with
// FerretDB's leak tracker (a stack trace each, ~13% of a page's CPU), and "(string decoding)"
// takes a JSON string without escapes as its inner bytes instead of running a new JSON decoder
// for it (~10%); "(schema cache)" keeps each document's decoded sjson schema by its text, since
// a collection's documents share a few (together: 33 to 20 ms of FerretDB CPU for 101 secrets).
//
//   node scripts/testdb.mjs build    build when missing or stale
//   node scripts/testdb.mjs start    run it on 127.0.0.1:27017 with files in ./data/testdb
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const moduleDir = join(root, "test", "testdb");
const binDir = join(root, ".cache", "bin");
const binary = join(binDir, "seald-ferretdb");
const stamp = `${binary}.sha256`;
const buildDir = join(root, ".cache", "testdb-build");
const ferretModule = "github.com/FerretDB/FerretDB";
const patchesFile = join(moduleDir, "ferretdb-patches.json");
// A pure-Go SQLite (modernc.org/sqlite): no C toolchain needed. GOTOOLCHAIN=local keeps Go from
// trying to download another toolchain; go.sum pins every module.
const goEnv = { ...process.env, CGO_ENABLED: "0", GOTOOLCHAIN: "local", GOFLAGS: "-mod=readonly" };

function sourceHash() {
  const hash = createHash("sha256");
  for (const f of ["go.mod", "go.sum", "main.go", "ferretdb-patches.json"]) {
    hash.update(`${f}\0`);
    hash.update(readFileSync(join(moduleDir, f)));
  }
  return hash.digest("hex");
}

function fail(message) {
  console.error(`testdb: ${message}`);
  process.exit(1);
}

/** Makes a copied module-cache tree (read-only there) writable and removable. */
function makeWritable(dir) {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) makeWritable(path);
    else chmodSync(path, 0o644);
  }
}

/**
 * Copies FerretDB's module source (downloaded through the module proxy and checked against
 * go.sum) into the build directory and applies ferretdb-patches.json to it; returns its path.
 */
function patchedFerretDB() {
  const download = spawnSync("go", ["mod", "download", "-json", ferretModule], {
    cwd: moduleDir,
    env: goEnv,
    encoding: "utf8",
  });
  if (download.status !== 0) fail(`go mod download ${ferretModule} failed:\n${download.stderr}`);
  const { Dir: source, Version: version } = JSON.parse(download.stdout);
  const dest = join(buildDir, `FerretDB@${version}`);
  if (existsSync(dest)) makeWritable(dest);
  rmSync(dest, { recursive: true, force: true });
  cpSync(source, dest, { recursive: true });
  makeWritable(dest);
  for (const patch of JSON.parse(readFileSync(patchesFile, "utf8"))) {
    const file = join(dest, patch.file);
    const text = readFileSync(file, "utf8");
    const count = text.split(patch.from).length - 1;
    if (count !== 1) {
      fail(
        `ferretdb-patches.json: expected the text to replace exactly once in ${patch.file} of ${ferretModule}@${version}, found it ${count} times: ${JSON.stringify(patch.from)}`,
      );
    }
    writeFileSync(
      file,
      text.replace(patch.from, () => patch.to),
    );
  }
  return { dest, version };
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
  mkdirSync(buildDir, { recursive: true });
  const { dest, version } = patchedFerretDB();
  // The committed go.mod plus a replace of FerretDB by the patched copy; go.sum sits beside it,
  // as -modfile wants. A directory replacement carries no checksum of its own.
  const modfile = join(buildDir, "go.mod");
  writeFileSync(
    modfile,
    `${readFileSync(join(moduleDir, "go.mod"), "utf8")}\nreplace ${ferretModule} ${version} => ${dest}\n`,
  );
  writeFileSync(join(buildDir, "go.sum"), readFileSync(join(moduleDir, "go.sum")));
  const tmp = `${binary}.tmp-${process.pid}`;
  const result = spawnSync("go", ["build", "-trimpath", `-modfile=${modfile}`, "-o", tmp, "."], {
    cwd: moduleDir,
    stdio: "inherit",
    env: goEnv,
  });
  if (result.status !== 0) fail("go build failed");
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
