/**
 * Sensu's response-filtering language (`labelSelector` and `fieldSelector`), parsed by a lexer and
 * a recursive-descent parser, then translated into the domain's label and field requirements so
 * that the database evaluates them (nothing is filtered in memory).
 *
 * Grammar (whitespace between tokens is ignored):
 *
 *   selector  := [ operation { "&&" operation } ]
 *   operation := operand ( "==" | "!=" | "matches" ) operand
 *              | operand ( "in" | "notin" ) ( "[" [ operand { "," operand } ] "]" | operand )
 *   operand   := word | string
 *   word      := ( letter | digit | "_" ) { letter | digit | "_" | "." | "/" }
 *   string    := '"' { any but '"' } '"' | "'" { any but "'" } "'"
 *
 * `in`, `notin` and `matches` are keywords in any letter case; a key or value spelled like one, or
 * holding any other character (such as "-" or ":"), must be quoted. Strings have no escapes.
 *
 * Semantics follow Sensu's: every operation must hold (AND), repeated parameters too; a label or
 * field that a resource lacks fails `==`, `in` and `matches` and passes `!=` and `notin`, so an
 * unknown field matches nothing with `==` and everything with `!=`; `matches` is a substring test,
 * never a pattern. As in Sensu, `value in field` with a bare field name on the right tests the
 * field (`env in secret.provider`).
 */

import {
  type FieldRequirement,
  type LabelRequirement,
  type SelectableField,
  SelectorSyntaxError,
} from "../../domain/selector.js";
import type { ProviderRequirement } from "../../service/providers.js";

export type Operator = "==" | "!=" | "in" | "notin" | "matches";

/** One parsed `key OP value(s)` term. */
export interface Operation {
  readonly key: string;
  readonly op: Operator;
  readonly values: readonly string[];
  /** `in`/`notin` followed by one unquoted word instead of a bracketed list. */
  readonly bare: boolean;
}

type TokenKind =
  | "word"
  | "string"
  | "=="
  | "!="
  | "&&"
  | "["
  | "]"
  | ","
  | "in"
  | "notin"
  | "matches"
  | "end";

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  /** 0-based offset of the token's first character. */
  readonly pos: number;
}

const keywords: Record<string, TokenKind> = { in: "in", notin: "notin", matches: "matches" };
const wordStart = /[\p{L}\p{N}_]/u;
const wordTail = /[\p{L}\p{N}_./]/u;
const space = /\s/u;

/** Splits selector text into tokens; throws SelectorSyntaxError at the first bad character. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] ?? "";
    if (space.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (c === "[" || c === "]" || c === ",") {
      tokens.push({ kind: c, text: c, pos: start });
      i++;
    } else if (c === "=" || c === "!" || c === "&") {
      const second = c === "&" ? "&" : "=";
      if (text[i + 1] !== second) {
        throw new SelectorSyntaxError(
          start,
          `expected '${c}${second}' but found '${text.slice(start, start + 2)}'`,
        );
      }
      tokens.push({ kind: `${c}${second}` as TokenKind, text: `${c}${second}`, pos: start });
      i += 2;
    } else if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new SelectorSyntaxError(start, "unterminated string");
      tokens.push({ kind: "string", text: text.slice(i + 1, end), pos: start });
      i = end + 1;
    } else if (wordStart.test(c)) {
      i++;
      while (i < text.length && wordTail.test(text[i] ?? "")) i++;
      const word = text.slice(start, i);
      tokens.push({ kind: keywords[word.toLowerCase()] ?? "word", text: word, pos: start });
    } else {
      throw new SelectorSyntaxError(start, `unexpected character '${c}'`);
    }
  }
  tokens.push({ kind: "end", text: "", pos: text.length });
  return tokens;
}

function describe(t: Token): string {
  if (t.kind === "end") return "the end of the selector";
  return t.kind === "string" ? `"${t.text}"` : `'${t.text}'`;
}

const isOperand = (t: Token) => t.kind === "word" || t.kind === "string";

/** Parses one selector expression; the empty expression selects everything. */
export function parseSelector(text: string): Operation[] {
  const tokens = tokenize(text);
  let at = 0;
  const next = (): Token => tokens[Math.min(at++, tokens.length - 1)] as Token;
  const peek = (): Token => tokens[Math.min(at, tokens.length - 1)] as Token;
  const fail = (t: Token, expected: string): never => {
    throw new SelectorSyntaxError(t.pos, `expected ${expected} but found ${describe(t)}`);
  };

  const operation = (): Operation => {
    const key = next();
    if (!isOperand(key)) fail(key, "a key (a name or a quoted string)");
    const op = next();
    switch (op.kind) {
      case "==":
      case "!=":
      case "matches": {
        const value = next();
        if (!isOperand(value)) fail(value, "a value (a name or a quoted string)");
        return { key: key.text, op: op.kind, values: [value.text], bare: false };
      }
      case "in":
      case "notin": {
        const first = next();
        if (isOperand(first)) {
          return { key: key.text, op: op.kind, values: [first.text], bare: first.kind === "word" };
        }
        if (first.kind !== "[") fail(first, `'[' or a value after '${op.text}'`);
        const values: string[] = [];
        if (peek().kind === "]") {
          next();
          return { key: key.text, op: op.kind, values, bare: false };
        }
        for (;;) {
          const value = next();
          if (!isOperand(value)) fail(value, "a value (a name or a quoted string)");
          values.push(value.text);
          const sep = next();
          if (sep.kind === "]") return { key: key.text, op: op.kind, values, bare: false };
          if (sep.kind !== ",") fail(sep, "',' or ']'");
        }
      }
      default:
        return fail(op, "an operator (==, !=, in, notin or matches)");
    }
  };

  const operations: Operation[] = [];
  if (peek().kind === "end") return operations;
  for (;;) {
    operations.push(operation());
    const t = next();
    if (t.kind === "end") return operations;
    if (t.kind !== "&&") fail(t, "'&&' or the end of the selector");
  }
}

