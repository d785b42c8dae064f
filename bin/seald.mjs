#!/usr/bin/env node
// The `seald` command. It runs straight from a checkout, without a build step: tsx compiles the
// TypeScript sources as they are imported. The tsconfig is named explicitly because tsx would
// otherwise look for one in the caller's working directory, which may belong to another project.
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });
await import(new URL("../src/cli/main.ts", import.meta.url).href);
