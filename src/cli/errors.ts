/**
 * Exit codes and error messages of the seald command: the contract scripts rely on. Every
 * failure ends as one line `seald: <code>: <message>` on stderr and one of the codes below.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** The exit codes, documented in `seald --help` and the README. */
export const ExitCode = {
  /** Everything succeeded. */
  ok: 0,
  /** A request failed: the server's error code and message are on stderr. */
  failed: 1,
  /** The command line was wrong; nothing was sent. */
  usage: 2,
  /** The server refused the credentials (unauthenticated or permission denied). */
  auth: 3,
  /** Some of several results failed (decrypt): the others were printed. */
  partial: 4,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A mistake on the command line, found before anything was sent. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A failure the command has already described; the message is printed as is. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.failed,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The Connect protocol's name for a code, for example "not_found" for Code.NotFound. */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/[A-Z]/g, (c, i: number) =>
    i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`,
  );
}

/** Whether an error means the server refused the caller's credentials or rights. */
export function isAuthFailure(err: unknown): boolean {
  return (
    err instanceof ConnectError &&
    (err.code === Code.Unauthenticated || err.code === Code.PermissionDenied)
  );
}

/** The stderr line (without "seald: ") and exit code for an error that ended a command. */
export function describeError(
  err: unknown,
  hints: { readonly tokenSet: boolean },
): { readonly message: string; readonly exitCode: ExitCode } {
  if (err instanceof UsageError) return { message: err.message, exitCode: ExitCode.usage };
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof ConnectError) {
    let message = `${codeName(err.code)}: ${err.rawMessage}`;
    if (err.code === Code.Unauthenticated && !hints.tokenSet) {
      message += " (set SEALD_TOKEN, or pass --token-file)";
    }
    if (err.code === Code.Unimplemented) {
      message += " (the server does not offer this; is it an older seald?)";
    }
    return { message, exitCode: isAuthFailure(err) ? ExitCode.auth : ExitCode.failed };
  }
  // Anything else is a bug or a local failure (a file that cannot be read, and so on); its
  // message never contains a value or a token because none is ever put into an Error here.
  const message = err instanceof Error ? err.message : String(err);
  return { message: `internal: ${message}`, exitCode: ExitCode.failed };
}
