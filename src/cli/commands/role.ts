/**
 * `seald role`: bind principals to the built-in roles in a namespace or in every namespace.
 */
import type { Command } from "commander";
import {
  AccessService,
  GrantRoleResponseSchema,
  ListRoleBindingsResponseSchema,
  RevokeRoleResponseSchema,
} from "../../../gen/secrets/v1/access_service_pb.js";
import type { Cli } from "../command.js";
import { formatTime, writeMessageJson, writeTable } from "../output.js";

const roleHelp = "admin, editor, reader or decrypter (decrypter: service accounts only)";
const namespaceHelp = 'the namespace, or "*" for every namespace (quote it in the shell)';

/** Registers `seald role` and its subcommands. */
export function roleCommands(program: Command, cli: Cli): void {
  const role = program.command("role").description("role bindings");

  role
    .command("grant")
    .description("bind a principal to a role in a namespace")
    .argument("<principal>", "the user or service account")
    .argument("<role>", roleHelp)
    .requiredOption("-n, --namespace <namespace>", namespaceHelp)
    .action(async (principal: string, name: string, o: { namespace: string }, cmd: Command) => {
      const ctx = cli.context(cmd);
      const res = await ctx.client(AccessService).grantRole({
        binding: { principal, role: name, namespace: o.namespace },
      });
      if (ctx.output === "json") writeMessageJson(ctx.io.stdout, GrantRoleResponseSchema, res);
      else ctx.io.stdout.write(`granted ${name} in ${o.namespace} to ${principal}\n`);
    });

  role
    .command("revoke")
    .description("remove a role binding")
    .argument("<principal>", "the user or service account")
    .argument("<role>", roleHelp)
    .requiredOption("-n, --namespace <namespace>", namespaceHelp)
    .action(async (principal: string, name: string, o: { namespace: string }, cmd: Command) => {
      const ctx = cli.context(cmd);
      const res = await ctx.client(AccessService).revokeRole({
        binding: { principal, role: name, namespace: o.namespace },
      });
      if (ctx.output === "json") writeMessageJson(ctx.io.stdout, RevokeRoleResponseSchema, res);
      else ctx.io.stdout.write(`revoked ${name} in ${o.namespace} from ${principal}\n`);
    });

  role
    .command("list")
    .description("list role bindings, optionally of one principal or namespace")
    .option("--principal <name>", "only this principal's bindings")
    .option("-n, --namespace <namespace>", 'only bindings in this namespace (including "*")')
    .action(async (o: { principal?: string; namespace?: string }, cmd: Command) => {
      const ctx = cli.context(cmd);
      const res = await ctx.client(AccessService).listRoleBindings({
        principal: o.principal ?? "",
        namespace: o.namespace ?? "",
      });
      if (ctx.output === "json") {
        writeMessageJson(ctx.io.stdout, ListRoleBindingsResponseSchema, res);
        return;
      }
      writeTable(
        ctx.io.stdout,
        ["PRINCIPAL", "ROLE", "NAMESPACE", "CREATED"],
        res.bindings.map((b) => [b.principal, b.role, b.namespace, formatTime(b.createTime)]),
      );
    });
}
