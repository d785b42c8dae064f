/**
 * `seald audit`: read and verify the hash-chained audit trail (admins only).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import {
  AuditService,
  ListAuditEventsResponseSchema,
  VerifyAuditLogResponseSchema,
} from "../../../gen/secrets/v1/audit_service_pb.js";
import { formatAnchor, parseAnchor } from "../../auth/audit.js";
import type { Cli } from "../command.js";
import { CliError, UsageError } from "../errors.js";
import { formatTime, writeMessageJson, writeTable } from "../output.js";
import { collectPages, type PagingOptions, pagingOptions } from "../paging.js";
import { parsePastTime } from "../parse.js";

/** A usage error (exit code 2) for an anchor that is not <seq>:<mac>; the text otherwise. */
function checkAnchor(text: string): string {
  try {
    return formatAnchor(parseAnchor("--anchor", text));
  } catch {
    throw new UsageError(
      `--anchor: "${text}" is not <seq>:<mac> (a record's seq and its 64 hex digit MAC)`,
    );
  }
}

interface ListOptions extends PagingOptions {
  readonly namespace?: string;
  readonly principal?: string;
  readonly action?: string;
  readonly outcome?: string;
  readonly since?: string;
  readonly until?: string;
}

/** Registers `seald audit` and its subcommands. */
export function auditCommands(program: Command, cli: Cli): void {
  const audit = program.command("audit").description("the audit trail");

  const list = audit
    .command("list")
    .description("list audit events, oldest first")
    .option("-n, --namespace <namespace>", "only events in this namespace")
    .option("--principal <name>", "only events by this principal")
    .option("--action <action>", 'only this action, for example "secret.securevalues:decrypt"')
    .option("--outcome <outcome>", "only this outcome: success, denied, unauthenticated, ...")
    .option("--since <when>", "only events at or after: a duration ago (1h, 7d) or RFC 3339 time")
    .option("--until <when>", "only events before: a duration ago or an RFC 3339 time");
  for (const option of pagingOptions("events")) list.addOption(option);
  list.action(async (o: ListOptions, cmd: Command) => {
    const ctx = cli.context(cmd);
    const since = o.since === undefined ? undefined : parsePastTime("--since", o.since);
    const until = o.until === undefined ? undefined : parsePastTime("--until", o.until);
    const client = ctx.client(AuditService);
    const { items: events, nextPageToken } = await collectPages(o, async (pageSize, pageToken) => {
      const res = await client.listAuditEvents({
        namespace: o.namespace ?? "",
        principal: o.principal ?? "",
        action: o.action ?? "",
        outcome: o.outcome ?? "",
        ...(since === undefined ? {} : { startTime: timestampFromDate(since) }),
        ...(until === undefined ? {} : { endTime: timestampFromDate(until) }),
        pageSize,
        pageToken,
      });
      return { items: res.events, nextPageToken: res.nextPageToken };
    });
    if (ctx.output === "json") {
      writeMessageJson(
        ctx.io.stdout,
        ListAuditEventsResponseSchema,
        create(ListAuditEventsResponseSchema, { events, nextPageToken }),
      );
      return;
    }
    writeTable(
      ctx.io.stdout,
      ["SEQ", "TIME", "PRINCIPAL", "ACTION", "NAMESPACE", "NAME", "OUTCOME", "REASON"],
      events.map((e) => [
        String(e.seq),
        formatTime(e.time),
        e.principal,
        e.action,
        e.namespace,
        e.name,
        e.outcome,
        e.reason,
      ]),
    );
    if (nextPageToken !== "") {
      ctx.note(`more events follow: add --all, or --page-token ${nextPageToken}`);
    }
  });

  audit
    .command("verify")
    .description(
      "check the whole chain and its head; exit code 1 names the first record that fails",
    )
    .option(
      "--anchor <seq:mac>",
      "also require record <seq> with exactly this MAC (a head printed earlier, or an audit file line)",
    )
    .option(
      "--reseal-head",
      "when every record verifies, replace the stored head by one on the newest record (audited)",
    )
    .action(async (o: { anchor?: string; resealHead?: boolean }, cmd: Command) => {
      const ctx = cli.context(cmd);
      const anchor = o.anchor === undefined ? "" : checkAnchor(o.anchor);
      const res = await ctx
        .client(AuditService)
        .verifyAuditLog({ anchor, resealHead: o.resealHead === true });
      if (ctx.output === "json") writeMessageJson(ctx.io.stdout, VerifyAuditLogResponseSchema, res);
      else if (res.ok) {
        const against = anchor === "" ? "" : `, anchor ${anchor.split(":")[0]} holds`;
        ctx.io.stdout.write(`audit log intact: ${res.count} records verified${against}\n`);
        // The head to keep elsewhere: a later verify --anchor with it shows whether records up
        // to it were cut or rewritten since.
        if (res.head !== "") ctx.io.stdout.write(`head: ${res.head}\n`);
        if (o.resealHead) {
          ctx.note(
            `head resealed${res.replacedHeadProblem === "" ? "" : `; it was: ${res.replacedHeadProblem}`}`,
          );
        }
      }
      if (!res.ok) {
        throw new CliError(
          `audit log verification failed at record ${res.failedSeq}: ${res.problem}`,
        );
      }
    });
}
