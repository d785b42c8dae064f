/**
 * The seald command line: global options, every command, and the mapping from outcomes to exit
 * codes. `run` never exits the process itself; the entry point does, with the code it returns.
 */

import { type Argument, Command, CommanderError, Option } from "commander";
import { sealdVersion } from "../domain/version.js";
import type { Cli } from "./command.js";
import { accountCommands } from "./commands/account.js";
import { auditCommands } from "./commands/audit.js";
import { keysCommands } from "./commands/keys.js";
import { roleCommands } from "./commands/role.js";
import { secretCommands } from "./commands/secret.js";
import { serve, serveCommand } from "./commands/serve.js";
import { tokenCommands } from "./commands/token.js";
import { Context, defaultServer, protocols, type RawGlobalOptions } from "./context.js";
import { describeError, ExitCode } from "./errors.js";
import type { Io } from "./io.js";
import { outputFormats } from "./output.js";

/** What `run` ends with: an exit code, or "serving" when the server now owns the process. */
export type RunResult = ExitCode | "serving";

const epilogue = `
Environment:
  SEALD_SERVER     server URL (default ${defaultServer})
  SEALD_TOKEN      bearer token; prefer it (or --token-file) to --token, which ps shows
  SEALD_OUTPUT     output format when --output is not given: table (default) or json
  SEALD_NAMESPACE  namespace of the secret commands when --namespace is not given

Output: tables by default, JSON (protobuf JSON, every field present) with --output json.
Informational lines and warnings go to stderr, data to stdout. Values and tokens are printed
only by secret decrypt and token create.

Exit codes:
  0  success
  1  a request failed: "seald: <code>: <message>" on stderr, for example
     seald: not_found: secret "db" not found
  2  usage error: bad command line or option; nothing was sent
  3  authentication failed: the server answered unauthenticated or permission_denied
  4  partial failure: some names of a decrypt have no value (each named on stderr)
`;

function argumentTerm(arg: Argument): string {
  const name = `${arg.name()}${arg.variadic ? "..." : ""}`;
  return arg.required ? `<${name}>` : `[${name}]`;
}

/** Builds the command tree; `cli` is how actions reach the run's streams and exit code. */
export function buildProgram(cli: Cli): Command {
  const program = new Command("seald")
    .description("seald: a secrets service and its command-line client")
    .version(sealdVersion, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help for a command")
    .helpCommand("help [command]", "show help for a command")
    .showHelpAfterError("(add --help for usage)")
    .configureHelp({
      showGlobalOptions: true,
      // Lists every subcommand in the top-level help: `secret create|get|list|...`.
      subcommandTerm: (cmd) =>
        cmd.commands.length > 0
          ? `${cmd.name()} ${cmd.commands.map((c) => c.name()).join("|")}`
          : `${cmd.name()} ${cmd.registeredArguments.map(argumentTerm).join(" ")}`.trimEnd(),
    })
    .exitOverride()
    .configureOutput({
      writeOut: (s) => cli.io.stdout.write(s),
      writeErr: (s) => cli.io.stderr.write(s),
      outputError: (s, write) => write(`seald: ${s.replace(/^error: /, "")}`),
    })
    .addOption(
      new Option("--server <url>", `server URL [env: SEALD_SERVER] (default: ${defaultServer})`),
    )
    .addOption(new Option("--token <token>", "bearer token; visible in ps, prefer SEALD_TOKEN"))
    .addOption(new Option("--token-file <path>", "read the bearer token from a file"))
    .addOption(
      new Option(
        "-o, --output <format>",
        "output format [env: SEALD_OUTPUT] (default: table)",
      ).choices(outputFormats),
    )
    .addOption(
      new Option("--protocol <protocol>", "connect: JSON over HTTP/1.1; grpc: HTTP/2")
        .choices(protocols)
        .default("connect"),
    )
    .addOption(new Option("--timeout <seconds>", "per-request timeout").default("30"))
    .addHelpText("after", epilogue);

  serveCommand(program, serve);
  secretCommands(program, cli);
  tokenCommands(program, cli);
  accountCommands(program, cli);
  roleCommands(program, cli);
  keysCommands(program, cli);
  auditCommands(program, cli);
  return program;
}

/** Runs one command line (without the node and script entries) and returns how it ended. */
export async function run(argv: readonly string[], io: Io): Promise<RunResult> {
  // The server parses its own flags (src/config.ts); nothing of the client's applies to it.
  if (argv[0] === "serve") {
    await serve(argv.slice(1));
    return "serving";
  }
  let exitCode: ExitCode = ExitCode.ok;
  let context: Context | undefined;
  let serving = false;
  const cli: Cli = {
    io,
    context(cmd) {
      context = new Context(cmd.optsWithGlobals<RawGlobalOptions>(), io);
      return context;
    },
    setExitCode(code) {
      exitCode = code;
    },
  };
  const program = buildProgram(cli);
  // `seald --server x serve ...` reaches serve through commander instead.
  program.commands
    .find((c) => c.name() === "serve")
    ?.hook("preAction", () => {
      serving = true;
    });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return serving ? "serving" : exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end with 0; every parse error is a usage error.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    const { message, exitCode: code } = describeError(err, {
      tokenSet: context?.hasToken ?? false,
    });
    io.stderr.write(`seald: ${message}\n`);
    return code;
  }
}
