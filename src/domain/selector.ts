/**
 * Selector requirements: the parsed form of label and field selectors, shared by the RPC API and
 * both REST dialects. Each dialect parses its own syntax into these; the store turns them into a
 * database query.
 */

/**
 * One label requirement (Kubernetes semantics: "!=" and "notin" also match a missing label;
 * "matches" is Sensu's substring test on the label's value and needs the label).
 */
export interface LabelRequirement {
  readonly key: string;
  readonly op: "=" | "!=" | "in" | "notin" | "exists" | "!exists" | "matches";
  readonly values: readonly string[];
}

/** Fields a selector can address. */
export type SelectableField = "namespace" | "name" | "keeper" | "ref" | "decrypter";

/** One field requirement; "matches" is Sensu's substring test. */
export interface FieldRequirement {
  readonly field: SelectableField;
  readonly op: "=" | "!=" | "in" | "notin" | "matches";
  readonly values: readonly string[];
}

/** A selector that does not parse; `position` is the 0-based character offset of the problem. */
export class SelectorSyntaxError extends Error {
  constructor(
    readonly position: number,
    problem: string,
  ) {
    super(`${problem} at position ${position}`);
    this.name = "SelectorSyntaxError";
  }
}

/**
 * A small scanner over Kubernetes selector text: identifiers/values, operators and punctuation,
 * with positions for error messages.
 */
class Scanner {
  pos = 0;
  constructor(private readonly text: string) {}

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos] ?? "")) this.pos++;
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.pos >= this.text.length;
  }

  peek(s: string): boolean {
    this.skipSpace();
    return this.text.startsWith(s, this.pos);
  }

  eat(s: string): boolean {
    if (!this.peek(s)) return false;
    this.pos += s.length;
    return true;
  }

  expect(s: string): void {
    if (!this.eat(s)) throw new SelectorSyntaxError(this.pos, `expected "${s}"`);
  }

  /** A run of characters that are not whitespace, operators or punctuation (may be empty). */
  word(): string {
    this.skipSpace();
    const start = this.pos;
    while (this.pos < this.text.length && !/[\s,=!()]/.test(this.text[this.pos] ?? "")) this.pos++;
    return this.text.slice(start, this.pos);
  }

  /** A word followed by whitespace or "(" (so that a key named "internal" is not "in"). */
  keyword(k: string): boolean {
    this.skipSpace();
    if (!this.text.startsWith(k, this.pos)) return false;
    const next = this.text[this.pos + k.length];
    if (next !== undefined && !/[\s(]/.test(next)) return false;
    this.pos += k.length;
    return true;
  }
}

/**
 * Parses a Kubernetes label selector: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`,
 * `!k`, joined by commas. The empty selector selects everything.
 */
export function parseLabelSelector(text: string): LabelRequirement[] {
  const s = new Scanner(text);
  const out: LabelRequirement[] = [];
  if (s.atEnd()) return out;
  for (;;) {
    if (s.eat("!")) {
      const start = s.pos;
      const key = s.word();
      if (key === "") throw new SelectorSyntaxError(start, "expected a label key after '!'");
      out.push({ key, op: "!exists", values: [] });
    } else {
      const start = s.pos;
      const key = s.word();
      if (key === "") throw new SelectorSyntaxError(start, "expected a label key");
      if (s.eat("==") || s.eat("=")) out.push({ key, op: "=", values: [s.word()] });
      else if (s.eat("!=")) out.push({ key, op: "!=", values: [s.word()] });
      else if (s.keyword("notin")) out.push({ key, op: "notin", values: valueSet(s) });
      else if (s.keyword("in")) out.push({ key, op: "in", values: valueSet(s) });
      else out.push({ key, op: "exists", values: [] });
    }
    if (s.atEnd()) return out;
    s.expect(",");
  }
}

function valueSet(s: Scanner): string[] {
  s.expect("(");
  const values: string[] = [];
  for (;;) {
    values.push(s.word());
    if (s.eat(")")) break;
    s.expect(",");
  }
  if (values.length === 1 && values[0] === "")
    throw new SelectorSyntaxError(s.pos, "expected at least one value");
  return values;
}

/**
 * Parses a Kubernetes field selector (`field=value`, `field==value`, `field!=value`, joined by
 * commas) over the given field names, mapped to selectable fields. A backslash escapes the next
 * character in a value, as in Kubernetes. An unknown field is an error naming it.
 */
export function parseFieldSelector(
  text: string,
  fields: Readonly<Record<string, SelectableField>>,
): FieldRequirement[] {
  const out: FieldRequirement[] = [];
  if (text.trim() === "") return out;
  let pos = 0;
  for (const term of splitUnescaped(text, ",")) {
    const match = /^\s*([^=!\s]+)\s*(==|=|!=)(.*)$/s.exec(term);
    if (!match)
      throw new SelectorSyntaxError(pos, "expected field=value, field==value or field!=value");
    const [, name = "", op, rawValue = ""] = match;
    const field = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (!field) {
      throw new SelectorSyntaxError(
        pos,
        `unknown field "${name}" (supported: ${Object.keys(fields).join(", ")})`,
      );
    }
    out.push({ field, op: op === "!=" ? "!=" : "=", values: [unescapeValue(rawValue.trim())] });
    pos += term.length + 1;
  }
  return out;
}

function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? "";
    if (c === "\\" && i + 1 < text.length) {
      current += c + (text[i + 1] ?? "");
      i++;
    } else if (c === separator) {
      parts.push(current);
      current = "";
    } else current += c;
  }
  parts.push(current);
  return parts;
}

function unescapeValue(value: string): string {
  return value.replace(/\\(.)/g, "$1");
}
