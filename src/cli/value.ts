/**
 * Secret values on the client: read from stdin, a file, a hidden prompt, or (only when forced)
 * an argument, then sealed for the namespace's public key so that no plaintext leaves the
 * process.
 */
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { type SecretValue, SecretValueSchema } from "../../gen/secrets/v1/resource_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { decodeStandardBase64 } from "../crypto/base64.js";
import { BOX_KEY_BYTES, sealForPublicKey } from "../crypto/sealed-box.js";
import { loadSodium } from "../crypto/sodium.js";
import type { Context } from "./context.js";
import { CliError, UsageError } from "./errors.js";
import type { Input, Io } from "./io.js";

/** The value options of `secret create` and `secret update`. */
export interface ValueOptions {
  readonly valueFile?: string;
  readonly value?: string;
  readonly insecureValueArg?: boolean;
}

/** Whether the options name a value source at all. */
export function hasValueOption(o: ValueOptions): boolean {
  return o.valueFile !== undefined || o.value !== undefined;
}

/**
 * Reads the value the options name; with none named, reads stdin when `stdinByDefault`, and
 * returns undefined otherwise. The bytes are exactly what was given: a trailing newline from
 * `echo` is part of the value (use `printf` or `echo -n` to leave it out).
 */
export async function readValue(
  o: ValueOptions,
  io: Io,
  prompt: string,
  stdinByDefault: boolean,
): Promise<Uint8Array | undefined> {
  if (o.value !== undefined && o.valueFile !== undefined) {
    throw new UsageError("--value and --value-file: give one, not both");
  }
  if (o.value !== undefined) {
    if (o.insecureValueArg !== true) {
      // The value itself is deliberately not repeated in the message.
      throw new UsageError(
        "--value puts the secret in the process list and the shell history; pipe it on stdin " +
          "or use --value-file <path>, or add --insecure-value-arg if you really mean it",
      );
    }
    return new TextEncoder().encode(o.value);
  }
  if (o.insecureValueArg === true) throw new UsageError("--insecure-value-arg is only for --value");
  if (o.valueFile !== undefined && o.valueFile !== "-") {
    try {
      return new Uint8Array(await readFile(o.valueFile));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
      throw new CliError(`cannot read --value-file ${o.valueFile} (${code})`);
    }
  }
  if (o.valueFile === undefined && !stdinByDefault) return undefined;
  return io.stdin.isTTY === true ? promptHidden(io, prompt) : readAll(io.stdin);
}

async function readAll(input: Input): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) {
    chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  }
  const all = Buffer.concat(chunks);
  for (const c of chunks) c.fill(0);
  try {
    return Uint8Array.from(all);
  } finally {
    all.fill(0);
  }
}

/** Asks for one line on the terminal without echoing it. */
function promptHidden(io: Io, prompt: string): Promise<Uint8Array> {
  io.stderr.write(prompt);
  // readline echoes typed characters through its output stream; a stream that drops them keeps
  // the value off the screen while the terminal is in raw mode.
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: io.stdin, output: muted, terminal: true });
  return new Promise((resolve, reject) => {
    // Settle before close(): it emits "close" synchronously, which would reject first.
    rl.once("line", (line) => {
      resolve(new TextEncoder().encode(line));
      io.stderr.write("\n");
      rl.close();
    });
    rl.once("SIGINT", () => {
      reject(new CliError("cancelled"));
      io.stderr.write("\n");
      rl.close();
    });
    rl.once("close", () => reject(new CliError("no value given")));
  });
}

/**
 * Seals a value for the namespace's current public key (GetPublicKey, then crypto_box_seal), so
 * the request carries only the sealed box; the bytes are zeroed afterwards.
 */
export async function sealValue(
  ctx: Context,
  namespace: string,
  bytes: Uint8Array,
): Promise<SecretValue> {
  try {
    const { keyId, publicKey } = await ctx.client(SecretsService).getPublicKey({ namespace });
    const key = decodeStandardBase64(publicKey);
    if (key === undefined || key.byteLength !== BOX_KEY_BYTES) {
      throw new CliError(`the server sent a malformed public key for namespace "${namespace}"`);
    }
    await loadSodium();
    return create(SecretValueSchema, {
      kind: { case: "sealed", value: { keyId, box: sealForPublicKey(key, bytes) } },
    });
  } finally {
    bytes.fill(0);
  }
}
