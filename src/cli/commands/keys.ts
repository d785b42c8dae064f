/**
 * `seald keys`: master-key status, the re-wrap job, and new master key lines.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import {
  GetKeyStatusResponseSchema,
  KeysService,
  type RewrapJob,
  RewrapJobSchema,
} from "../../../gen/secrets/v1/keys_service_pb.js";
import { generateMasterKeyLine } from "../../crypto/keyring.js";
import type { Cli } from "../command.js";
import type { Context } from "../context.js";
import { CliError, UsageError } from "../errors.js";
import { formatTime, writeMessageJson, writeTable } from "../output.js";
import { parseInteger } from "../parse.js";
import { ProgressBar } from "../progress.js";

/** Consecutive failed polls (a replica restarting, say) tolerated while watching a re-wrap. */
const MAX_POLL_FAILURES = 30;

/** Registers `seald keys` and its subcommands. */
export function keysCommands(program: Command, cli: Cli): void {
  const keys = program.command("keys").description("master keys and their rotation");

  keys
    .command("status")
    .description("show the active master key, what each key still protects, and the re-wrap job")
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = cli.context(cmd);
      const res = await ctx.client(KeysService).getKeyStatus({});
      if (ctx.output === "json") {
        writeMessageJson(ctx.io.stdout, GetKeyStatusResponseSchema, res);
        return;
      }
      ctx.io.stdout.write(`active key: ${res.activeKeyId}\n`);
      writeTable(
        ctx.io.stdout,
        ["KEY", "ACTIVE", "CONFIGURED", "VALUES", "HISTORY", "NAMESPACE KEYS", "TOKENS"],
        res.keys.map((k) => [
          k.keyId,
          k.active ? "yes" : "no",
          k.configured ? "yes" : "no",
          String(k.values),
          String(k.history),
          String(k.namespaceKeys),
          String(k.tokens),
        ]),
      );
      ctx.io.stdout.write(`${describeJob(res.rewrap ?? create(RewrapJobSchema))}\n`);
    });

  keys
    .command("rewrap")
    .description(
      "start (or resume) re-wrapping every stored data key under the active master key and " +
        "watch it to the end, with a progress bar on a terminal; Ctrl-C stops only the watching",
    )
    .option("--no-wait", "start the job and return at once")
    .option("--interval <seconds>", "seconds between progress polls", "1")
    .action(async (o: { wait: boolean; interval: string }, cmd: Command) => {
      const ctx = cli.context(cmd);
      const intervalMs = parseInteger("--interval", o.interval, 1, 3600) * 1000;
      const client = ctx.client(KeysService);
      let job = (await client.startRewrap({})).rewrap ?? create(RewrapJobSchema);
      if (o.wait) job = await watch(ctx, job, intervalMs);
      if (ctx.output === "json") writeMessageJson(ctx.io.stdout, RewrapJobSchema, job);
      else ctx.io.stdout.write(`${describeJob(job)}\n`);
      if (job.state === "failed") throw new CliError(`rewrap failed: ${job.error}`);
    });

  keys
    .command("generate")
    .description(
      "print a new random master key line `id:base64` for SEALD_MASTER_KEYS (offline: no " +
        "server is contacted)",
    )
    .option("--id <id>", "the key id, 1-32 of A-Z a-z 0-9 _ - (default: key-<UTC date-time>)")
    .action((o: { id?: string }) => {
      const id =
        o.id ??
        `key-${new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}`;
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) {
        throw new UsageError(`--id: "${id}" must be 1-32 characters of A-Z a-z 0-9 _ -`);
      }
      // Printing the key is this command's purpose. The hint goes to a person only.
      cli.io.stdout.write(`${generateMasterKeyLine(id)}\n`);
      if (cli.io.stderr.isTTY === true) {
        cli.io.stderr.write(
          "Put it first in SEALD_MASTER_KEYS (or the keys file), keep the old keys after it, " +
            "restart every replica, then run `seald keys rewrap`.\n",
        );
      }
    });
}

/** Polls GetKeyStatus until the job is done or failed, drawing progress on stderr. */
async function watch(ctx: Context, started: RewrapJob, intervalMs: number): Promise<RewrapJob> {
  const client = ctx.client(KeysService);
  const bar = new ProgressBar(ctx.io.stderr, `re-wrapping to ${started.targetKeyId}`);
  if (ctx.io.stderr.isTTY !== true) {
    ctx.note(`rewrap ${started.state}: ${started.total} records to move to ${started.targetKeyId}`);
  }
  let job = started;
  let failures = 0;
  try {
    while (job.state !== "done" && job.state !== "failed") {
      bar.update(Number(job.rewrapped), Number(job.total), `(${job.processed} examined)`);
      await new Promise((r) => setTimeout(r, intervalMs));
      try {
        job = (await client.getKeyStatus({})).rewrap ?? job;
        failures = 0;
      } catch (err) {
        // A rolling restart is part of rotation: ride out a replica that is briefly away.
        const transient =
          err instanceof ConnectError &&
          (err.code === Code.Unavailable || err.code === Code.DeadlineExceeded);
        if (!transient || ++failures >= MAX_POLL_FAILURES) throw err;
      }
    }
    bar.update(Number(job.rewrapped), Number(job.total), `(${job.processed} examined)`);
  } finally {
    bar.finish();
  }
  return job;
}

function describeJob(job: RewrapJob): string {
  const parts = [`rewrap: ${job.state || "idle"}`];
  if (job.targetKeyId !== "") parts.push(`target ${job.targetKeyId}`);
  if (job.state !== "idle" && job.state !== "") {
    parts.push(`${job.rewrapped}/${job.total} re-wrapped (${job.processed} examined)`);
  }
  if (job.startTime !== undefined) parts.push(`started ${formatTime(job.startTime)}`);
  if (job.updateTime !== undefined) parts.push(`updated ${formatTime(job.updateTime)}`);
  if (job.holder !== "") parts.push(`holder ${job.holder}`);
  if (job.error !== "") parts.push(`error: ${job.error}`);
  return parts.join(", ");
}
