import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { CryptoBackend } from '../../src/esp/crypto/backend.js';
import { nobleBackend } from '../../src/esp/crypto/noble-backend.js';
import { nodeBackend } from '../../src/esp/crypto/node-backend.js';
import { availableBackends, getBackend, keySuite } from '../../src/esp/crypto/select.js';
import { loadSodiumBackend } from '../../src/esp/crypto/sodium-backend.js';
import { type AeadAlgorithm, type HashAlgorithm, SUITES, type SuiteName } from '../../src/esp/suites.js';
import { hex, junk } from '../helpers/bytes.js';
import { describeSystem } from '../helpers/system.js';
import { readVectors } from '../helpers/vectors.js';

// ---------------------------------------------------------------------------------------------------------
// Vectors, normalised to what the primitives take.

interface AeadCase {
  id: string;
  alg: AeadAlgorithm;
  key: Buffer;
  nonce: Buffer;
  aad: Buffer;
  plaintext: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

interface RawAead {
  id: string;
  algorithm: string;
  key: string;
  nonce: string;
  aad: string;
  plaintext: string;
  ciphertext: string;
  tag: string;
  icv_len: number;
  keymat_key_then_salt?: string;
  iv: string;
}

function aeadCase(v: RawAead): AeadCase {
  const c: AeadCase = {
    id: v.id,
    alg: /CHACHA/i.test(v.algorithm) ? 'chacha20-poly1305' : 'aes-gcm',
    key: hex(v.key),
    nonce: hex(v.nonce),
    aad: hex(v.aad),
    plaintext: hex(v.plaintext),
    ciphertext: hex(v.ciphertext),
    tag: hex(v.tag),
  };
  // The files state the tag length twice; a disagreement would make every check below meaningless.
  expect(c.tag.length).toBe(v.icv_len);
  return c;
}

const strongswanRaw = readVectors<{ vectors: RawAead[] }>('aead-esp-format-strongswan.json').vectors;
const strongswan = strongswanRaw.map(aeadCase);
const rfc7634 = readVectors<{ vectors: RawAead[] }>('chacha20poly1305-esp-rfc7634.json').vectors.map(
  aeadCase,
);
// Every McGrew case at the AEAD level. mcgrew-15 is AES-GMAC-ESP (RFC 4543): GCM over an empty plaintext
// with the whole cleartext payload as AAD. That is exactly seal/open with empty data, so it is kept.
const mcgrew = readVectors<{ vectors: RawAead[] }>('gcm-esp-mcgrew.json').vectors.map(aeadCase);

interface CbcCase {
  id: string;
  key: Buffer;
  iv: Buffer;
  plaintext: Buffer;
  ciphertext: Buffer;
}
const rfc3602 = readVectors<{
  vectors: { id: string; key: string; iv: string; plaintext: string; ciphertext: string }[];
}>('aes-cbc-esp-rfc3602.json')
  .vectors.filter((v) => /^rfc3602-case[1-4]$/.test(v.id))
  .map(
    (v): CbcCase => ({
      id: v.id,
      key: hex(v.key),
      iv: hex(v.iv),
      plaintext: hex(v.plaintext),
      ciphertext: hex(v.ciphertext),
    }),
  );

interface RawHmac {
  id: string;
  hash: string;
  key: string;
  data: string;
  mac?: string;
  mac_truncated?: string;
  hmac_sha1_96?: string;
  prf_hmac_sha256?: string;
}
interface HmacCase {
  id: string;
  hash: HashAlgorithm;
  key: Buffer;
  data: Buffer;
  /** The MAC at this length: one of the file's fields, or the ESP truncation of its full MAC. */
  mac: Buffer;
  source: string;
}
const ESP_MAC_LENGTH: Record<HashAlgorithm, number> = { sha1: 12, sha256: 16 };

function hmacCases(v: RawHmac): HmacCase[] {
  const hash = v.hash as HashAlgorithm;
  const given: [string, string | undefined][] = [
    ['mac', v.mac],
    ['prf_hmac_sha256', v.prf_hmac_sha256],
    ['mac_truncated', v.mac_truncated],
    ['hmac_sha1_96', v.hmac_sha1_96],
  ];
  const byLength = new Map<number, HmacCase>();
  for (const [source, value] of given) {
    if (value === undefined) continue;
    const mac = hex(value);
    const earlier = byLength.get(mac.length);
    // Two fields of the same length must agree, or the file contradicts itself.
    if (earlier) expect(mac).toEqual(earlier.mac);
    else byLength.set(mac.length, { id: v.id, hash, key: hex(v.key), data: hex(v.data), mac, source });
  }
  const full = byLength.get(hash === 'sha1' ? 20 : 32);
  const esp = ESP_MAC_LENGTH[hash];
  if (full && !byLength.has(esp))
    byLength.set(esp, { ...full, mac: full.mac.subarray(0, esp), source: `first ${esp} bytes of mac` });
  return [...byLength.values()];
}
const hmacRaw = readVectors<{ vectors: RawHmac[] }>('hmac-rfc4868-rfc4231-rfc2202.json').vectors.filter(
  (v) => v.hash === 'sha1' || v.hash === 'sha256',
);
const hmacVectors = hmacRaw.flatMap(hmacCases);

// ---------------------------------------------------------------------------------------------------------
// Helpers: inputs sit at odd offsets inside junk, as fields sit inside a frame.

interface Placed {
  frame: Buffer;
  view: Buffer;
  offset: number;
}

/** `bytes` copied into a 0xa5-filled buffer at an odd offset, with junk on both sides to catch overruns. */
function placed(bytes: Uint8Array, offset = 3): Placed {
  const frame = junk(offset + bytes.length + 5);
  frame.set(bytes, offset);
  return { frame, view: frame.subarray(offset, offset + bytes.length), offset };
}

/** The junk around a placed view is untouched. */
function guardsIntact(p: Placed): boolean {
  const isJunk = (b: number) => b === 0xa5;
  return (
    p.frame.subarray(0, p.offset).every(isJunk) && p.frame.subarray(p.offset + p.view.length).every(isJunk)
  );
}
function expectGuardsIntact(p: Placed): void {
  expect(guardsIntact(p), 'bytes outside the view were written').toBe(true);
}

function offers(b: CryptoBackend, c: AeadCase): boolean {
  return b.aead(c.alg, c.key, c.tag.length) !== null;
}

/** seal at odd offsets gives ciphertext ‖ tag; open gives the plaintext back; nothing outside is written. */
function checkSealOpen(b: CryptoBackend, c: AeadCase): void {
  const key = placed(c.key, 1);
  const k = b.aead(c.alg, key.view, c.tag.length)!;
  expect(k.tagLength).toBe(c.tag.length);
  const nonce = placed(c.nonce, 5);
  const aad = placed(c.aad, 7);
  const data = placed(c.plaintext, 3);
  const tag = placed(junk(c.tag.length), 1);
  k.seal(nonce.view, aad.view, data.view, tag.view);
  expect(data.view.toString('hex')).toBe(c.ciphertext.toString('hex'));
  expect(tag.view.toString('hex')).toBe(c.tag.toString('hex'));
  for (const p of [data, tag, nonce, aad]) expectGuardsIntact(p);

  expect(k.open(nonce.view, aad.view, data.view, tag.view)).toBe(true);
  expect(data.view.toString('hex')).toBe(c.plaintext.toString('hex'));
  expectGuardsIntact(data);
  // Inputs are read, never written.
  expect(nonce.view).toEqual(c.nonce);
  expect(aad.view).toEqual(c.aad);
  expect(tag.view).toEqual(c.tag);
}

/**
 * What a refused open may leave in `data` (AeadKey.open): the ciphertext as it was, or zeros (libsodium
 * wipes its output) — never plaintext or anything else.
 */
function refusedCleanly(data: Uint8Array, ciphertext: Uint8Array): boolean {
  return Buffer.from(data).equals(ciphertext) || data.every((b) => b === 0);
}

/** Every single-bit flip of tag, ciphertext or AAD makes open return false, releasing nothing. */
function checkBitFlips(b: CryptoBackend, c: AeadCase): number {
  const k = b.aead(c.alg, c.key, c.tag.length)!;
  let refused = 0;
  for (const field of ['tag', 'ciphertext', 'aad'] as const) {
    for (let bit = 0; bit < c[field].length * 8; bit++) {
      const fields = {
        tag: Buffer.from(c.tag),
        ciphertext: Buffer.from(c.ciphertext),
        aad: Buffer.from(c.aad),
      };
      fields[field][bit >> 3]! ^= 0x80 >> (bit & 7);
      const data = placed(fields.ciphertext);
      // Plain comparisons, not expect(): thousands of flips per vector.
      if (k.open(c.nonce, fields.aad, data.view, fields.tag))
        throw new Error(`${c.id}: open accepted a flip of ${field} bit ${bit}`);
      if (!refusedCleanly(data.view, fields.ciphertext) || !guardsIntact(data))
        throw new Error(
          `${c.id}: a refused open (${field} bit ${bit}) left bytes other than ciphertext or zeros`,
        );
      refused++;
    }
  }
  // And the unflipped inputs still open: the refusals above were the flips' doing.
  const data = Buffer.from(c.ciphertext);
  expect(k.open(c.nonce, c.aad, data, c.tag)).toBe(true);
  expect(data).toEqual(c.plaintext);
  return refused;
}

/** What each backend offers, as the brief for each library says. */
const EXPECTED_OFFER: Record<string, { gcm: boolean; chacha: boolean; cbc: boolean; hmac: boolean }> = {
  sodium: { gcm: false, chacha: true, cbc: false, hmac: false },
  node: { gcm: true, chacha: true, cbc: true, hmac: true },
  noble: { gcm: true, chacha: true, cbc: true, hmac: true },
};

const backends = availableBackends();
const bytes = (n: number, fill = 0x42) => Buffer.alloc(n, fill);

// ---------------------------------------------------------------------------------------------------------

describeSystem('sodium-native on this machine', ['sodium-native'], () => {
  it('loads, so every case below also runs on the sodium backend', () => {
    expect(loadSodiumBackend()).not.toBeNull();
    expect(backends.map((b) => b.name)).toEqual(['sodium', 'node', 'noble']);
  });

  it('libsodium zeroes the output of a failed decryption (why open decrypts into scratch, not in place)', () => {
    const sodium = createRequire(import.meta.url)('sodium-native') as {
      crypto_aead_chacha20poly1305_ietf_decrypt_detached(...args: unknown[]): void;
    };
    const c = rfc7634[0]!;
    const data = Buffer.from(c.ciphertext);
    const badTag = Buffer.from(c.tag);
    badTag[0]! ^= 1;
    expect(() =>
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(
        data,
        null,
        data,
        badTag,
        c.aad,
        c.nonce,
        c.key,
      ),
    ).toThrow();
    expect(data).toEqual(Buffer.alloc(data.length));
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('%s backend', (name, backend) => {
  const expected = EXPECTED_OFFER[name]!;

  it('offers the primitives, key and tag lengths its library has, and null for the rest', () => {
    for (const len of [16, 24, 32])
      for (const tag of [8, 12, 16])
        expect(backend.aead('aes-gcm', bytes(len), tag) !== null).toBe(expected.gcm);
    expect(backend.aead('chacha20-poly1305', bytes(32), 16) !== null).toBe(expected.chacha);
    for (const len of [16, 24, 32]) expect(backend.aesCbc(bytes(len)) !== null).toBe(expected.cbc);
    for (const hash of ['sha1', 'sha256'] as const)
      for (const mac of [12, 16]) expect(backend.hmac(hash, bytes(20), mac) !== null).toBe(expected.hmac);
    expect(backend.hmac('sha1', bytes(20), 20) !== null).toBe(expected.hmac);
    expect(backend.hmac('sha256', bytes(32), 32) !== null).toBe(expected.hmac);
    // Lengths ESP does not define are refused everywhere, so selection moves on instead of failing later.
    expect(backend.aead('aes-gcm', bytes(20), 16)).toBeNull();
    expect(backend.aead('aes-gcm', bytes(16), 4)).toBeNull();
    expect(backend.aead('aes-gcm', bytes(16), 15)).toBeNull();
    expect(backend.aead('chacha20-poly1305', bytes(16), 16)).toBeNull();
    expect(backend.aead('chacha20-poly1305', bytes(32), 12)).toBeNull();
    expect(backend.aesCbc(bytes(20))).toBeNull();
    expect(backend.hmac('sha1', bytes(20), 21)).toBeNull();
    expect(backend.hmac('sha256', bytes(32), 0)).toBeNull();
    expect(backend.hmac('sha256', bytes(32), 33)).toBeNull();
  });

  describe('AEAD: strongSwan vectors in ESP keying format', () => {
    it('has all 25 vectors and offers exactly the ones its library supports', () => {
      expect(strongswan).toHaveLength(25);
      expect(strongswan.filter((c) => c.alg === 'aes-gcm').map((c) => c.tag.length)).toEqual(
        expect.arrayContaining([8, 12, 16]),
      );
      for (const c of strongswan)
        expect(offers(backend, c)).toBe(c.alg === 'aes-gcm' ? expected.gcm : expected.chacha);
    });

    const mine = strongswan.filter((c) => offers(backend, c));
    it.each(mine)('$id: seal gives ciphertext ‖ tag, open gives the plaintext', (c) =>
      checkSealOpen(backend, c),
    );
    it.each(mine)(
      '$id: every single-bit flip of tag, ciphertext or AAD is refused, no plaintext released',
      (c) => {
        expect(checkBitFlips(backend, c)).toBe((c.tag.length + c.ciphertext.length + c.aad.length) * 8);
      },
    );
  });

  // A backend without a primitive registers no cases for it; the 'offers' test above pins that down.
  if (expected.chacha)
    describe('AEAD: RFC 7634 Appendix A (ESP) and B (IKEv2)', () => {
      it('has both examples', () =>
        expect(rfc7634.map((c) => c.id)).toEqual(['rfc7634-appA-esp', 'rfc7634-appB-ikev2']));
      it.each(rfc7634)('$id: key, nonce, AAD, plaintext → ciphertext, tag and back', (c) => {
        checkSealOpen(backend, c);
        checkBitFlips(backend, c);
      });
    });

  if (expected.gcm)
    describe('AEAD: draft-mcgrew-gcm-test-01 at the AEAD level', () => {
      it('has all 17 cases', () => expect(mcgrew).toHaveLength(17));
      it.each(mcgrew)('$id: key, salt ‖ IV, AAD, plaintext → ciphertext ‖ tag and back', (c) =>
        checkSealOpen(backend, c),
      );
    });

  describe('AEAD: contract', () => {
    const alg: AeadAlgorithm = expected.gcm ? 'aes-gcm' : 'chacha20-poly1305';
    const keyLength = alg === 'aes-gcm' ? 16 : 32;

    it('keys once: changing the caller key bytes afterwards changes nothing', () => {
      const c = strongswan.find((v) => v.alg === alg && v.plaintext.length > 0)!;
      const key = Buffer.from(c.key);
      const k = backend.aead(alg, key, c.tag.length)!;
      key.fill(0);
      const data = Buffer.from(c.plaintext);
      const tag = Buffer.alloc(c.tag.length);
      k.seal(c.nonce, c.aad, data, tag);
      expect(data).toEqual(c.ciphertext);
      expect(tag).toEqual(c.tag);
    });

    it('refuses a tag of the wrong length without touching data', () => {
      const c = strongswan.find((v) => v.alg === alg && v.tag.length === 16)!;
      const k = backend.aead(alg, c.key, 16)!;
      for (const tag of [c.tag.subarray(0, 12), Buffer.concat([c.tag, Buffer.from([0])]), Buffer.alloc(0)]) {
        const data = Buffer.from(c.ciphertext);
        expect(k.open(c.nonce, c.aad, data, tag)).toBe(false);
        expect(data).toEqual(c.ciphertext);
      }
    });

    it('throws on a nonce that is not 12 bytes (the caller builds salt ‖ IV)', () => {
      const k = backend.aead(alg, bytes(keyLength), 16)!;
      const tag = Buffer.alloc(16);
      expect(() => k.seal(bytes(8), bytes(0), bytes(16), tag)).toThrow(
        `${alg}: nonce must be 12 bytes, got 8`,
      );
      expect(() => k.open(bytes(16), bytes(0), bytes(16), tag)).toThrow(
        `${alg}: nonce must be 12 bytes, got 16`,
      );
    });

    it('round-trips random packets at any offset and never opens a random tag', () => {
      const tagLengths = alg === 'aes-gcm' ? [8, 12, 16] : [16];
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: keyLength, maxLength: keyLength }),
          fc.uint8Array({ minLength: 12, maxLength: 12 }),
          fc.uint8Array({ maxLength: 40 }),
          fc.uint8Array({ maxLength: 700 }),
          fc.constantFrom(...tagLengths),
          fc.integer({ min: 0, max: 7 }),
          fc.uint8Array({ minLength: 16, maxLength: 16 }),
          (key, nonce, aad, plaintext, tagLength, offset, forged) => {
            const k = backend.aead(alg, key, tagLength)!;
            const data = placed(plaintext, offset);
            const tag = placed(junk(tagLength), offset);
            k.seal(nonce, aad, data.view, tag.view);
            expectGuardsIntact(tag);
            const ciphertext = Buffer.from(data.view);
            const wrong = forged.subarray(0, tagLength);
            if (!wrong.every((b, i) => b === tag.view[i])) {
              expect(k.open(nonce, aad, data.view, wrong)).toBe(false);
              expect(refusedCleanly(data.view, ciphertext)).toBe(true);
              expectGuardsIntact(data);
              data.view.set(ciphertext);
            }
            expect(k.open(nonce, aad, data.view, tag.view)).toBe(true);
            expect(data.view).toEqual(Buffer.from(plaintext));
            expectGuardsIntact(data);
          },
        ),
        { numRuns: 60 },
      );
    });
  });

  if (expected.cbc)
    describe('AES-CBC: RFC 3602 cases 1-4', () => {
      it('has cases 1 to 4', () =>
        expect(rfc3602.map((c) => c.id)).toEqual([
          'rfc3602-case1',
          'rfc3602-case2',
          'rfc3602-case3',
          'rfc3602-case4',
        ]));

      it.each(rfc3602)('$id: encrypts and decrypts in place at odd offsets', (c) => {
        const key = placed(c.key, 1);
        const iv = placed(c.iv, 5);
        const k = backend.aesCbc(key.view)!;
        const data = placed(c.plaintext, 3);
        k.encrypt(iv.view, data.view);
        expect(data.view.toString('hex')).toBe(c.ciphertext.toString('hex'));
        expectGuardsIntact(data);
        k.decrypt(iv.view, data.view);
        expect(data.view.toString('hex')).toBe(c.plaintext.toString('hex'));
        expectGuardsIntact(data);
        expect(iv.view).toEqual(c.iv);
      });

      it('keys once: changing the caller key bytes afterwards changes nothing', () => {
        const c = rfc3602[1]!;
        const key = Buffer.from(c.key);
        const k = backend.aesCbc(key)!;
        key.fill(0);
        const data = Buffer.from(c.plaintext);
        k.encrypt(c.iv, data);
        expect(data).toEqual(c.ciphertext);
        k.decrypt(c.iv, data);
        expect(data).toEqual(c.plaintext);
      });

      it('throws on a partial block (the caller checks lengths first)', () => {
        const k = backend.aesCbc(bytes(16))!;
        expect(() => k.encrypt(bytes(16), bytes(15))).toThrow(
          'aes-cbc: data of 15 bytes is not a whole number of 16-byte blocks',
        );
        expect(() => k.decrypt(bytes(16), bytes(33))).toThrow(
          'aes-cbc: data of 33 bytes is not a whole number of 16-byte blocks',
        );
      });

      it('round-trips random whole blocks with every key length at any offset', () => {
        fc.assert(
          fc.property(
            fc.constantFrom(16, 24, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
            fc.uint8Array({ minLength: 16, maxLength: 16 }),
            fc
              .integer({ min: 0, max: 40 })
              .chain((blocks) => fc.uint8Array({ minLength: blocks * 16, maxLength: blocks * 16 })),
            fc.integer({ min: 0, max: 7 }),
            (key, iv, plaintext, offset) => {
              const k = backend.aesCbc(key)!;
              const data = placed(plaintext, offset);
              k.encrypt(iv, data.view);
              if (plaintext.length > 0) expect(data.view).not.toEqual(Buffer.from(plaintext));
              k.decrypt(iv, data.view);
              expect(data.view).toEqual(Buffer.from(plaintext));
              expectGuardsIntact(data);
            },
          ),
          { numRuns: 60 },
        );
      });
    });

  if (expected.hmac)
    describe('HMAC: RFC 4868 / RFC 4231 / RFC 2202, SHA-1 and SHA-256', () => {
      it('covers every SHA-1 and SHA-256 entry at 96, 128 and full length', () => {
        expect(new Set(hmacVectors.map((c) => c.id))).toEqual(new Set(hmacRaw.map((v) => v.id)));
        const lengths = (hash: HashAlgorithm) =>
          new Set(hmacVectors.filter((c) => c.hash === hash).map((c) => c.mac.length));
        expect(lengths('sha1')).toEqual(new Set([12, 16, 20]));
        expect(lengths('sha256')).toEqual(new Set([16, 32]));
      });

      it.each(hmacVectors)('$id ($hash, $source): compute, verify, and refuse every flipped bit', (c) => {
        const key = placed(c.key, 1);
        const m = backend.hmac(c.hash, key.view, c.mac.length)!;
        expect(m.macLength).toBe(c.mac.length);
        const data = placed(c.data, 3);
        const out = placed(junk(c.mac.length), 5);
        m.compute(data.view, new Uint8Array(0), out.view);
        expect(out.view.toString('hex')).toBe(c.mac.toString('hex'));
        expectGuardsIntact(out);
        expect(data.view).toEqual(c.data);
        expect(m.verify(data.view, new Uint8Array(0), out.view)).toBe(true);

        for (let bit = 0; bit < c.mac.length * 8; bit++) {
          const bad = Buffer.from(c.mac);
          bad[bit >> 3]! ^= 0x80 >> (bit & 7);
          expect(m.verify(c.data, new Uint8Array(0), bad)).toBe(false);
        }
        for (const bit of [0, c.data.length * 4, c.data.length * 8 - 1]) {
          const bad = Buffer.from(c.data);
          bad[bit >> 3]! ^= 0x80 >> (bit & 7);
          expect(m.verify(bad, new Uint8Array(0), c.mac)).toBe(false);
        }
        // The wrong length is refused, even when the bytes it has are right.
        expect(m.verify(c.data, new Uint8Array(0), c.mac.subarray(0, c.mac.length - 1))).toBe(false);
        expect(m.verify(c.data, new Uint8Array(0), Buffer.concat([c.mac, Buffer.from([0])]))).toBe(false);
      });

      it.each(hmacVectors)('$id ($hash, $source): data ‖ extra split anywhere equals the whole', (c) => {
        const m = backend.hmac(c.hash, c.key, c.mac.length)!;
        const n = c.data.length;
        for (const k of new Set([0, 1, 4, n >> 1, n - 4, n - 1, n].filter((k) => k >= 0 && k <= n))) {
          const data = placed(c.data);
          const out = Buffer.alloc(c.mac.length);
          m.compute(data.view.subarray(0, k), data.view.subarray(k), out);
          expect(out.toString('hex'), `split at ${k}`).toBe(c.mac.toString('hex'));
          expect(m.verify(data.view.subarray(0, k), data.view.subarray(k), c.mac)).toBe(true);
        }
      });

      it('keys once: changing the caller key bytes afterwards changes nothing', () => {
        const c = hmacVectors.find((v) => v.hash === 'sha256' && v.mac.length === 16)!;
        const key = Buffer.from(c.key);
        const m = backend.hmac('sha256', key, 16)!;
        key.fill(0);
        const out = Buffer.alloc(16);
        m.compute(c.data, new Uint8Array(0), out);
        expect(out).toEqual(c.mac);
      });

      it('agrees with node:crypto on random keys (including empty), data, extra and lengths', () => {
        fc.assert(
          fc.property(
            fc.constantFrom<HashAlgorithm>('sha1', 'sha256'),
            fc.uint8Array({ maxLength: 150 }),
            fc.uint8Array({ maxLength: 600 }),
            fc.uint8Array({ maxLength: 8 }),
            fc.integer({ min: 1, max: 20 }),
            (hash, key, data, extra, macLength) => {
              const m = backend.hmac(hash, key, macLength)!;
              const want = createHmac(hash, key).update(data).update(extra).digest().subarray(0, macLength);
              const out = placed(junk(macLength), 1);
              m.compute(data, extra, out.view);
              expect(out.view).toEqual(want);
              expectGuardsIntact(out);
              expect(m.verify(data, extra, want)).toBe(true);
            },
          ),
          { numRuns: 80 },
        );
      });
    });
});

describe('backends agree with each other', () => {
  it('every backend that offers an AEAD seals random packets to the same bytes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<[AeadAlgorithm, number, number]>(
          ['aes-gcm', 16, 8],
          ['aes-gcm', 24, 12],
          ['aes-gcm', 32, 16],
          ['chacha20-poly1305', 32, 16],
        ),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 24 }),
        fc.uint8Array({ maxLength: 1500 }),
        ([alg, keyLength, tagLength], keyBytes, nonce, aad, plaintext) => {
          const key = keyBytes.subarray(0, keyLength);
          const sealed = backends
            .map((b) => b.aead(alg, key, tagLength))
            .filter((k) => k !== null)
            .map((k) => {
              const data = Buffer.from(plaintext);
              const tag = Buffer.alloc(tagLength);
              k.seal(nonce, aad, data, tag);
              return Buffer.concat([data, tag]).toString('hex');
            });
          expect(sealed.length).toBeGreaterThanOrEqual(2);
          expect(new Set(sealed).size).toBe(1);
        },
      ),
      { numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('backend selection', () => {
  const sodiumHere = getBackend('sodium') !== null;
  const keymat = (name: string) => hex(strongswanRaw.find((v) => v.id === name)!.keymat_key_then_salt!);

  it('loads the backends once, fastest first', () => {
    expect(availableBackends()).toBe(backends);
    expect(backends.map((b) => b.name)).toEqual(sodiumHere ? ['sodium', 'node', 'noble'] : ['node', 'noble']);
    expect(getBackend('node')).toBe(nodeBackend);
    expect(getBackend('noble')).toBe(nobleBackend);
    expect(getBackend('sodium')?.name ?? null).toBe(sodiumHere ? 'sodium' : null);
  });

  it('picks sodium, node, noble for ChaCha20-Poly1305 and node, noble for everything else', () => {
    const auth = bytes(32);
    const picks: Record<string, string> = {};
    for (const suite of Object.values(SUITES)) {
      const enc =
        suite.kind === 'aead'
          ? bytes(suite.encKeyLengths[0]! + suite.saltLength)
          : suite.encKeyLengths.length > 0
            ? bytes(suite.encKeyLengths[0]!)
            : bytes(0);
      picks[suite.name] = keySuite(suite, enc, suite.hmac ? auth : bytes(0)).backend;
    }
    const expectedPicks: Record<SuiteName, string> = {
      'aes-gcm-16': 'node',
      'aes-gcm-12': 'node',
      'aes-gcm-8': 'node',
      'chacha20-poly1305': sodiumHere ? 'sodium' : 'node',
      'aes-cbc-hmac-sha1-96': 'node',
      'aes-cbc-hmac-sha256-128': 'node',
      'null-hmac-sha256-128': 'node',
      'aes-cbc': 'node',
      null: 'node',
    };
    expect(picks).toEqual(expectedPicks);
  });

  it.each([
    ['strongswan-aes_gcm3_1', 'aes-gcm-8'],
    ['strongswan-aes_gcm18', 'aes-gcm-12'],
    ['strongswan-aes_gcm23', 'aes-gcm-16'],
    ['strongswan-chacha20poly1305_3', 'chacha20-poly1305'],
  ] as const)(
    '%s through keySuite(%s) on every backend: salt from the keying material, sealed as published',
    (id, suiteName) => {
      const v = strongswanRaw.find((x) => x.id === id)!;
      const c = aeadCase(v);
      for (const b of backends) {
        if (!offers(b, c)) continue;
        const material = placed(keymat(id), 3);
        const keys = keySuite(SUITES[suiteName], material.view, new Uint8Array(0), b.name);
        expect(keys.backend).toBe(b.name);
        expect(keys.cbc).toBeNull();
        expect(keys.mac).toBeNull();
        expect(keys.aead!.tagLength).toBe(SUITES[suiteName].icvLength);
        // The salt is a copy: wiping the caller's keying material changes neither salt nor key.
        material.view.fill(0);
        expect(Buffer.from(keys.salt).toString('hex')).toBe(v.nonce.slice(0, 8));
        const nonce = Buffer.concat([keys.salt, hex(v.iv)]);
        const data = Buffer.from(c.plaintext);
        const tag = Buffer.alloc(c.tag.length);
        keys.aead!.seal(nonce, c.aad, data, tag);
        expect(data).toEqual(c.ciphertext);
        expect(tag).toEqual(c.tag);
      }
    },
  );

  it('keys cbc-hmac, null-hmac and aes-cbc suites: MAC of the suite ICV length over authKey', () => {
    const tc1 = hmacRaw.find((v) => v.id === 'rfc2202-sha1-tc1')!;
    const sha1 = keySuite(SUITES['aes-cbc-hmac-sha1-96'], bytes(16), hex(tc1.key));
    expect(sha1.cbc).not.toBeNull();
    expect(sha1.aead).toBeNull();
    expect(sha1.salt).toHaveLength(0);
    expect(sha1.mac!.macLength).toBe(12);
    const out = Buffer.alloc(12);
    sha1.mac!.compute(hex(tc1.data), new Uint8Array(0), out);
    expect(out.toString('hex')).toBe(tc1.hmac_sha1_96);

    // Any non-empty integrity key is accepted, not only the recommended length.
    const short = keySuite(SUITES['null-hmac-sha256-128'], bytes(0), bytes(5, 7), 'noble');
    expect(short.backend).toBe('noble');
    expect(short.cbc).toBeNull();
    const mac = Buffer.alloc(16);
    short.mac!.compute(bytes(40), new Uint8Array(0), mac);
    expect(mac).toEqual(createHmac('sha256', bytes(5, 7)).update(bytes(40)).digest().subarray(0, 16));

    const c = rfc3602[0]!;
    const cbcOnly = keySuite(SUITES['aes-cbc'], c.key, new Uint8Array(0));
    expect(cbcOnly.mac).toBeNull();
    const data = Buffer.from(c.plaintext);
    cbcOnly.cbc!.encrypt(c.iv, data);
    expect(data).toEqual(c.ciphertext);

    const none = keySuite(SUITES.null, bytes(0), bytes(0));
    expect(none).toEqual({ backend: 'node', aead: null, cbc: null, mac: null, salt: new Uint8Array(0) });
  });

  it('a forced backend that does not offer the suite is a configuration error naming those that do', () => {
    if (sodiumHere)
      expect(() => keySuite(SUITES['aes-gcm-16'], bytes(20), bytes(0), 'sodium')).toThrow(
        new Error(
          "aes-gcm-16: crypto backend 'sodium' does not offer this suite; backends that can: node, noble",
        ),
      );
    const why = sodiumHere ? 'does not offer this suite' : 'is not available (its library did not load)';
    expect(() => keySuite(SUITES['aes-cbc-hmac-sha256-128'], bytes(16), bytes(32), 'sodium')).toThrow(
      new Error(`aes-cbc-hmac-sha256-128: crypto backend 'sodium' ${why}; backends that can: node, noble`),
    );
    expect(keySuite(SUITES['chacha20-poly1305'], bytes(36), bytes(0), 'noble').backend).toBe('noble');
  });

  it('without sodium-native: ChaCha20-Poly1305 falls to node, and forcing sodium says it did not load', async () => {
    vi.resetModules();
    vi.doMock('../../src/esp/crypto/sodium-backend.js', () => ({ loadSodiumBackend: () => null }));
    try {
      const select = await import('../../src/esp/crypto/select.js');
      expect(select.availableBackends().map((b) => b.name)).toEqual(['node', 'noble']);
      expect(select.keySuite(SUITES['chacha20-poly1305'], bytes(36), bytes(0)).backend).toBe('node');
      expect(() => select.keySuite(SUITES['chacha20-poly1305'], bytes(36), bytes(0), 'sodium')).toThrow(
        new Error(
          "chacha20-poly1305: crypto backend 'sodium' is not available (its library did not load); " +
            'backends that can: node, noble',
        ),
      );
    } finally {
      vi.doUnmock('../../src/esp/crypto/sodium-backend.js');
      vi.resetModules();
    }
  });

  it.each([
    [
      'aes-gcm-16',
      16,
      0,
      'aes-gcm-16: encryption keying material is 16 bytes; allowed: 20, 28 or 36 (a key of 16, 24 or 32 bytes followed by the 4-byte salt)',
    ],
    [
      'chacha20-poly1305',
      32,
      0,
      'chacha20-poly1305: encryption keying material is 32 bytes; allowed: 36 (a key of 32 bytes followed by the 4-byte salt)',
    ],
    [
      'aes-gcm-8',
      20,
      32,
      'aes-gcm-8: integrity key is 32 bytes; allowed: 0 (an AEAD suite authenticates with its encryption key)',
    ],
    [
      'aes-cbc-hmac-sha256-128',
      20,
      32,
      'aes-cbc-hmac-sha256-128: encryption key is 20 bytes; allowed: 16, 24 or 32',
    ],
    [
      'aes-cbc-hmac-sha1-96',
      16,
      0,
      'aes-cbc-hmac-sha1-96: integrity key is 0 bytes; allowed: any length above 0 (recommended: 20 (RFC 2404))',
    ],
    [
      'null-hmac-sha256-128',
      0,
      0,
      'null-hmac-sha256-128: integrity key is 0 bytes; allowed: any length above 0 (recommended: 32 (RFC 4868))',
    ],
    [
      'null-hmac-sha256-128',
      16,
      32,
      'null-hmac-sha256-128: encryption key is 16 bytes; allowed: 0 (this suite does not encrypt)',
    ],
    ['aes-cbc', 15, 0, 'aes-cbc: encryption key is 15 bytes; allowed: 16, 24 or 32'],
    ['null', 0, 20, 'null: integrity key is 20 bytes; allowed: 0 (no integrity)'],
  ] as const)('%s with %i-byte encryption and %i-byte integrity keys: "%s"', (suite, enc, auth, message) => {
    expect(() => keySuite(SUITES[suite], bytes(enc), bytes(auth))).toThrow(new Error(message));
    // The check comes before any backend is asked, so forcing one gives the same message.
    expect(() => keySuite(SUITES[suite], bytes(enc), bytes(auth), 'noble')).toThrow(new Error(message));
  });
});
