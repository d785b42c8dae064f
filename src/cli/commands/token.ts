/**
 * `seald token`: issue, list and revoke access tokens. A token's value is printed once, by
 * create, and never again.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import {
  AccessService,
  CreateTokenResponseSchema,
  ListTokensResponseSchema,
  RevokeTokenResponseSchema,
  type Token,
  TokenSchema,
} from "../../../gen/secrets/v1/access_service_pb.js";
import type { Cli } from "../command.js";
import { formatTime, writeMessageJson, writeTable } from "../output.js";
import { parseFutureTime } from "../parse.js";

/** Registers `seald token` and its subcommands. */
export function tokenCommands(program: Command, cli: Cli): void {
  const token = program.command("token").description("access tokens");

  token
    .command("create")
    .description(
      "issue a token for a principal and print it (table output: the bare token on stdout, " +
        "its id on stderr); it is shown only this once",
    )
    .argument("<principal>", "the user or service account the token authenticates as")
    .option("--description <text>", "what the token is for")
    .option("--expires <when>", "a duration from now (90m, 12h, 30d, 2w) or an RFC 3339 time")
    .action(
      async (principal: string, o: { description?: string; expires?: string }, cmd: Command) => {
        const ctx = cli.context(cmd);
        const expires =
          o.expires === undefined ? undefined : parseFutureTime("--expires", o.expires);
        const res = await ctx.client(AccessService).createToken({
          principal,
          description: o.description ?? "",
          ...(expires === undefined ? {} : { expireTime: timestampFromDate(expires) }),
        });
        if (ctx.output === "json") {
          writeMessageJson(ctx.io.stdout, CreateTokenResponseSchema, res);
          return;
        }
        // Printing the token is this command's purpose; everything else goes to stderr so
        // that `TOKEN=$(seald token create ...)` captures the token alone.
        ctx.io.stdout.write(`${res.secret}\n`);
        const t = res.token ?? create(TokenSchema);
        const until =
          t.expireTime === undefined ? "never expires" : `expires ${formatTime(t.expireTime)}`;
        ctx.note(
          `token ${t.id} for ${t.principal} (${until}); store it now, it is not shown again`,
        );
      },
    );

  token
    .command("list")
    .description("list tokens (never their values), newest first")
    .option("--principal <name>", "only this principal's tokens")
    .action(async (o: { principal?: string }, cmd: Command) => {
      const ctx = cli.context(cmd);
      const res = await ctx.client(AccessService).listTokens({ principal: o.principal ?? "" });
      if (ctx.output === "json") {
        writeMessageJson(ctx.io.stdout, ListTokensResponseSchema, res);
        return;
      }
      writeTable(
        ctx.io.stdout,
        ["ID", "PRINCIPAL", "DESCRIPTION", "CREATED", "EXPIRES", "REVOKED"],
        res.tokens.map((t: Token) => [
          t.id,
          t.principal,
          t.description,
          formatTime(t.createTime),
          formatTime(t.expireTime),
          formatTime(t.revokeTime),
        ]),
      );
    });

  token
    .command("revoke")
    .description("make a token unusable at once")
    .argument("<id>", "the token's id (from token list)")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = cli.context(cmd);
      const res = await ctx.client(AccessService).revokeToken({ id });
      if (ctx.output === "json") writeMessageJson(ctx.io.stdout, RevokeTokenResponseSchema, res);
      else ctx.io.stdout.write(`revoked token ${id}\n`);
    });
}
