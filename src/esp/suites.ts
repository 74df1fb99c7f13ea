/**
 * The ESP transforms pktveil speaks, with the framing facts the engine needs from each: IV and ICV sizes,
 * the block size padding must reach, and which primitives the crypto backend has to supply.
 */
export type SuiteName =
  | 'aes-gcm-16'
  | 'aes-gcm-12'
  | 'aes-gcm-8'
  | 'chacha20-poly1305'
  | 'aes-cbc-hmac-sha1-96'
  | 'aes-cbc-hmac-sha256-128'
  | 'null-hmac-sha256-128'
  | 'aes-cbc'
  | 'null';

export type AeadAlgorithm = 'aes-gcm' | 'chacha20-poly1305';
export type HashAlgorithm = 'sha1' | 'sha256';

export interface Suite {
  readonly name: SuiteName;
  /**
   * aead: combined mode (RFC 4106/7634); cbc-hmac: encrypt then MAC; null-hmac: integrity only (RFC 2410);
   * cbc: confidentiality only (RFC 3602's examples; RFC 4303 §3.2 allows it but it is open to tampering);
   * null: neither (debugging).
   */
  readonly kind: 'aead' | 'cbc-hmac' | 'null-hmac' | 'cbc' | 'null';
  readonly aead: AeadAlgorithm | null;
  readonly hmac: HashAlgorithm | null;
  /** Explicit IV carried in every packet. */
  readonly ivLength: number;
  /** Integrity check value appended after the trailer. */
  readonly icvLength: number;
  /** Payload ‖ padding ‖ pad length ‖ next header must be a multiple of this (RFC 4303 §2.4). */
  readonly blockSize: number;
  /** Allowed lengths of the encryption key proper (AEAD salt excluded); empty for null encryption. */
  readonly encKeyLengths: readonly number[];
  /** AEAD salt, the last bytes of the keying material (RFC 4106 §8.1, RFC 7634 §2). */
  readonly saltLength: number;
}

function aead(name: SuiteName, alg: AeadAlgorithm, icvLength: number, keys: number[]): Suite {
  return {
    name,
    kind: 'aead',
    aead: alg,
    hmac: null,
    ivLength: 8,
    icvLength,
    blockSize: 4,
    encKeyLengths: keys,
    saltLength: 4,
  };
}

export const SUITES: Readonly<Record<SuiteName, Suite>> = {
  'aes-gcm-16': aead('aes-gcm-16', 'aes-gcm', 16, [16, 24, 32]),
  'aes-gcm-12': aead('aes-gcm-12', 'aes-gcm', 12, [16, 24, 32]),
  'aes-gcm-8': aead('aes-gcm-8', 'aes-gcm', 8, [16, 24, 32]),
  'chacha20-poly1305': aead('chacha20-poly1305', 'chacha20-poly1305', 16, [32]),
  'aes-cbc-hmac-sha1-96': {
    name: 'aes-cbc-hmac-sha1-96',
    kind: 'cbc-hmac',
    aead: null,
    hmac: 'sha1',
    ivLength: 16,
    icvLength: 12,
    blockSize: 16,
    encKeyLengths: [16, 24, 32],
    saltLength: 0,
  },
  'aes-cbc-hmac-sha256-128': {
    name: 'aes-cbc-hmac-sha256-128',
    kind: 'cbc-hmac',
    aead: null,
    hmac: 'sha256',
    ivLength: 16,
    icvLength: 16,
    blockSize: 16,
    encKeyLengths: [16, 24, 32],
    saltLength: 0,
  },
  'null-hmac-sha256-128': {
    name: 'null-hmac-sha256-128',
    kind: 'null-hmac',
    aead: null,
    hmac: 'sha256',
    ivLength: 0,
    icvLength: 16,
    blockSize: 4,
    encKeyLengths: [],
    saltLength: 0,
  },
  'aes-cbc': {
    name: 'aes-cbc',
    kind: 'cbc',
    aead: null,
    hmac: null,
    ivLength: 16,
    icvLength: 0,
    blockSize: 16,
    encKeyLengths: [16, 24, 32],
    saltLength: 0,
  },
  null: {
    name: 'null',
    kind: 'null',
    aead: null,
    hmac: null,
    ivLength: 0,
    icvLength: 0,
    blockSize: 4,
    encKeyLengths: [],
    saltLength: 0,
  },
};

export function isSuiteName(s: string): s is SuiteName {
  return Object.hasOwn(SUITES, s);
}
