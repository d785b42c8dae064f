/**
 * What a command module gets from the program: the process surroundings, a context built from
 * the global options, and a way to end with a non-zero exit code without an error.
 */
import type { Command } from "commander";
import type { Context } from "./context.js";
import { type ExitCode, UsageError } from "./errors.js";
import type { Io } from "./io.js";

/** Shared by every command of one run. */
export interface Cli {
  readonly io: Io;
  /** The context for an action, from the global options (they may come before or after it). */
  context(cmd: Command): Context;
  /** The exit code to end with when the action returns normally (decrypt's partial failure). */
  setExitCode(code: ExitCode): void;
}

/** The namespace option's value, or SEALD_NAMESPACE, or a usage error. */
export function requireNamespace(cli: Cli, namespace: string | undefined): string {
  const ns = namespace ?? cli.io.env.SEALD_NAMESPACE;
  if (ns === undefined || ns === "") {
    throw new UsageError("--namespace is required (or set SEALD_NAMESPACE)");
  }
  return ns;
}
