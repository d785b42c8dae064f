/**
 * JSON text that is exactly what the client sent, or an error naming where it is not. A lenient
 * UTF-8 decoder turns invalid bytes (0xFF, 0xFE) into U+FFFD and JSON.parse turns an escaped lone
 * surrogate ("\ud800") into a string that has no UTF-8 encoding: either way the stored secret
 * would differ from what the client sent. Both are refused here, with the JSON path of the string
 * that holds them and never its text, since that string may be a secret value.
 */

/** Where a body is not text: the JSON path of the string, and what is wrong with it. */
export class InvalidTextError extends Error {
  /** What is wrong, without the path: "is not valid UTF-8", "has a key that ...". */
  readonly detail: string;

  constructor(
    /** The path of the offending string (of its object, for a key); "" for the top level. */
    readonly path: string,
    inKey: boolean,
    problem: "invalid UTF-8" | "a lone surrogate",
  ) {
    const what =
      problem === "invalid UTF-8"
        ? "is not valid UTF-8"
        : "holds a lone surrogate escape (\\ud800 to \\udfff), which has no UTF-8 form";
    const detail = inKey ? `has a key that ${what}` : what;
    super(`${path || "the request body"} ${detail}`);
    this.detail = detail;
    this.name = "InvalidTextError";
  }
}

const strict = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder("utf-8");
const encoder = new TextEncoder();

/**
 * Decodes UTF-8 JSON text, throwing InvalidTextError naming the string that holds the first
 * invalid byte. The text itself is never put in the error.
 */
export function decodeJsonText(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
  // The path is named only when the body is otherwise well-formed JSON: in a malformed one, text
  // meant as part of a value (a secret, perhaps) could sit where a key is expected.
  try {
    JSON.parse(lenient.decode(bytes));
  } catch {
    throw new InvalidTextError("", false, "invalid UTF-8");
  }
  const { path, inKey } = jsonPathAt(lenient.decode(bytes.subarray(0, firstInvalidByte(bytes))));
  throw new InvalidTextError(path, inKey, "invalid UTF-8");
}

/**
 * The offset of the first byte that is not part of valid UTF-8: the lenient decoding re-encodes
 * to the same bytes up to there (a U+FFFD that was really sent re-encodes as itself).
 */
function firstInvalidByte(bytes: Uint8Array): number {
  const again = encoder.encode(lenient.decode(bytes));
  let i = 0;
  while (i < bytes.length && i < again.length && bytes[i] === again[i]) i++;
  return i;
}

/** A key as a path segment: bare when it is an identifier, else quoted in brackets. */
function segment(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function joinPath(parts: readonly string[]): string {
  return parts.join("").replace(/^\./, "");
}

interface Frame {
  readonly array: boolean;
  /** The current key (objects) or index (arrays) as a segment; undefined between members. */
  at: string | undefined;
  /** The index of the current element (arrays). */
  index: number;
  /** Whether the next string is a key (objects). */
  expectKey: boolean;
}

/** A value begins: in an array, that makes it the current element. */
function beginValue(top: Frame | undefined): void {
  if (top?.array && top.at === undefined) top.at = `[${top.index}]`;
}

/**
 * The path of the string that `prefix` (the start of a JSON text) ends inside. Best effort on a
 * text that is malformed before that point: the path is then as far as it could be followed.
 */
export function jsonPathAt(prefix: string): { path: string; inKey: boolean } {
  const stack: Frame[] = [];
  const path = () => joinPath(stack.map((f) => f.at ?? ""));
  let i = 0;
  while (i < prefix.length) {
    const c = prefix[i] as string;
    const top = stack[stack.length - 1];
    if (c === '"') {
      const isKey = top !== undefined && !top.array && top.expectKey;
      if (!isKey) beginValue(top);
      // Find the closing quote; running out means the prefix ends inside this string.
      let j = i + 1;
      while (j < prefix.length && prefix[j] !== '"') j += prefix[j] === "\\" ? 2 : 1;
      if (j >= prefix.length) return { path: path(), inKey: isKey };
      if (isKey && top) {
        const raw = prefix.slice(i, j + 1);
        let key = raw.slice(1, -1);
        try {
          key = JSON.parse(raw) as string;
        } catch {
          // A malformed escape: name the key as it was written.
        }
        top.at = segment(key);
        top.expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === "{" || c === "[") {
      beginValue(top);
      stack.push({ array: c === "[", at: undefined, index: 0, expectKey: c === "{" });
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === "," && top) {
      top.at = undefined;
      if (top.array) top.index++;
      else top.expectKey = true;
    } else if (!/[\s:]/.test(c)) {
      beginValue(top);
    }
    i++;
  }
  return { path: path(), inKey: false };
}

// In a `u` regular expression a well-formed surrogate pair is one astral code point, so only a
// lone surrogate matches.
const loneSurrogate = /\p{Cs}/u;

/**
 * Throws InvalidTextError naming the first string (key or value) of a parsed JSON value that holds
 * a lone surrogate. Iterative, so a deep value cannot exhaust the stack.
 */
export function checkWellFormed(value: unknown): void {
  // Each entry links to its parent's instead of copying the path, so a deeply nested value costs
  // time and memory linear in its size; the path is spelt out only for the error.
  interface Entry {
    readonly value: unknown;
    readonly segment: string | undefined;
    readonly parent: Entry | undefined;
  }
  const pathOf = (entry: Entry): string[] => {
    const segments: string[] = [];
    for (let e: Entry | undefined = entry; e?.segment !== undefined; e = e.parent)
      segments.push(e.segment);
    return segments.reverse();
  };
  const stack: Entry[] = [{ value, segment: undefined, parent: undefined }];
  while (stack.length > 0) {
    const entry = stack.pop() as Entry;
    const v = entry.value;
    if (typeof v === "string") {
      if (loneSurrogate.test(v))
        throw new InvalidTextError(joinPath(pathOf(entry)), false, "a lone surrogate");
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (Array.isArray(v)) {
      v.forEach((child, i) => {
        stack.push({ value: child, segment: `[${i}]`, parent: entry });
      });
      continue;
    }
    for (const [key, child] of Object.entries(v)) {
      if (loneSurrogate.test(key))
        throw new InvalidTextError(joinPath(pathOf(entry)), true, "a lone surrogate");
      stack.push({ value: child, segment: segment(key), parent: entry });
    }
  }
}

// A lone surrogate can only come from an escape: strictly decoded UTF-8 never holds one.
const surrogateEscape = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;

/**
 * Decodes a JSON text for a parser that reads it afterwards (connect's JSON codec): invalid UTF-8
 * and escaped lone surrogates are InvalidTextError naming their path. Only a text that has a
 * surrogate escape at all is parsed here, so the common case costs one strict decode.
 */
export function decodeJsonForParser(bytes: Uint8Array): string {
  const text = decodeJsonText(bytes);
  if (surrogateEscape.test(text)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Malformed JSON: the parser that reads it next says so in its own words.
      return text;
    }
    checkWellFormed(parsed);
  }
  return text;
}
