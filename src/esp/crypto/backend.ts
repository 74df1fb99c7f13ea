import type { AeadAlgorithm, HashAlgorithm } from '../suites.js';

/**
 * One crypto library seen through the three primitives ESP needs. Every method that takes a key returns an
 * object keyed once per SA (key schedule, key objects) so the per-packet calls only move bytes. A backend
 * that does not offer a primitive (or a key length, or a tag length) returns null, and the caller picks
 * another backend.
 */
export interface CryptoBackend {
  readonly name: BackendName;
  aead(alg: AeadAlgorithm, key: Uint8Array, tagLength: number): AeadKey | null;
  /** AES-CBC without padding (ESP pads for itself); key of 16, 24 or 32 bytes. */
  aesCbc(key: Uint8Array): CbcKey | null;
  /** HMAC truncated to `macLength` bytes (RFC 2404: SHA-1-96; RFC 4868: SHA-256-128). */
  hmac(hash: HashAlgorithm, key: Uint8Array, macLength: number): MacKey | null;
}

export type BackendName = 'sodium' | 'node' | 'noble';

export interface AeadKey {
  readonly tagLength: number;
  /** Encrypts `data` in place and writes the tag (truncated to `tagLength`) to `tag`. Nonce is 12 bytes. */
  seal(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): void;
  /**
   * Checks `tag` in constant time, and only if it matches decrypts `data` in place and returns true.
   * On a mismatch returns false and `data` holds no plaintext, but may no longer hold the ciphertext
   * either (libsodium zeroes it): keep a copy if the same bytes are to be tried with another key.
   */
  open(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean;
}

export interface CbcKey {
  /** Encrypts `data` (a whole number of 16-byte blocks) in place. */
  encrypt(iv: Uint8Array, data: Uint8Array): void;
  /** Decrypts `data` (a whole number of 16-byte blocks) in place. */
  decrypt(iv: Uint8Array, data: Uint8Array): void;
}

export interface MacKey {
  readonly macLength: number;
  /** Writes HMAC(data ‖ extra) truncated to `macLength` into `out`; `extra` is the ESN high half or empty. */
  compute(data: Uint8Array, extra: Uint8Array, out: Uint8Array): void;
  /** Constant-time comparison of HMAC(data ‖ extra), truncated, with `mac`. */
  verify(data: Uint8Array, extra: Uint8Array, mac: Uint8Array): boolean;
}
