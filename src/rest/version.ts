/**
 * GET /version, which two clients ask for: kubectl (Kubernetes' version.Info) and sensuctl
 * (Sensu's {etcd, sensu_backend}). One body carries both sets of fields, each client reading its
 * own and ignoring the others, so the one path serves both. It is public, as Sensu's is (kubectl
 * sends its token anyway); it says only which API versions seald speaks.
 */
import { sealdVersion } from "../domain/version.js";

/**
 * The Kubernetes release whose API conventions the dialect follows, reported by /version. kubectl
 * warns when the server's minor version is more than one away from its own, so this is a
 * Kubernetes version, with seald's own after "+" (semver build metadata, as k3s reports
 * "v1.33.1+k3s1"); bump it when the dialect follows a newer release.
 */
const kubernetesMinor = 33;

/** Kubernetes' version.Info, as `kubectl version` reads it. */
export function kubernetesVersionInfo() {
  return {
    major: "1",
    minor: String(kubernetesMinor),
    gitVersion: `v1.${kubernetesMinor}.0+seald.${sealdVersion}`,
    gitCommit: "",
    gitTreeState: "",
    buildDate: "",
    goVersion: "",
    compiler: "",
    platform: `${process.platform}/${process.arch === "x64" ? "amd64" : process.arch}`,
  };
}
