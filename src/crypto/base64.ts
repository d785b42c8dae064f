const STANDARD_ALPHABET = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes standard (RFC 4648 section 4) base64, padded or not, returning undefined for anything
 * else: other alphabets, whitespace, misplaced padding or non-canonical trailing bits.
 */
export function decodeStandardBase64(text: string): Uint8Array | undefined {
  // Buffer.from(text, "base64") alone is far too lenient for key material and client input: it
  // skips characters it does not know, accepts the URL-safe alphabet and ignores stray padding,
  // so two different strings could name the same key and typos would go unnoticed.
  if (!STANDARD_ALPHABET.test(text)) return undefined;
  const body = text.replace(/=+$/, "");
  const padding = text.length - body.length;
  if (body.length % 4 === 1) return undefined;
  if (padding > 0 && (body.length + padding) % 4 !== 0) return undefined;
  const decoded = Buffer.from(body, "base64");
  try {
    // Re-encoding catches non-canonical input ("QR==" and "QQ==" both decode to "A").
    if (decoded.toString("base64").replace(/=+$/, "") !== body) return undefined;
    // A copy, because small Buffers are slices of a shared pool the caller must not hold onto.
    return Uint8Array.from(decoded);
  } finally {
    decoded.fill(0);
  }
}

/** Encodes bytes as standard, padded base64. */
export function encodeStandardBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
