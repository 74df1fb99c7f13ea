/**
 * The crypto backend on node:crypto (OpenSSL). Keys become KeyObjects once per SA; every packet still
 * needs a fresh cipher context (node:crypto has no reusable one) and OpenSSL's output buffer, which is
 * copied into the caller's bytes.
 */
import {
  type CipherCCMTypes,
  type CipherChaCha20Poly1305Types,
  type CipherGCMTypes,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  getCiphers,
  type KeyObject,
  timingSafeEqual,
} from 'node:crypto';
import type { AeadAlgorithm, HashAlgorithm } from '../suites.js';
import type { AeadKey, CbcKey, CryptoBackend, MacKey } from './backend.js';

type AeadCipherName = CipherGCMTypes | CipherChaCha20Poly1305Types;

const AES_KEY_LENGTHS = [16, 24, 32];
/** The ICV lengths RFC 4106 defines for ESP. */
const GCM_TAG_LENGTHS = [8, 12, 16];
const HMAC_DIGEST_LENGTH: Readonly<Record<HashAlgorithm, number>> = { sha1: 20, sha256: 32 };

/** A nonce of another length is the caller's bug (ESP builds salt ‖ IV), so it throws. */
function checkNonce(alg: AeadAlgorithm, nonce: Uint8Array): void {
  if (nonce.length !== 12) throw new Error(`${alg}: nonce must be 12 bytes, got ${nonce.length}`);
}

/** A partial block is the caller's bug (ESP checks the ciphertext length first), so it throws. */
function checkBlocks(data: Uint8Array): void {
  if (data.length % 16 !== 0)
    throw new Error(`aes-cbc: data of ${data.length} bytes is not a whole number of 16-byte blocks`);
}

let chachaOffered: boolean | undefined;

/** OpenSSL may be built without ChaCha20-Poly1305; asked once. */
function offersChaCha(): boolean {
  chachaOffered ??= getCiphers().includes('chacha20-poly1305');
  return chachaOffered;
}

class NodeAeadKey implements AeadKey {
  constructor(
    private readonly alg: AeadAlgorithm,
    private readonly cipherName: AeadCipherName,
    private readonly key: KeyObject,
    readonly tagLength: number,
  ) {}

  seal(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): void {
    checkNonce(this.alg, nonce);
    // The cast picks node's AEAD overload; CipherCCMTypes is never passed here.
    const cipher = createCipheriv(this.cipherName as CipherCCMTypes, this.key, nonce, {
      authTagLength: this.tagLength,
    });
    cipher.setAAD(aad, { plaintextLength: data.length });
    // Both modes are stream modes: update returns exactly data.length bytes and final none.
    data.set(cipher.update(data));
    cipher.final();
    tag.set(cipher.getAuthTag());
  }

  open(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean {
    checkNonce(this.alg, nonce);
    if (tag.length !== this.tagLength) return false;
    const decipher = createDecipheriv(this.cipherName as CipherCCMTypes, this.key, nonce, {
      authTagLength: this.tagLength,
    });
    decipher.setAuthTag(tag);
    decipher.setAAD(aad, { plaintextLength: data.length });
    const plaintext = decipher.update(data);
    try {
      // OpenSSL compares the (truncated) tag in constant time here.
      decipher.final();
    } catch {
      return false;
    }
    data.set(plaintext);
    return true;
  }
}

class NodeCbcKey implements CbcKey {
  constructor(
    private readonly cipherName: string,
    private readonly key: KeyObject,
  ) {}

  encrypt(iv: Uint8Array, data: Uint8Array): void {
    checkBlocks(data);
    const cipher = createCipheriv(this.cipherName, this.key, iv).setAutoPadding(false);
    data.set(cipher.update(data));
    cipher.final();
  }

  decrypt(iv: Uint8Array, data: Uint8Array): void {
    checkBlocks(data);
    const decipher = createDecipheriv(this.cipherName, this.key, iv).setAutoPadding(false);
    // Without padding OpenSSL holds nothing back: update returns every block.
    data.set(decipher.update(data));
    decipher.final();
  }
}

class NodeMacKey implements MacKey {
  constructor(
    private readonly hash: HashAlgorithm,
    private readonly key: KeyObject,
    readonly macLength: number,
  ) {}

  private digest(data: Uint8Array, extra: Uint8Array): Buffer {
    const h = createHmac(this.hash, this.key).update(data);
    if (extra.length > 0) h.update(extra);
    return h.digest();
  }

  compute(data: Uint8Array, extra: Uint8Array, out: Uint8Array): void {
    out.set(this.digest(data, extra).subarray(0, this.macLength));
  }

  verify(data: Uint8Array, extra: Uint8Array, mac: Uint8Array): boolean {
    // The length is public (the suite fixes it); only the bytes need a constant-time comparison.
    if (mac.length !== this.macLength) return false;
    return timingSafeEqual(this.digest(data, extra).subarray(0, this.macLength), mac);
  }
}

export const nodeBackend: CryptoBackend = {
  name: 'node',

  aead(alg: AeadAlgorithm, key: Uint8Array, tagLength: number): AeadKey | null {
    if (alg === 'aes-gcm') {
      if (!AES_KEY_LENGTHS.includes(key.length) || !GCM_TAG_LENGTHS.includes(tagLength)) return null;
      const name = `aes-${key.length * 8}-gcm` as CipherGCMTypes;
      return new NodeAeadKey(alg, name, createSecretKey(key), tagLength);
    }
    if (key.length !== 32 || tagLength !== 16 || !offersChaCha()) return null;
    return new NodeAeadKey(alg, 'chacha20-poly1305', createSecretKey(key), tagLength);
  },

  aesCbc(key: Uint8Array): CbcKey | null {
    if (!AES_KEY_LENGTHS.includes(key.length)) return null;
    return new NodeCbcKey(`aes-${key.length * 8}-cbc`, createSecretKey(key));
  },

  hmac(hash: HashAlgorithm, key: Uint8Array, macLength: number): MacKey | null {
    if (!Number.isInteger(macLength) || macLength < 1 || macLength > HMAC_DIGEST_LENGTH[hash]) return null;
    return new NodeMacKey(hash, createSecretKey(key), macLength);
  },
};
