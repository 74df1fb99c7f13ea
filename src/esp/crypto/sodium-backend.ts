/**
 * The crypto backend on the optional sodium-native addon (libsodium): ChaCha20-Poly1305 only (IETF variant,
 * RFC 8439), detached tag, in place. Everything else returns null so selection falls through to node:crypto.
 *
 * sodium-native 5 takes any typed-array view (it checks ArrayBuffer.isView and honours byteOffset), so
 * Uint8Array subarrays go in as they are, without Buffer wrappers.
 */
import { createRequire } from 'node:module';
import type { AeadAlgorithm } from '../suites.js';
import type { AeadKey, CryptoBackend } from './backend.js';

/** The two sodium-native functions this backend calls. */
interface SodiumAead {
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
    c: Uint8Array,
    mac: Uint8Array,
    m: Uint8Array,
    ad: Uint8Array,
    nsec: null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  /** Throws when the tag does not verify. */
  crypto_aead_chacha20poly1305_ietf_decrypt_detached(
    m: Uint8Array,
    nsec: null,
    c: Uint8Array,
    mac: Uint8Array,
    ad: Uint8Array,
    npub: Uint8Array,
    k: Uint8Array,
  ): void;
}

const TAG_LENGTH = 16;

class SodiumChaChaKey implements AeadKey {
  readonly tagLength = TAG_LENGTH;
  private readonly key: Uint8Array;
  private readonly sealTag = new Uint8Array(TAG_LENGTH);

  constructor(
    private readonly sodium: SodiumAead,
    key: Uint8Array,
  ) {
    this.key = Uint8Array.from(key);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): void {
    checkNonce(nonce);
    // sodium wants exactly 16 bytes for the tag; a longer `tag` view gets the tag in its first 16.
    const out = tag.length === TAG_LENGTH ? tag : this.sealTag;
    this.sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(
      data,
      out,
      data,
      aad,
      null,
      nonce,
      this.key,
    );
    if (out !== tag) tag.set(out);
  }

  open(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean {
    checkNonce(nonce);
    if (tag.length !== TAG_LENGTH) return false;
    try {
      // libsodium verifies the tag in constant time before it decrypts anything, and zeroes `data` on a
      // mismatch (aead_chacha20poly1305.c: memset(m, 0, mlen)), as AeadKey.open allows.
      this.sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(
        data,
        null,
        data,
        tag,
        aad,
        nonce,
        this.key,
      );
    } catch {
      return false;
    }
    return true;
  }
}

/** A nonce of another length is the caller's bug (ESP builds salt ‖ IV), so it throws. */
function checkNonce(nonce: Uint8Array): void {
  if (nonce.length !== 12) throw new Error(`chacha20-poly1305: nonce must be 12 bytes, got ${nonce.length}`);
}

function isSodiumAead(m: unknown): m is SodiumAead {
  const s = m as Partial<Record<keyof SodiumAead, unknown>> | null;
  return (
    typeof s?.crypto_aead_chacha20poly1305_ietf_encrypt_detached === 'function' &&
    typeof s.crypto_aead_chacha20poly1305_ietf_decrypt_detached === 'function'
  );
}

/** The sodium backend, or null when sodium-native is not installed or does not load on this platform. */
export function loadSodiumBackend(): CryptoBackend | null {
  let sodium: unknown;
  try {
    sodium = createRequire(import.meta.url)('sodium-native');
  } catch {
    return null;
  }
  if (!isSodiumAead(sodium)) return null;
  const lib = sodium;
  return {
    name: 'sodium',
    aead(alg: AeadAlgorithm, key: Uint8Array, tagLength: number): AeadKey | null {
      if (alg !== 'chacha20-poly1305' || key.length !== 32 || tagLength !== TAG_LENGTH) return null;
      return new SodiumChaChaKey(lib, key);
    },
    aesCbc: () => null,
    hmac: () => null,
  };
}
