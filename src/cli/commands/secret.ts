/**
 * `seald secret`: create, read, list, update, delete and decrypt secrets. Values go out sealed
 * for the namespace's public key and come back only from decrypt.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Command, Option } from "commander";
import { type Secret, SecretSchema } from "../../../gen/secrets/v1/resource_pb.js";
import {
  DecryptResultSchema,
  type DecryptSecretsResponse,
  DecryptSecretsResponseSchema,
  DeleteSecretResponseSchema,
  ListSecretsResponseSchema,
  SecretsService,
} from "../../../gen/secrets/v1/secrets_service_pb.js";
import { type Cli, requireNamespace } from "../command.js";
import type { Context } from "../context.js";
import { ExitCode, UsageError } from "../errors.js";
import { formatMap, formatTime, writeFields, writeMessageJson, writeTable } from "../output.js";
import { collectPages, type PagingOptions, pagingOptions } from "../paging.js";
import { collect, parseInteger, parsePairs } from "../parse.js";
import { hasValueOption, readValue, sealValue, type ValueOptions } from "../value.js";

interface SpecOptions extends ValueOptions {
  readonly namespace?: string;
  readonly keeper?: string;
  readonly ref?: string;
  readonly label?: string[];
  readonly annotation?: string[];
  readonly description?: string;
  readonly decrypter?: string[];
}

interface UpdateOptions extends SpecOptions {
  readonly removeLabel?: string[];
  readonly removeAnnotation?: string[];
  readonly removeDecrypter?: string[];
  readonly resourceVersion?: string;
  readonly allowMissing?: boolean;
}

interface ListOptions extends PagingOptions {
  readonly namespace?: string;
  readonly selector?: string;
  readonly fieldSelector?: string;
}

const namespaceOption = () =>
  new Option("-n, --namespace <namespace>", "the secret's namespace [env: SEALD_NAMESPACE]");

function addSpecOptions(cmd: Command, verb: "create" | "update"): Command {
  const stdinNote =
    verb === "create"
      ? "; without it the value is read from stdin (a hidden prompt on a terminal)"
      : "; without it the stored value is kept";
  return cmd
    .addOption(namespaceOption())
    .option("--value-file <path>", `read the value from a file, "-" for stdin${stdinNote}`)
    .option("--value <value>", "the value itself; refused unless --insecure-value-arg is given")
    .option("--insecure-value-arg", "allow --value although argv is visible to other users")
    .option("--keeper <keeper>", 'where the value lives: "system" (sealed by seald) or external')
    .option("--ref <ref>", "the value's key in an external keeper")
    .option("--label <key=value>", "a label (repeatable)", collect)
    .option("--annotation <key=value>", "an annotation (repeatable)", collect)
    .option("--description <text>", "a human-readable description")
    .option(
      "--decrypter <principal>",
      "a service account allowed to decrypt (repeatable)",
      collect,
    );
}

/** Registers `seald secret` and its subcommands. */
export function secretCommands(program: Command, cli: Cli): void {
  const secret = program.command("secret").description("secrets, their metadata and their values");

  addSpecOptions(
    secret
      .command("create")
      .description("create a secret; the value is read from stdin and sealed on this machine")
      .argument("<name>", "the secret's name"),
    "create",
  ).action(async (name: string, o: SpecOptions, cmd: Command) => {
    const ctx = cli.context(cmd);
    const namespace = requireNamespace(cli, o.namespace);
    const labels = parsePairs("--label", o.label);
    const annotations = parsePairs("--annotation", o.annotation);
    const keeper = o.keeper ?? "";
    const value = await valueFor(ctx, o, namespace, name, keeper, true);
    const res = await ctx.client(SecretsService).createSecret({
      secret: {
        namespace,
        name,
        labels,
        annotations,
        description: o.description ?? "",
        decrypters: o.decrypter ?? [],
        keeper,
        ref: o.ref ?? "",
        ...(value === undefined ? {} : { value }),
      },
    });
    printSecret(ctx, res.secret);
  });

  secret
    .command("get")
    .description("show a secret's metadata (never its value)")
    .argument("<name>", "the secret's name")
    .addOption(namespaceOption())
    .action(async (name: string, o: { namespace?: string }, cmd: Command) => {
      const ctx = cli.context(cmd);
      const namespace = requireNamespace(cli, o.namespace);
      const res = await ctx.client(SecretsService).getSecret({ namespace, name });
      printSecret(ctx, res.secret);
    });

  const list = secret
    .command("list")
    .description("list secrets in (namespace, name) order, optionally filtered")
    .option("-n, --namespace <namespace>", "only this namespace (default: every readable one)")
    .option("-l, --selector <selector>", 'label selector, for example "app=web,tier in (a,b)"')
    .option("--field-selector <selector>", 'field selector, for example "keeper=system"');
  for (const option of pagingOptions("secrets")) list.addOption(option);
  list.action(async (o: ListOptions, cmd: Command) => {
    const ctx = cli.context(cmd);
    const client = ctx.client(SecretsService);
    const { items: secrets, nextPageToken: pageToken } = await collectPages(
      o,
      async (pageSize, pageToken) => {
        const res = await client.listSecrets({
          namespace: o.namespace ?? "",
          labelSelector: o.selector ?? "",
          fieldSelector: o.fieldSelector ?? "",
          pageSize,
          pageToken,
        });
        return { items: res.secrets, nextPageToken: res.nextPageToken };
      },
    );
    if (ctx.output === "json") {
      writeMessageJson(
        ctx.io.stdout,
        ListSecretsResponseSchema,
        create(ListSecretsResponseSchema, { secrets, nextPageToken: pageToken }),
      );
      return;
    }
    writeTable(
      ctx.io.stdout,
      ["NAMESPACE", "NAME", "KEEPER", "VERSION", "DECRYPTERS", "LABELS", "UPDATED"],
      secrets.map((s) => [
        s.namespace,
        s.name,
        s.keeper,
        String(s.version),
        s.decrypters.join(","),
        formatMap(s.labels),
        formatTime(s.updateTime),
      ]),
    );
    if (pageToken !== "") {
      ctx.note(`more secrets follow: add --all, or --page-token ${pageToken}`);
    }
  });

  addSpecOptions(
    secret
      .command("update")
      .description(
        "change a secret: given options replace (or, for labels, annotations and decrypters, " +
          "add to) what is stored, the rest is kept",
      )
      .argument("<name>", "the secret's name")
      .option("--remove-label <key>", "remove a label (repeatable)", collect)
      .option("--remove-annotation <key>", "remove an annotation (repeatable)", collect)
      .option("--remove-decrypter <principal>", "remove a decrypter (repeatable)", collect)
      .option(
        "--resource-version <version>",
        "apply only if the stored resource version is this one (default: the one just read)",
      )
      .option("--allow-missing", "create the secret if it does not exist"),
    "update",
  ).action(async (name: string, o: UpdateOptions, cmd: Command) => {
    const ctx = cli.context(cmd);
    const namespace = requireNamespace(cli, o.namespace);
    const addLabels = parsePairs("--label", o.label);
    const addAnnotations = parsePairs("--annotation", o.annotation);
    const client = ctx.client(SecretsService);
    // UpdateSecret replaces the whole spec, so the options are applied to what is stored, and
    // the write is a compare-and-set against that read: a concurrent change is not lost silently.
    let current: Secret | undefined;
    try {
      current = (await client.getSecret({ namespace, name })).secret;
    } catch (err) {
      if (!(o.allowMissing === true && err instanceof ConnectError && err.code === Code.NotFound)) {
        throw err;
      }
    }
    const labels = edit(current?.labels, o.removeLabel, addLabels);
    const annotations = edit(current?.annotations, o.removeAnnotation, addAnnotations);
    const removed = new Set(o.removeDecrypter ?? []);
    const decrypters = [...(current?.decrypters ?? []), ...(o.decrypter ?? [])].filter(
      (d, i, all) => !removed.has(d) && all.indexOf(d) === i,
    );
    const keeper = o.keeper ?? current?.keeper ?? "";
    const value = await valueFor(ctx, o, namespace, name, keeper, false);
    const res = await client.updateSecret({
      secret: {
        namespace,
        name,
        labels,
        annotations,
        description: o.description ?? current?.description ?? "",
        decrypters,
        keeper,
        ref: o.ref ?? current?.ref ?? "",
        ...(value === undefined ? {} : { value }),
      },
      expectedResourceVersion: o.resourceVersion ?? current?.resourceVersion ?? "",
      allowMissing: o.allowMissing === true,
    });
    printSecret(ctx, res.secret);
  });

  secret
    .command("delete")
    .description("delete a secret with every kept version of its value")
    .argument("<name>", "the secret's name")
    .addOption(namespaceOption())
    .option("--resource-version <version>", "delete only if the stored resource version is this")
    .action(
      async (name: string, o: { namespace?: string; resourceVersion?: string }, cmd: Command) => {
        const ctx = cli.context(cmd);
        const namespace = requireNamespace(cli, o.namespace);
        const res = await ctx.client(SecretsService).deleteSecret({
          namespace,
          name,
          expectedResourceVersion: o.resourceVersion ?? "",
        });
        if (ctx.output === "json") writeMessageJson(ctx.io.stdout, DeleteSecretResponseSchema, res);
        else ctx.io.stdout.write(`deleted secret ${namespace}/${name}\n`);
      },
    );

  secret
    .command("decrypt")
    .description(
      "print secret values (service accounts only): one name prints the bare value, several " +
        "print a table or JSON",
    )
    .argument("<names...>", "the secrets' names, at most 100")
    .addOption(namespaceOption())
    .option("--value-version <version>", "an earlier value version instead of the current one")
    .action(
      async (names: string[], o: { namespace?: string; valueVersion?: string }, cmd: Command) => {
        const ctx = cli.context(cmd);
        const namespace = requireNamespace(cli, o.namespace);
        const version =
          o.valueVersion === undefined
            ? 0n
            : BigInt(parseInteger("--value-version", o.valueVersion, 1, 2 ** 53));
        // Always as bytes: a value is a byte string, and only bytes reproduce every one exactly.
        const res = await ctx
          .client(SecretsService)
          .decryptSecrets({ namespace, names, version, asBytes: true });
        let failed = 0;
        for (const name of names) {
          const r = res.results[name];
          const problem =
            r === undefined ? "no answer" : r.result.case === "error" ? r.result.value : undefined;
          if (problem !== undefined) {
            failed++;
            ctx.io.stderr.write(`seald: ${namespace}/${name}: ${problem}\n`);
          }
        }
        if (names.length === 1) {
          // The bare value, byte for byte, so `$(seald secret decrypt ...)`, pipes and `> file`
          // get exactly it; a newline is added only for a person reading a terminal.
          const r = res.results[names[0] ?? ""];
          if (r?.result.case === "valueBytes") {
            const bytes = r.result.value;
            ctx.io.stdout.write(bytes);
            if (ctx.io.stdout.isTTY === true && bytes[bytes.byteLength - 1] !== 0x0a) {
              ctx.io.stdout.write("\n");
            }
          }
        } else if (ctx.output === "json") {
          writeMessageJson(ctx.io.stdout, DecryptSecretsResponseSchema, asText(res));
        } else {
          const shown = asText(res);
          writeTable(
            ctx.io.stdout,
            ["NAME", "VERSION", "VALUE", "ERROR"],
            names.map((name) => {
              const r = shown.results[name];
              const result = r?.result;
              return [
                name,
                result?.case === "value" || result?.case === "valueBytes" ? String(r?.version) : "",
                result?.case === "value"
                  ? result.value
                  : result?.case === "valueBytes"
                    ? `(${result.value.byteLength} bytes, not text: decrypt it alone or use -o json)`
                    : "",
                r === undefined ? "no answer" : result?.case === "error" ? result.value : "",
              ];
            }),
          );
        }
        if (failed > 0) cli.setExitCode(ExitCode.partial);
      },
    );
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The response with every value that is valid UTF-8 as text (`value`) and the others left as
 * bytes (`valueBytes`, base64 in JSON), so that JSON and tables read as they did before binary
 * values existed and no value is rewritten.
 */
function asText(res: DecryptSecretsResponse): DecryptSecretsResponse {
  const results: DecryptSecretsResponse["results"] = {};
  for (const [name, r] of Object.entries(res.results)) {
    let text: string | undefined;
    if (r.result.case === "valueBytes") {
      try {
        text = strictUtf8.decode(r.result.value);
      } catch {
        text = undefined;
      }
    }
    results[name] =
      text === undefined
        ? r
        : create(DecryptResultSchema, { ...r, result: { case: "value", value: text } });
  }
  return create(DecryptSecretsResponseSchema, { results });
}

/** Reads and seals the value, when the keeper takes one and the options (or stdin) give one. */
async function valueFor(
  ctx: Context,
  o: ValueOptions,
  namespace: string,
  name: string,
  keeper: string,
  stdinByDefault: boolean,
) {
  if (keeper !== "" && keeper !== "system") {
    if (hasValueOption(o)) {
      throw new UsageError(`keeper "${keeper}" holds the value itself; give --ref, not a value`);
    }
    return undefined;
  }
  const bytes = await readValue(o, ctx.io, `value for ${namespace}/${name}: `, stdinByDefault);
  return bytes === undefined ? undefined : sealValue(ctx, namespace, bytes);
}

function edit(
  stored: Readonly<Record<string, string>> | undefined,
  remove: readonly string[] | undefined,
  add: Readonly<Record<string, string>>,
): Record<string, string> {
  const map: Record<string, string> = { ...stored };
  for (const key of remove ?? []) delete map[key];
  return Object.assign(map, add);
}

function printSecret(ctx: Context, s: Secret | undefined): void {
  const secret = s ?? create(SecretSchema);
  if (ctx.output === "json") {
    writeMessageJson(ctx.io.stdout, SecretSchema, secret);
    return;
  }
  writeFields(ctx.io.stdout, [
    ["namespace", secret.namespace],
    ["name", secret.name],
    ["uid", secret.uid],
    ["keeper", secret.keeper],
    ["ref", secret.ref],
    ["version", String(secret.version)],
    ["resource version", secret.resourceVersion],
    ["description", secret.description],
    ["labels", formatMap(secret.labels)],
    ["annotations", formatMap(secret.annotations)],
    ["decrypters", secret.decrypters.join(",")],
    ["created", `${formatTime(secret.createTime)} by ${secret.createdBy}`],
    ["updated", `${formatTime(secret.updateTime)} by ${secret.updatedBy}`],
  ]);
}
