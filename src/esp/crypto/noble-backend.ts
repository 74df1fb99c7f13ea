/**
 * The pure-JavaScript crypto backend on @noble/ciphers and @noble/hashes: works wherever JavaScript runs.
 *
 * noble's public AEAD and CBC constructors expand the AES key (and build GHASH tables) on every call, so
 * this backend assembles the modes from noble's exported building blocks instead: the AES key schedule
 * (`unsafe.expandKeyLE` / `expandKeyDecLE`), the GCM hash subkey H and its GHASH multiplication table are
 * made once per SA, and the per-packet work reads and writes the caller's bytes at any alignment.
 * ChaCha20 has no key schedule and Poly1305's key is derived per nonce (RFC 8439 §2.6), so for ChaCha20-
 * Poly1305 there is nothing to precompute beyond an aligned copy of the key. HMAC keeps the inner and outer
 * hash states after absorbing the padded key and clones them per packet.
 */

import { poly1305 } from '@noble/ciphers/_poly1305.js';
import { GHASH } from '@noble/ciphers/_polyval.js';
import { unsafe } from '@noble/ciphers/aes.js';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { AeadAlgorithm, HashAlgorithm } from '../suites.js';
import type { AeadKey, CbcKey, CryptoBackend, MacKey } from './backend.js';

const AES_KEY_LENGTHS = [16, 24, 32];
/** The ICV lengths RFC 4106 defines for ESP. */
const GCM_TAG_LENGTHS = [8, 12, 16];
const HASHES = { sha1, sha256 } as const;
/**
 * Bytes per packet GHASH's table is sized for: above 1 KiB noble picks a 4-bit window (32 lookups per block
 * instead of 64). Measured on 1400-byte packets: ~25% faster than 2 bits for ~8 KiB per SA; the 8-bit window
 * (hint above 64 KiB) gains another ~12% but costs ~190 KiB per SA, too much with many SAs.
 */
const GHASH_TABLE_HINT = 1500;

/** A nonce of another length is the caller's bug (ESP builds salt ‖ IV), so it throws. */
function checkNonce(alg: AeadAlgorithm, nonce: Uint8Array): void {
  if (nonce.length !== 12) throw new Error(`${alg}: nonce must be 12 bytes, got ${nonce.length}`);
}

/** A partial block is the caller's bug (ESP checks the ciphertext length first), so it throws. */
function checkBlocks(data: Uint8Array): void {
  if (data.length % 16 !== 0)
    throw new Error(`aes-cbc: data of ${data.length} bytes is not a whole number of 16-byte blocks`);
}

// noble's AES works on 32-bit words holding the block's bytes in little-endian order, whatever the host.
function le32(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}
function putLe32(b: Uint8Array, i: number, w: number): void {
  b[i] = w;
  b[i + 1] = w >>> 8;
  b[i + 2] = w >>> 16;
  b[i + 3] = w >>> 24;
}
function xorLe32(b: Uint8Array, i: number, w: number): void {
  b[i]! ^= w;
  b[i + 1]! ^= w >>> 8;
  b[i + 2]! ^= w >>> 16;
  b[i + 3]! ^= w >>> 24;
}
function putLe64(b: Uint8Array, i: number, v: number): void {
  putLe32(b, i, v >>> 0);
  putLe32(b, i + 4, Math.floor(v / 2 ** 32));
}
/** The little-endian word of four bytes that hold `v` big-endian (counters, GHASH length block). */
function bswap32(v: number): number {
  return ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}

