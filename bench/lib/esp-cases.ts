/**
 * The ESP benchmark matrix: every suite the benchmarks measure, on every crypto backend of this process
 * that offers it, at every inner packet size, with deterministic keys and a tunnel-mode SA configuration
 * that forces the backend. AES suites use 128-bit keys.
 */
import type { BackendName, CryptoBackend } from '../../src/esp/crypto/backend.js';
import { availableBackends } from '../../src/esp/crypto/select.js';
import type { SaConfig } from '../../src/esp/sa.js';
import { SUITES, type Suite, type SuiteName } from '../../src/esp/suites.js';
import { seededRandom } from './corpus.js';

export const BENCH_SUITES: readonly SuiteName[] = [
  'aes-gcm-16',
  'aes-gcm-8',
  'chacha20-poly1305',
  'aes-cbc-hmac-sha1-96',
  'aes-cbc-hmac-sha256-128',
  'null-hmac-sha256-128',
];

/** IPv4 total length of the inner packets. */
export const INNER_SIZES: readonly number[] = [64, 512, 1400];

/** Outer tunnel addresses, from 198.18.0.0/15. */
export const TUNNEL = { src: '198.18.0.1', dst: '198.19.0.1' } as const;

export interface EspCase {
  suite: Suite;
  backend: BackendName;
  /** Key ‖ salt for AEAD suites, the AES key for CBC, empty for null encryption. */
  encKey: Uint8Array;
  /** HMAC key, empty for AEAD suites. */
  authKey: Uint8Array;
}

/** Bytes from a seeded generator: the same keys on every machine and run. */
function keyBytes(length: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function keysFor(suite: Suite, seed: number): { encKey: Uint8Array; authKey: Uint8Array } {
  const encLength =
    suite.kind === 'aead' || suite.kind === 'cbc-hmac'
      ? Math.min(...suite.encKeyLengths) + suite.saltLength
      : 0;
  // The hash's output length, as RFC 2404 and RFC 4868 recommend.
  const authLength = suite.hmac === 'sha1' ? 20 : suite.hmac === 'sha256' ? 32 : 0;
  return { encKey: keyBytes(encLength, seed), authKey: keyBytes(authLength, seed ^ 0x5a5a) };
}

/** Whether backend `b` has every primitive `suite` needs for these keys (what keySuite would ask it). */
function offers(b: CryptoBackend, suite: Suite, encKey: Uint8Array, authKey: Uint8Array): boolean {
  switch (suite.kind) {
    case 'aead':
      return (
        b.aead(suite.aead!, encKey.subarray(0, encKey.length - suite.saltLength), suite.icvLength) !== null
      );
    case 'cbc-hmac':
      return b.aesCbc(encKey) !== null && b.hmac(suite.hmac!, authKey, suite.icvLength) !== null;
    case 'null-hmac':
      return b.hmac(suite.hmac!, authKey, suite.icvLength) !== null;
    default:
      return true;
  }
}

/** Every (suite, backend) pair this process can run, suites in BENCH_SUITES order, backends fastest first. */
export function espCases(suites: readonly SuiteName[] = BENCH_SUITES): EspCase[] {
  const cases: EspCase[] = [];
  suites.forEach((name, i) => {
    const suite = SUITES[name];
    const { encKey, authKey } = keysFor(suite, 0xe5b0 + i);
    for (const b of availableBackends())
      if (offers(b, suite, encKey, authKey)) cases.push({ suite, backend: b.name, encKey, authKey });
  });
  return cases;
}

/** A tunnel-mode SA for `c` on its backend; sender and receiver of a benchmark use the same one. */
export function saConfig(c: EspCase, spi = 0x0000b37c): SaConfig {
  return {
    spi,
    mode: 'tunnel',
    suite: c.suite.name,
    encKey: c.encKey,
    authKey: c.authKey,
    tunnel: { src: TUNNEL.src, dst: TUNNEL.dst },
    backend: c.backend,
  };
}

/** "aes-gcm-16/node/1400", the part of a figure's name after the benchmark's. */
export function caseLabel(c: EspCase, innerSize: number): string {
  return `${c.suite.name}/${c.backend}/${innerSize}`;
}
