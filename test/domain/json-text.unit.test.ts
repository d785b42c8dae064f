import { describe, expect, it } from "vitest";
import {
  checkWellFormed,
  decodeJsonForParser,
  decodeJsonText,
  InvalidTextError,
} from "../../src/domain/json-text.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
/** A JSON text with the bytes 0xFF 0xFE between `before` and `after`. */
const withBadBytes = (before: string, after: string) =>
  new Uint8Array([...utf8(before), 0xff, 0xfe, ...utf8(after)]);

const errorOf = (fn: () => unknown): InvalidTextError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidTextError) return err;
    throw err;
  }
  throw new Error("expected an InvalidTextError");
};

describe("JSON text that is exactly what was sent", () => {
  it("decodes valid UTF-8, a U+FFFD that was really sent included", () => {
    expect(decodeJsonText(utf8('{"a":"grüße ✓ 😀 \uFFFD"}'))).toBe('{"a":"grüße ✓ 😀 \uFFFD"}');
  });

  it("names the JSON path of the string holding invalid UTF-8, never its text", () => {
    const cases: [string, string, string][] = [
      ['{"secret":{"name":"x","value":{"plaintext":"hunter', '2"}}}', "secret.value.plaintext"],
      ['{"metadata":{"labels":{"app-name":"', '"}}}', 'metadata.labels["app-name"]'],
      ['{"spec":{"decrypters":["a","', '"]}}', "spec.decrypters[1]"],
      ['{"a":[1,{"b":[{"c":"', '"}]}]}', "a[1].b[0].c"],
      // A U+FFFD that was really sent, and an escaped quote, before the bad bytes.
      ['{"x":"\uFFFD","y":"\\"q', '"}', "y"],
    ];
    for (const [before, after, path] of cases) {
      const err = errorOf(() => decodeJsonText(withBadBytes(before, after)));
      expect(err.path, before).toBe(path);
      expect(err.message).toBe(`${path} is not valid UTF-8`);
      expect(err.message).not.toContain("hunter");
    }
    const inKey = errorOf(() => decodeJsonText(withBadBytes('{"labels":{"', '":"v"}}')));
    expect(inKey.message).toBe("labels has a key that is not valid UTF-8");
    expect(errorOf(() => decodeJsonText(withBadBytes("", ""))).message).toBe(
      "the request body is not valid UTF-8",
    );
    // Malformed JSON: an unescaped quote in a value puts its text where a key is expected, so
    // no path is named at all.
    const malformed = errorOf(() =>
      decodeJsonText(withBadBytes('{"value":"pw","secret-rest', '"}')),
    );
    expect(malformed.message).toBe("the request body is not valid UTF-8");
  });

  it("names the string holding a lone surrogate escape, and accepts escaped pairs", () => {
    const at = (text: string) => errorOf(() => checkWellFormed(JSON.parse(text))).message;
    expect(at('{"spec":{"value":"a\\ud800b"}}')).toMatch(/^spec\.value holds a lone surrogate/);
    expect(at('{"a":["ok","\\ud83d\\ude00","\\udc00"]}')).toMatch(/^a\[2\] holds/);
    expect(at('{"labels":{"\\ud83dx":"v"}}')).toMatch(/^labels has a key that holds/);
    expect(() => checkWellFormed(JSON.parse('{"a":"\\ud83d\\ude00"}'))).not.toThrow();
  });

  it("checks surrogate escapes for connect's parser, leaving malformed JSON to it", () => {
    expect(() => decodeJsonForParser(utf8('{"a":"\\udfff"}'))).toThrow(InvalidTextError);
    expect(decodeJsonForParser(utf8('{"a":"\\\\ud800"}'))).toBe('{"a":"\\\\ud800"}');
    expect(decodeJsonForParser(utf8('{"a":"\\ud800'))).toBe('{"a":"\\ud800');
  });

  it("walks a deeply nested value in time linear in its size, naming the path only on error", () => {
    // 200,000 levels: a walk that copied each node's path would take minutes (it did: 57 s at
    // 80,000), so the test's own timeout is the bound.
    const depth = 200_000;
    const deep = JSON.parse(`${"[".repeat(depth)}"\\ud800"${"]".repeat(depth)}`);
    const err = errorOf(() => checkWellFormed(deep));
    expect(err.message).toContain("[0][0][0]");
    expect(() =>
      checkWellFormed(JSON.parse(`${"[".repeat(depth)}"ok"${"]".repeat(depth)}`)),
    ).not.toThrow();
  });
});
