/**
 * `seald account`: users and service accounts (AccessService principals).
 */
import { create } from "@bufbuild/protobuf";
import type { Command } from "commander";
import {
  AccessService,
  CreatePrincipalResponseSchema,
  DeletePrincipalResponseSchema,
  ListPrincipalsResponseSchema,
  type Principal,
  PrincipalKind,
  PrincipalSchema,
} from "../../../gen/secrets/v1/access_service_pb.js";
import type { Cli } from "../command.js";
import type { Context } from "../context.js";
import { formatTime, writeFields, writeMessageJson, writeTable } from "../output.js";

/** Registers `seald account` and its subcommands. */
export function accountCommands(program: Command, cli: Cli): void {
  const account = program.command("account").description("users and service accounts");

  account
    .command("create")
    .description("create a user, or with --service-account a service account")
    .argument("<name>", "the account's name, unique across users and service accounts")
    .option("--service-account", "a service identity (only these can decrypt)")
    .option("--display-name <text>", "a human-readable name")
    .action(
      async (name: string, o: { serviceAccount?: boolean; displayName?: string }, cmd: Command) => {
        const ctx = cli.context(cmd);
        const res = await ctx.client(AccessService).createPrincipal({
          principal: {
            name,
            kind: o.serviceAccount === true ? PrincipalKind.SERVICE_ACCOUNT : PrincipalKind.USER,
            displayName: o.displayName ?? "",
          },
        });
        if (ctx.output === "json")
          writeMessageJson(ctx.io.stdout, CreatePrincipalResponseSchema, res);
        else printPrincipal(ctx, res.principal);
      },
    );

  account
    .command("get")
    .description("show an account with its role bindings")
    .argument("<name>", "the account's name")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const ctx = cli.context(cmd);
      const res = await ctx.client(AccessService).getPrincipal({ name });
      if (ctx.output === "json") {
        writeMessageJson(ctx.io.stdout, PrincipalSchema, res.principal ?? create(PrincipalSchema));
      } else printPrincipal(ctx, res.principal);
    });

  account
    .command("list")
    .description("list every account in name order")
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = cli.context(cmd);
      const client = ctx.client(AccessService);
      const principals: Principal[] = [];
      let pageToken = "";
      do {
        const res = await client.listPrincipals({ pageSize: 1000, pageToken });
        principals.push(...res.principals);
        pageToken = res.nextPageToken;
      } while (pageToken !== "");
      if (ctx.output === "json") {
        writeMessageJson(
          ctx.io.stdout,
          ListPrincipalsResponseSchema,
          create(ListPrincipalsResponseSchema, { principals }),
        );
        return;
      }
      writeTable(
        ctx.io.stdout,
        ["NAME", "KIND", "DISPLAY NAME", "ROLES", "CREATED"],
        principals.map((p) => [
          p.name,
          kindName(p.kind),
          p.displayName,
          roles(p),
          formatTime(p.createTime),
        ]),
      );
    });

  account
    .command("delete")
    .description("delete an account with its tokens and role bindings")
    .argument("<name>", "the account's name")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const ctx = cli.context(cmd);
      const res = await ctx.client(AccessService).deletePrincipal({ name });
      if (ctx.output === "json")
        writeMessageJson(ctx.io.stdout, DeletePrincipalResponseSchema, res);
      else ctx.io.stdout.write(`deleted account ${name}\n`);
    });
}

function kindName(kind: PrincipalKind): string {
  switch (kind) {
    case PrincipalKind.USER:
      return "user";
    case PrincipalKind.SERVICE_ACCOUNT:
      return "service-account";
    default:
      return "unspecified";
  }
}

function roles(p: Principal): string {
  return p.roleBindings.map((b) => `${b.role}@${b.namespace}`).join(",");
}

function printPrincipal(ctx: Context, p: Principal | undefined): void {
  const principal = p ?? create(PrincipalSchema);
  writeFields(ctx.io.stdout, [
    ["name", principal.name],
    ["kind", kindName(principal.kind)],
    ["display name", principal.displayName],
    ["roles", roles(principal)],
    ["created", `${formatTime(principal.createTime)} by ${principal.createdBy}`],
  ]);
}
