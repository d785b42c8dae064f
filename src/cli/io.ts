/**
 * The process surroundings a command sees: its streams and environment, passed in once by the
 * entry point so that nothing below it reads `process` directly.
 */

/** A readable stream that may be a terminal. */
export type Input = NodeJS.ReadableStream & { readonly isTTY?: boolean };

/** A writable stream that may be a terminal. */
export type Output = NodeJS.WritableStream & {
  readonly isTTY?: boolean;
  readonly columns?: number;
};

/** Streams and environment of one run of the command. */
export interface Io {
  readonly stdin: Input;
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: Readonly<Record<string, string | undefined>>;
}
