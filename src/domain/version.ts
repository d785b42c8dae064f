/** seald's own version, read once from package.json: what `seald --version` and /version say. */
import { readFileSync } from "node:fs";

export const sealdVersion: string = (() => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return typeof pkg.version === "string" ? pkg.version : "unknown";
})();
