/**
 * The `seald` command's process entry (bin/seald.mjs imports it): the only place the client
 * reads process.argv, process.env and the standard streams, and the only place it exits.
 */
import type { Output } from "./io.js";
import { run } from "./program.js";

// A reader that stops early (`seald secret list | head -1`) closes the pipe; that ends the
// command quietly, as it would end any Unix filter, instead of with a stack trace.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

const result = await run(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});

if (result !== "serving") {
  // Exit explicitly, so idle keep-alive connections cannot hold the process open, but only
  // after stdout and stderr have been handed everything written to them.
  const flushed = (out: Output) => new Promise<void>((resolve) => out.write("", () => resolve()));
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(result);
}
