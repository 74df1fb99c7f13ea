/**
 * Keys of the anonymity layer from a secret both peers share (HKDF-SHA256, RFC 5869): one AEAD key ‖ 4-byte
 * nonce salt per direction, and a rendezvous session ID both ends can know without sending it.
 *
 * The layer takes its keys from the caller (as IKE gives ESP its keys, DESIGN.md §6); these helpers are the
 * way to turn one shared secret into what a session needs. Every output comes from one HKDF-Extract
 * (salt = `salt`, IKM = the secret) and its own HKDF-Expand, with these info strings (ASCII, then a 0x00
 * byte, then the caller's `context` bytes):
 *
 *   "pktveil anon v1 initiator->responder <aead>"   key ‖ salt the initiator seals with
 *   "pktveil anon v1 responder->initiator <aead>"   key ‖ salt the responder seals with
 *   "pktveil anon v1 rendezvous sid"                8 bytes: the initiator's first session ID
 *
 * `<aead>` is `chacha20-poly1305` or `aes-gcm-128` / `aes-gcm-256`, so one secret never yields the same key
 * for two algorithms. The two directions get different keys and salts, so their nonce spaces never meet.
 * The sequence numbers that make nonces unique restart with every new key: a secret (or a salt/context)
 * must therefore never be used for two sessions — put something fresh per session (the key exchange's
 * nonces, a counter) in `salt` or `context`.
 */
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { type Sid, sidFromBytes } from './sid.js';

export type AnonAead = 'chacha20-poly1305' | 'aes-gcm';
export type AnonRole = 'initiator' | 'responder';

/** Bytes of the nonce salt at the end of every key material (the nonce's first 4 bytes, as in ESP). */
export const ANON_NONCE_SALT_LENGTH = 4;
/** Shortest shared secret accepted: below 128 bits the keys are weaker than the AEADs. */
export const ANON_MIN_SECRET_LENGTH = 16;

export interface AnonKeyOptions {
  /** Default 'chacha20-poly1305'. */
  aead?: AnonAead;
  /** AES key bytes (16 or 32, default 32); ChaCha20 keys are always 32. */
  aesKeyLength?: 16 | 32;
  /** HKDF salt (non-secret, e.g. both peers' nonces from the key exchange); default none. */
  salt?: Uint8Array;
  /** Appended to every info string: what this session is (peers, purpose). Strings are UTF-8. */
  context?: Uint8Array | string;
}

/** Key material per direction: AEAD key ‖ 4-byte nonce salt, what AnonSealer and AnonOpener take. */
export interface AnonKeys {
  aead: AnonAead;
  initiatorToResponder: Uint8Array;
  responderToInitiator: Uint8Array;
  /** The initiator's first session ID (never 0), known to both ends from the secret alone. */
  rendezvousSid: Sid;
}

/** The key material an endpoint of `role` seals with (`send`) and opens with (`receive`). */
export interface AnonDirectionKeys {
  send: Uint8Array;
  receive: Uint8Array;
}

const encoder = new TextEncoder();

/** Derives both directions' key material and the rendezvous SID from `secret`. Throws on bad options. */
export function deriveAnonKeys(secret: Uint8Array, options: AnonKeyOptions = {}): AnonKeys {
  if (secret.length < ANON_MIN_SECRET_LENGTH)
    throw new Error(
      `anonymity-layer keys: the shared secret is ${secret.length} bytes; give at least ${ANON_MIN_SECRET_LENGTH}`,
    );
  const aead = options.aead ?? 'chacha20-poly1305';
  if (aead !== 'chacha20-poly1305' && aead !== 'aes-gcm')
    throw new Error(`anonymity-layer keys: aead "${aead}" is not chacha20-poly1305 or aes-gcm`);
  const aesKeyLength = options.aesKeyLength ?? 32;
  if (aesKeyLength !== 16 && aesKeyLength !== 32)
    throw new Error(`anonymity-layer keys: aesKeyLength ${aesKeyLength} is not 16 or 32`);
  const keyLength = aead === 'aes-gcm' ? aesKeyLength : 32;
  const algName = aead === 'aes-gcm' ? `aes-gcm-${keyLength * 8}` : aead;
  const context =
    typeof options.context === 'string'
      ? encoder.encode(options.context)
      : (options.context ?? new Uint8Array(0));

  const prk = extract(sha256, secret, options.salt);
  const out = (label: string, length: number): Uint8Array =>
    expand(sha256, prk, info(label, context), length);
  const materialLength = keyLength + ANON_NONCE_SALT_LENGTH;
  const sidBytes = out('pktveil anon v1 rendezvous sid', 8);
  // 0 is never a session ID; the chance is 2^-64, but a derivation must not be able to produce it.
  if (sidBytes.every((b) => b === 0)) sidBytes[7] = 1;
  return {
    aead,
    initiatorToResponder: out(`pktveil anon v1 initiator->responder ${algName}`, materialLength),
    responderToInitiator: out(`pktveil anon v1 responder->initiator ${algName}`, materialLength),
    rendezvousSid: sidFromBytes(sidBytes, 0),
  };
}

/** Which of the two directions' key material `role` seals and opens with. */
export function keysFor(keys: AnonKeys, role: AnonRole): AnonDirectionKeys {
  return role === 'initiator'
    ? { send: keys.initiatorToResponder, receive: keys.responderToInitiator }
    : { send: keys.responderToInitiator, receive: keys.initiatorToResponder };
}

/** label ‖ 0x00 ‖ context: the 0 keeps a label that is a prefix of another from meeting it. */
function info(label: string, context: Uint8Array): Uint8Array {
  const l = encoder.encode(label);
  const out = new Uint8Array(l.length + 1 + context.length);
  out.set(l, 0);
  out.set(context, l.length + 1);
  return out;
}
