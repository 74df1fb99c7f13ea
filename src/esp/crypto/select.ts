/**
 * Which crypto backend keys an SA: the backends this process can load, and `keySuite`, which checks an
 * SA's keys against its suite and keys them once on the fastest backend that offers the suite (or on
 * the one the caller names).
 */
import type { Suite } from '../suites.js';
import type { AeadKey, BackendName, CbcKey, CryptoBackend, MacKey } from './backend.js';
import { nobleBackend } from './noble-backend.js';
import { nodeBackend } from './node-backend.js';
import { loadSodiumBackend } from './sodium-backend.js';

/** An SA's keys, made once: exactly the pieces its suite needs are non-null. */
export interface SuiteKeys {
  backend: BackendName;
  aead: AeadKey | null;
  cbc: CbcKey | null;
  mac: MacKey | null;
  /** AEAD salt (the nonce's first 4 bytes, RFC 4106 §4 / RFC 7634 §2); empty for other suites. */
  salt: Uint8Array;
}

/**
 * Fastest first, as measured with 1400-byte packets on x86-64 (Node 20, OpenSSL 3): libsodium's
 * ChaCha20-Poly1305 beats OpenSSL's through node:crypto (whose per-packet cipher context dominates), and
 * pure JavaScript comes last for everything.
 */
const PREFERENCE = {
  chacha: ['sodium', 'node', 'noble'],
  other: ['node', 'noble'],
} as const satisfies Record<string, readonly BackendName[]>;

let loaded: readonly CryptoBackend[] | undefined;

/** The backends this process can use, loaded once: sodium (if sodium-native loads), node, noble. */
export function availableBackends(): readonly CryptoBackend[] {
  if (!loaded) {
    const sodium = loadSodiumBackend();
    loaded = Object.freeze(sodium ? [sodium, nodeBackend, nobleBackend] : [nodeBackend, nobleBackend]);
  }
  return loaded;
}

/** The named backend, or null when it is not available here (sodium-native absent). */
export function getBackend(name: BackendName): CryptoBackend | null {
  return availableBackends().find((b) => b.name === name) ?? null;
}

/**
 * Checks the keys against `suite` and keys them on one backend. `encKeyMaterial` is key ‖ 4-byte salt for
 * AEAD suites (RFC 4106 §8.1, RFC 7634 §2), the AES key for the CBC suites and empty for null encryption;
 * `authKey` is the HMAC key of cbc-hmac and null-hmac suites and empty otherwise (AEAD, cbc, null).
 * Throws (configuration errors, never packet errors) on wrong key lengths, and when `backend` is given
 * but cannot do the suite. The key bytes are copied: the caller may wipe or reuse its buffers afterwards.
 */
export function keySuite(
  suite: Suite,
  encKeyMaterial: Uint8Array,
  authKey: Uint8Array,
  backend?: BackendName,
): SuiteKeys {
  checkKeyLengths(suite, encKeyMaterial, authKey);
  const preference = suite.aead === 'chacha20-poly1305' ? PREFERENCE.chacha : PREFERENCE.other;
  if (backend === undefined) {
    for (const name of preference) {
      const b = getBackend(name);
      const keys = b && keyOn(b, suite, encKeyMaterial, authKey);
      if (keys) return keys;
    }
    throw new Error(`${suite.name}: no available crypto backend offers this suite`);
  }
  const chosen = getBackend(backend);
  const keys = chosen && keyOn(chosen, suite, encKeyMaterial, authKey);
  if (keys) return keys;
  const able = availableBackends()
    .filter((b) => keyOn(b, suite, encKeyMaterial, authKey) !== null)
    .map((b) => b.name);
  const why = chosen ? 'does not offer this suite' : 'is not available (its library did not load)';
  throw new Error(
    `${suite.name}: crypto backend '${backend}' ${why}; backends that can: ${able.join(', ') || 'none'}`,
  );
}

/** The suite's keys made on backend `b`, or null when `b` lacks one of the primitives it needs. */
function keyOn(
  b: CryptoBackend,
  suite: Suite,
  encKeyMaterial: Uint8Array,
  authKey: Uint8Array,
): SuiteKeys | null {
  switch (suite.kind) {
    case 'aead': {
      const keyLength = encKeyMaterial.length - suite.saltLength;
      const aead = b.aead(suite.aead!, encKeyMaterial.subarray(0, keyLength), suite.icvLength);
      if (!aead) return null;
      // A copy (Buffer's slice is a view): the caller may wipe its keying material after keying.
      const salt = Uint8Array.from(encKeyMaterial.subarray(keyLength));
      return { backend: b.name, aead, cbc: null, mac: null, salt };
    }
    case 'cbc-hmac': {
      const cbc = b.aesCbc(encKeyMaterial);
      const mac = cbc && b.hmac(suite.hmac!, authKey, suite.icvLength);
      if (!mac) return null;
      return { backend: b.name, aead: null, cbc, mac, salt: new Uint8Array(0) };
    }
    case 'cbc': {
      const cbc = b.aesCbc(encKeyMaterial);
      if (!cbc) return null;
      return { backend: b.name, aead: null, cbc, mac: null, salt: new Uint8Array(0) };
    }
    case 'null-hmac': {
      const mac = b.hmac(suite.hmac!, authKey, suite.icvLength);
      if (!mac) return null;
      return { backend: b.name, aead: null, cbc: null, mac, salt: new Uint8Array(0) };
    }
    case 'null':
      // Nothing to key; named after the backend so SuiteKeys always says where it came from.
      return { backend: b.name, aead: null, cbc: null, mac: null, salt: new Uint8Array(0) };
  }
}

/** Recommended HMAC key lengths (the hash's output length): RFC 2404 for SHA-1, RFC 4868 for SHA-256. */
const RECOMMENDED_AUTH_KEY = { sha1: '20 (RFC 2404)', sha256: '32 (RFC 4868)' } as const;

function checkKeyLengths(suite: Suite, encKeyMaterial: Uint8Array, authKey: Uint8Array): void {
  const enc = encKeyMaterial.length;
  if (suite.kind === 'aead') {
    const allowed = suite.encKeyLengths.map((k) => k + suite.saltLength);
    if (!allowed.includes(enc))
      throw new Error(
        `${suite.name}: encryption keying material is ${enc} bytes; allowed: ${orList(allowed)} ` +
          `(a key of ${orList(suite.encKeyLengths)} bytes followed by the ${suite.saltLength}-byte salt)`,
      );
  } else if (suite.kind === 'cbc-hmac' || suite.kind === 'cbc') {
    if (!suite.encKeyLengths.includes(enc))
      throw new Error(
        `${suite.name}: encryption key is ${enc} bytes; allowed: ${orList(suite.encKeyLengths)}`,
      );
  } else if (enc !== 0) {
    throw new Error(
      `${suite.name}: encryption key is ${enc} bytes; allowed: 0 (this suite does not encrypt)`,
    );
  }

  const auth = authKey.length;
  if (suite.hmac) {
    if (auth === 0)
      throw new Error(
        `${suite.name}: integrity key is 0 bytes; allowed: any length above 0 ` +
          `(recommended: ${RECOMMENDED_AUTH_KEY[suite.hmac]})`,
      );
  } else if (auth !== 0) {
    const why =
      suite.kind === 'aead' ? 'an AEAD suite authenticates with its encryption key' : 'no integrity';
    throw new Error(`${suite.name}: integrity key is ${auth} bytes; allowed: 0 (${why})`);
  }
}

/** "16, 24 or 32". */
function orList(xs: readonly number[]): string {
  return xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`;
}