/** Constant-time comparison of a[0, n) with b (callers check b.length === n first). */
function equalPrefix(a: Uint8Array, b: Uint8Array, n: number): boolean {
  let diff = 0;
  for (let i = 0; i < n; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * noble's GHASH with its per-key multiplication table kept across packets: `start` clears the running
 * value, `absorb` reads blocks straight from the caller's bytes (noble's `update` copies them first).
 */
class KeyedGhash extends GHASH {
  private readonly partial = new Uint8Array(16);

  start(): void {
    this.s0 = 0;
    this.s1 = 0;
    this.s2 = 0;
    this.s3 = 0;
  }

  /** Absorbs `b` zero-padded to a whole block, as GCM pads AAD and ciphertext separately. */
  absorb(b: Uint8Array): void {
    const whole = b.length & ~15;
    for (let i = 0; i < whole; i += 16)
      this._updateBlock(le32(b, i), le32(b, i + 4), le32(b, i + 8), le32(b, i + 12));
    if (whole < b.length) {
      const p = this.partial;
      p.fill(0);
      p.set(b.subarray(whole));
      this._updateBlock(le32(p, 0), le32(p, 4), le32(p, 8), le32(p, 12));
    }
  }

  /** The final block: bit lengths of AAD and ciphertext, 64-bit big-endian each. */
  absorbLengths(aadLength: number, dataLength: number): void {
    this._updateBlock(
      bswap32(Math.floor(aadLength / 2 ** 29)),
      bswap32((aadLength * 8) >>> 0),
      bswap32(Math.floor(dataLength / 2 ** 29)),
      bswap32((dataLength * 8) >>> 0),
    );
  }

  /** Writes GHASH ⊕ mask (four little-endian words) as the 16-byte tag. */
  finish(mask: Uint32Array, out: Uint8Array): void {
    putLe32(out, 0, this.s0 ^ mask[0]!);
    putLe32(out, 4, this.s1 ^ mask[1]!);
    putLe32(out, 8, this.s2 ^ mask[2]!);
    putLe32(out, 12, this.s3 ^ mask[3]!);
  }
}

/** AES-GCM (NIST SP 800-38D) with a 96-bit nonce, the key schedule and GHASH table made once. */
class NobleGcmKey implements AeadKey {
  private readonly xk: Uint32Array;
  private readonly ghash: KeyedGhash;
  private readonly mask = new Uint32Array(4);
  private readonly fullTag = new Uint8Array(16);

  constructor(
    key: Uint8Array,
    readonly tagLength: number,
  ) {
    // A copy: noble reads the key as aligned words, and the caller may reuse its bytes.
    this.xk = unsafe.expandKeyLE(Uint8Array.from(key));
    const h = unsafe.encrypt(this.xk, 0, 0, 0, 0);
    const hBytes = new Uint8Array(16);
    putLe32(hBytes, 0, h.s0);
    putLe32(hBytes, 4, h.s1);
    putLe32(hBytes, 8, h.s2);
    putLe32(hBytes, 12, h.s3);
    this.ghash = new KeyedGhash(hBytes, GHASH_TABLE_HINT);
    hBytes.fill(0);
  }

  /** XORs the keystream from counter block nonce ‖ 2 onwards into `data` (GCTR after J0). */
  private ctr(nonce: Uint8Array, data: Uint8Array): void {
    const xk = this.xk;
    const n0 = le32(nonce, 0);
    const n1 = le32(nonce, 4);
    const n2 = le32(nonce, 8);
    const whole = data.length & ~15;
    let counter = 2;
    let i = 0;
    for (; i < whole; i += 16, counter = (counter + 1) >>> 0) {
      const k = unsafe.encrypt(xk, n0, n1, n2, bswap32(counter));
      xorLe32(data, i, k.s0);
      xorLe32(data, i + 4, k.s1);
      xorLe32(data, i + 8, k.s2);
      xorLe32(data, i + 12, k.s3);
    }
    if (i < data.length) {
      const k = unsafe.encrypt(xk, n0, n1, n2, bswap32(counter));
      for (let j = 0; i + j < data.length; j++) {
        const w = j < 4 ? k.s0 : j < 8 ? k.s1 : j < 12 ? k.s2 : k.s3;
        data[i + j]! ^= w >>> ((j & 3) * 8);
      }
    }
  }

  /** The full 16-byte tag over AAD and ciphertext into this.fullTag. */
  private tag(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const j0 = unsafe.encrypt(this.xk, le32(nonce, 0), le32(nonce, 4), le32(nonce, 8), bswap32(1));
    const mask = this.mask;
    mask[0] = j0.s0;
    mask[1] = j0.s1;
    mask[2] = j0.s2;
    mask[3] = j0.s3;
    const g = this.ghash;
    g.start();
    g.absorb(aad);
    g.absorb(ciphertext);
    g.absorbLengths(aad.length, ciphertext.length);
    g.finish(mask, this.fullTag);
    return this.fullTag;
  }

  seal(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): void {
    checkNonce('aes-gcm', nonce);
    this.ctr(nonce, data);
    tag.set(this.tag(nonce, aad, data).subarray(0, this.tagLength));
  }

  open(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean {
    checkNonce('aes-gcm', nonce);
    if (tag.length !== this.tagLength) return false;
    if (!equalPrefix(this.tag(nonce, aad, data), tag, this.tagLength)) return false;
    this.ctr(nonce, data);
    return true;
  }
}

const ZEROS = new Uint8Array(32);

/** ChaCha20-Poly1305 (RFC 8439 §2.8) with the tag detached and the data processed in place. */
class NobleChaChaKey implements AeadKey {
  readonly tagLength = 16;
  private readonly key: Uint8Array;
  // Aligned scratch: noble copies a misaligned nonce on every call otherwise.
  private readonly nonce = new Uint8Array(12);
  private readonly oneTimeKey = new Uint8Array(32);
  private readonly lengths = new Uint8Array(16);
  private readonly fullTag = new Uint8Array(16);

  constructor(key: Uint8Array) {
    this.key = Uint8Array.from(key);
  }

  private tag(aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    chacha20(this.key, this.nonce, ZEROS, this.oneTimeKey, 0);
    const mac = poly1305.create(this.oneTimeKey);
    mac.update(aad);
    if (aad.length % 16) mac.update(ZEROS.subarray(aad.length % 16, 16));
    mac.update(ciphertext);
    if (ciphertext.length % 16) mac.update(ZEROS.subarray(ciphertext.length % 16, 16));
    putLe64(this.lengths, 0, aad.length);
    putLe64(this.lengths, 8, ciphertext.length);
    mac.update(this.lengths);
    mac.digestInto(this.fullTag);
    this.oneTimeKey.fill(0);
    return this.fullTag;
  }

  seal(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): void {
    checkNonce('chacha20-poly1305', nonce);
    this.nonce.set(nonce);
    chacha20(this.key, this.nonce, data, data, 1);
    tag.set(this.tag(aad, data));
  }

  open(nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean {
    checkNonce('chacha20-poly1305', nonce);
    if (tag.length !== 16) return false;
    this.nonce.set(nonce);
    if (!equalPrefix(this.tag(aad, data), tag, 16)) return false;
    chacha20(this.key, this.nonce, data, data, 1);
    return true;
  }
}

/** AES-CBC without padding on the encryption and decryption key schedules, both made once. */
class NobleCbcKey implements CbcKey {
  private readonly xk: Uint32Array;
  private readonly xkDec: Uint32Array;

  constructor(key: Uint8Array) {
    const copy = Uint8Array.from(key);
    this.xk = unsafe.expandKeyLE(copy);
    this.xkDec = unsafe.expandKeyDecLE(copy);
    copy.fill(0);
  }

  encrypt(iv: Uint8Array, data: Uint8Array): void {
    checkBlocks(data);
    let s0 = le32(iv, 0);
    let s1 = le32(iv, 4);
    let s2 = le32(iv, 8);
    let s3 = le32(iv, 12);
    for (let i = 0; i < data.length; i += 16) {
      const c = unsafe.encrypt(
        this.xk,
        s0 ^ le32(data, i),
        s1 ^ le32(data, i + 4),
        s2 ^ le32(data, i + 8),
        s3 ^ le32(data, i + 12),
      );
      s0 = c.s0;
      s1 = c.s1;
      s2 = c.s2;
      s3 = c.s3;
      putLe32(data, i, s0);
      putLe32(data, i + 4, s1);
      putLe32(data, i + 8, s2);
      putLe32(data, i + 12, s3);
    }
  }

  decrypt(iv: Uint8Array, data: Uint8Array): void {
    checkBlocks(data);
    let p0 = le32(iv, 0);
    let p1 = le32(iv, 4);
    let p2 = le32(iv, 8);
    let p3 = le32(iv, 12);
    for (let i = 0; i < data.length; i += 16) {
      // Keep this ciphertext block: it chains into the next one, and decryption overwrites it.
      const c0 = le32(data, i);
      const c1 = le32(data, i + 4);
      const c2 = le32(data, i + 8);
      const c3 = le32(data, i + 12);
      const p = unsafe.decrypt(this.xkDec, c0, c1, c2, c3);
      putLe32(data, i, p.s0 ^ p0);
      putLe32(data, i + 4, p.s1 ^ p1);
      putLe32(data, i + 8, p.s2 ^ p2);
      putLe32(data, i + 12, p.s3 ^ p3);
      p0 = c0;
      p1 = c1;
      p2 = c2;
      p3 = c3;
    }
  }
}

/** HMAC with the key absorbed once; each packet clones the keyed state into a reused instance. */
/** The part of noble's _HMAC used here (its own type is wrapped in TRet<> and does not reassign). */
interface KeyedHmac {
  readonly outputLen: number;
  update(data: Uint8Array): unknown;
  digestInto(out: Uint8Array): void;
  clone(): KeyedHmac;
  _cloneInto(to?: KeyedHmac): KeyedHmac;
}

class NobleMacKey implements MacKey {
  private readonly keyed: KeyedHmac;
  private work: KeyedHmac;
  private readonly digest: Uint8Array;

  constructor(
    hash: HashAlgorithm,
    key: Uint8Array,
    readonly macLength: number,
  ) {
    this.keyed = hmac.create(HASHES[hash], key);
    this.work = this.keyed.clone();
    this.digest = new Uint8Array(this.keyed.outputLen);
  }

  private run(data: Uint8Array, extra: Uint8Array): Uint8Array {
    this.work = this.keyed._cloneInto(this.work);
    this.work.update(data);
    if (extra.length > 0) this.work.update(extra);
    this.work.digestInto(this.digest);
    return this.digest;
  }

  compute(data: Uint8Array, extra: Uint8Array, out: Uint8Array): void {
    out.set(this.run(data, extra).subarray(0, this.macLength));
  }

  verify(data: Uint8Array, extra: Uint8Array, mac: Uint8Array): boolean {
    if (mac.length !== this.macLength) return false;
    return equalPrefix(this.run(data, extra), mac, this.macLength);
  }
}

export const nobleBackend: CryptoBackend = {
  name: 'noble',

  aead(alg: AeadAlgorithm, key: Uint8Array, tagLength: number): AeadKey | null {
    if (alg === 'aes-gcm') {
      if (!AES_KEY_LENGTHS.includes(key.length) || !GCM_TAG_LENGTHS.includes(tagLength)) return null;
      return new NobleGcmKey(key, tagLength);
    }
    if (key.length !== 32 || tagLength !== 16) return null;
    return new NobleChaChaKey(key);
  },

  aesCbc(key: Uint8Array): CbcKey | null {
    if (!AES_KEY_LENGTHS.includes(key.length)) return null;
    return new NobleCbcKey(key);
  },

  hmac(hash: HashAlgorithm, key: Uint8Array, macLength: number): MacKey | null {
    if (!Number.isInteger(macLength) || macLength < 1 || macLength > HASHES[hash].outputLen) return null;
    return new NobleMacKey(hash, key, macLength);
  },
};