/** Parses every occurrence of a query parameter; repeated parameters are ANDed. */
function parseAll(texts: readonly string[]): Operation[] {
  return texts.flatMap(parseSelector);
}

/** True for the operators a missing label or field passes. */
const passesWhenMissing = (op: Operator) => op === "!=" || op === "notin";

const fieldOps = { "==": "=", "!=": "!=", in: "in", notin: "notin", matches: "matches" } as const;

/** A requirement no secret meets: `name in []`. */
const noSecret: FieldRequirement = { field: "name", op: "in", values: [] };

/** Fields a secret's fieldSelector may address, with the domain field each one is. */
const secretFields: Readonly<Record<string, SelectableField>> = {
  "secret.name": "name",
  "secret.namespace": "namespace",
  "secret.provider": "keeper",
  "secret.id": "ref",
};
const secretLabelPrefix = "secret.labels.";

/** The requirements on secrets that the selector parameters express. */
export function secretRequirements(
  labelSelectors: readonly string[],
  fieldSelectors: readonly string[],
): { labels: LabelRequirement[]; fields: FieldRequirement[] } {
  const labels: LabelRequirement[] = [];
  const fields: FieldRequirement[] = [];
  const label = (key: string, op: Operator, values: readonly string[]) => {
    // A key holding "=" cannot be a label key (the store encodes pairs as "k=v"): it is a label
    // no secret has, so it must not be allowed to reach into another label's value.
    if (key.includes("=")) {
      if (!passesWhenMissing(op)) fields.push(noSecret);
      return;
    }
    labels.push({ key, op: fieldOps[op], values });
  };
  for (const o of parseAll(labelSelectors)) label(o.key, o.op, o.values);
  for (const o of parseAll(fieldSelectors)) {
    const reversed = reversedField(
      o,
      (f) => Object.hasOwn(secretFields, f) || f.startsWith(secretLabelPrefix),
    );
    const { key, op, values } = reversed ?? o;
    const field = Object.hasOwn(secretFields, key) ? secretFields[key] : undefined;
    if (field) fields.push({ field, op: fieldOps[op], values });
    else if (key.startsWith(secretLabelPrefix))
      label(key.slice(secretLabelPrefix.length), op, values);
    else if (!passesWhenMissing(op)) fields.push(noSecret);
  }
  return { labels, fields };
}

const providerLabelPrefix = "provider.labels.";

/**
 * The requirements on providers that the selector parameters express: on the name
 * (`provider.name`) and on labels (by key in labelSelector, or `provider.labels.<key>` in
 * fieldSelector), with the secrets' semantics.
 */
export function providerRequirements(
  labelSelectors: readonly string[],
  fieldSelectors: readonly string[],
): { names: ProviderRequirement[]; labels: LabelRequirement[] } {
  const names: ProviderRequirement[] = [];
  const labels: LabelRequirement[] = [];
  const noProvider: ProviderRequirement = { op: "in", values: [] };
  const label = (key: string, op: Operator, values: readonly string[]) => {
    // As for secrets: a key holding "=" is a label no provider has.
    if (key.includes("=")) {
      if (!passesWhenMissing(op)) names.push(noProvider);
      return;
    }
    labels.push({ key, op: fieldOps[op], values });
  };
  for (const o of parseAll(labelSelectors)) label(o.key, o.op, o.values);
  for (const o of parseAll(fieldSelectors)) {
    const reversed = reversedField(
      o,
      (f) => f === "provider.name" || f.startsWith(providerLabelPrefix),
    );
    const { key, op, values } = reversed ?? o;
    if (key === "provider.name") names.push({ op: fieldOps[op], values });
    else if (key.startsWith(providerLabelPrefix))
      label(key.slice(providerLabelPrefix.length), op, values);
    else if (!passesWhenMissing(op)) names.push(noProvider);
  }
  return { names, labels };
}

/**
 * Sensu's `value in field` form: `in`/`notin` with one bare word on the right that names a field
 * tests that field for the left-hand value, as `field == value` (or `!=`).
 */
function reversedField(o: Operation, isField: (name: string) => boolean): Operation | undefined {
  const target = o.values[0];
  if (!o.bare || target === undefined || !isField(target)) return undefined;
  return { key: target, op: o.op === "in" ? "==" : "!=", values: [o.key], bare: false };
}
