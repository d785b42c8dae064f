/**
 * `seald serve`: the server itself, exactly as `npm start` runs it.
 */
import { fileURLToPath } from "node:url";
import type { Command } from "commander";

/**
 * Runs src/main.ts with the given server flags. main.ts is the process entry point and reads
 * its flags from process.argv when it is first imported, so the command line it would have had
 * is put in place first; from then on the server owns the process (signals, exit code).
 */
export async function serve(args: readonly string[]): Promise<void> {
  const main = new URL("../../main.js", import.meta.url);
  process.argv = [process.argv[0] ?? process.execPath, fileURLToPath(main), ...args];
  await import("../../main.js");
}

/** Registers `seald serve` for --help; its flags are the server's (`seald serve --help`). */
export function serveCommand(program: Command, start: (args: readonly string[]) => Promise<void>) {
  program
    .command("serve")
    .description("run the server: flags and SEALD_* as for `npm start`")
    .argument("[server-flags...]", "server flags, for example --listen 0.0.0.0:8080")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (_args: string[], _o: unknown, cmd: Command) => {
      await start(cmd.args);
    });
}
