#!/usr/bin/env node
// Makes sure kubectl is on PATH for test/rest/grafana-kubectl.test.ts: `npm test` runs this
// first (pretest), so the README's test command works on a fresh machine. Idempotent: when
// kubectl is there, it does nothing. Otherwise, as root with apt-get (this project's machines),
// it installs Debian's kubernetes-client (kubectl 1.20: legacy discovery only, which the test
// accepts); anywhere else it says what to install and fails.
import { spawnSync } from "node:child_process";

const has = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return r.status === 0;
};

if (!has("kubectl")) {
  if (process.getuid?.() === 0 && has("apt-get")) {
    console.error("ensure-kubectl: kubectl missing, installing Debian's kubernetes-client");
    if (
      !run("apt-get", ["update", "-qq"]) ||
      !run("apt-get", ["install", "-y", "-qq", "kubernetes-client"])
    ) {
      console.error("ensure-kubectl: apt-get could not install kubernetes-client");
      process.exit(1);
    }
  } else {
    console.error(
      "ensure-kubectl: the tests need kubectl on PATH (Debian: apt-get install kubernetes-client)",
    );
    process.exit(1);
  }
}
