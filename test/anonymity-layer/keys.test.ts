import { hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type AnonAead, deriveAnonKeys, keysFor } from '../../src/anonymity-layer/keys.js';
import { AnonOpener, AnonSealer } from '../../src/anonymity-layer/seal.js';

const SECRET = Buffer.from('a shared secret of 32 bytes!!!!!');

/** HKDF-SHA256 straight from node:crypto, with the info string as keys.ts documents it. */
function reference(label: string, context: string, length: number, salt = Buffer.alloc(0)): Buffer {
  const info = Buffer.concat([Buffer.from(label), Buffer.from([0]), Buffer.from(context)]);
  return Buffer.from(hkdfSync('sha256', SECRET, salt, info, length));
}

describe('deriveAnonKeys', () => {
  const cases: { aead: AnonAead; aesKeyLength?: 16 | 32; name: string; length: number }[] = [
    { aead: 'chacha20-poly1305', name: 'chacha20-poly1305', length: 36 },
    { aead: 'aes-gcm', name: 'aes-gcm-256', length: 36 },
    { aead: 'aes-gcm', aesKeyLength: 16, name: 'aes-gcm-128', length: 20 },
  ];

  it.each(cases)(
    'is HKDF-SHA256 with the documented info strings ($name)',
    ({ aead, aesKeyLength, name, length }) => {
      const salt = Buffer.from('nonces from the key exchange');
      const k = deriveAnonKeys(SECRET, { aead, aesKeyLength, salt, context: 'host a → host b' });
      expect(k.aead).toBe(aead);
      expect(Buffer.from(k.initiatorToResponder)).toEqual(
        reference(`pktveil anon v1 initiator->responder ${name}`, 'host a → host b', length, salt),
      );
      expect(Buffer.from(k.responderToInitiator)).toEqual(
        reference(`pktveil anon v1 responder->initiator ${name}`, 'host a → host b', length, salt),
      );
      expect(k.rendezvousSid).toBe(
        reference('pktveil anon v1 rendezvous sid', 'host a → host b', 8, salt).readBigUInt64BE(0),
      );
      // The material keys a sealer and an opener of that AEAD as it is.
      expect(new AnonSealer({ aead, keyMaterial: k.initiatorToResponder }).nextSequence).toBe(1n);
      expect(new AnonOpener({ aead, keyMaterial: k.responderToInitiator }).aead).toBe(aead);
    },
  );

  it('gives each direction, each algorithm and each context its own keys', () => {
    const a = deriveAnonKeys(SECRET);
    const b = deriveAnonKeys(SECRET, { context: 'another session' });
    const c = deriveAnonKeys(SECRET, { aead: 'aes-gcm' });
    const d = deriveAnonKeys(SECRET, { context: new Uint8Array([1]) });
    const hexes = [a, b, c, d].flatMap((k) => [
      Buffer.from(k.initiatorToResponder).toString('hex'),
      Buffer.from(k.responderToInitiator).toString('hex'),
    ]);
    expect(new Set(hexes).size).toBe(hexes.length);
    expect(a.rendezvousSid).not.toBe(b.rendezvousSid);
    // The rendezvous SID does not depend on the algorithm: both ends find it from the secret alone.
    expect(a.rendezvousSid).toBe(c.rendezvousSid);
    expect(a.rendezvousSid).toBeGreaterThan(0n);
    // Deterministic: both ends compute the same.
    expect(deriveAnonKeys(SECRET)).toEqual(a);
  });

  it('hands each role the other direction to open', () => {
    const k = deriveAnonKeys(SECRET);
    expect(keysFor(k, 'initiator')).toEqual({
      send: k.initiatorToResponder,
      receive: k.responderToInitiator,
    });
    expect(keysFor(k, 'responder')).toEqual({
      send: k.responderToInitiator,
      receive: k.initiatorToResponder,
    });
  });

  it('refuses short secrets and unknown options, saying what to give', () => {
    expect(() => deriveAnonKeys(Buffer.alloc(15))).toThrow(
      'anonymity-layer keys: the shared secret is 15 bytes; give at least 16',
    );
    expect(() => deriveAnonKeys(SECRET, { aead: 'rc4' as AnonAead })).toThrow(
      'anonymity-layer keys: aead "rc4" is not chacha20-poly1305 or aes-gcm',
    );
    expect(() => deriveAnonKeys(SECRET, { aead: 'aes-gcm', aesKeyLength: 24 as 16 })).toThrow(
      'anonymity-layer keys: aesKeyLength 24 is not 16 or 32',
    );
  });
});
