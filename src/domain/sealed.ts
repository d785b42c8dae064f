/**
 * The shapes of sealed material as every layer passes it around: a sealed value (Envelope) and a
 * namespace's sealing key pair. Data only; src/crypto makes and opens them, src/store keeps them.
 */

/**
 * A sealed value as stored: the value encrypted under its own data key (DEK), and the DEK
 * encrypted ("wrapped") under the master key (KEK) named by `kekId`.
 */
export type Envelope = {
  /** Id of the master key that wraps the DEK; kept in a field of its own for rotation. */
  readonly kekId: string;
  /** Nonce of the DEK wrap. */
  readonly dekNonce: Uint8Array;
  /** The DEK encrypted under the master key. */
  readonly wrappedDek: Uint8Array;
  /** Nonce of the value encryption. */
  readonly nonce: Uint8Array;
  /** The value encrypted under the DEK, tag included. */
  readonly ciphertext: Uint8Array;
};

/** A namespace's X25519 private key, encrypted under a master key. */
export type WrappedPrivateKey = {
  /** Id of the master key that wraps it. */
  readonly kekId: string;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
};

/** A namespace's key pair for client-side sealing, as stored. */
export type NamespaceKeyPair = {
  readonly namespace: string;
  /** Short id derived from the public key; see publicKeyId. */
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  readonly wrappedPrivateKey: WrappedPrivateKey;
};
