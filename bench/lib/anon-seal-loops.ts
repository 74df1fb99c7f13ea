/**
 * The anonymity layer's crypto path under measurement, and its baselines: the raw AEAD of the same backend
 * doing the same cryptographic work on the same byte counts (9 + transport bytes sealed, 16 bytes of AAD,
 * a 16-byte tag, a fresh nonce per packet) with no framing around it. The layer's packets/s divided by the
 * baseline's is its framing efficiency.
 *
 * - AnonSealer.seal over a batch of packets, each sealed in place.
 * - AnonOpener.open over a ring of sealed packets (sequence 1..n), with a fresh opener per pass so the
 *   replay window accepts the ring again; its making is counted (openerSetupSeconds says how much).
 * - AnonReceiver.receive end to end over a ring of IPv4 packets a server session sent after the exchange
 *   (rotating its SID every 256 packets): IPv4 checks, the SID filter, the session's SID and replay checks,
 *   the tag, the SID bookkeeping. A fresh client session per pass, counted likewise.
 *
 * Every call is checked: a refusal, a drop or a wrong length throws, so nothing broken can look fast.
 */

import { deriveAnonKeys, keysFor } from '../../src/anonymity-layer/keys.js';
import { AnonReceiver } from '../../src/anonymity-layer/receiver.js';
import { ANON_HEADROOM, ANON_OVERHEAD, AnonOpener, AnonSealer } from '../../src/anonymity-layer/seal.js';
import type { AnonSession } from '../../src/anonymity-layer/session.js';
import { internetChecksum } from '../../src/codec/checksum.js';
import type { BackendName } from '../../src/esp/crypto/backend.js';
import { availableBackends, keySuite, type SuiteKeys } from '../../src/esp/crypto/select.js';
import { SUITES } from '../../src/esp/suites.js';
import { seededRandom } from './corpus.js';

export type AnonAeadName = 'chacha20-poly1305' | 'aes-gcm';

/** Transport bytes per packet (what the layer carries behind its 25-byte header). */
export const TRANSPORT_SIZES: readonly number[] = [64, 512, 1400];

const CLEAR = 16;
const SEALED_HEADER = 9;
const TAG = 16;
const IPV4 = 20;
const NO_KEY = new Uint8Array(0);

export interface AnonCase {
  aead: AnonAeadName;
  backend: BackendName;
  /** Both directions' key material and the rendezvous SID, from a fixed secret. */
  keys: ReturnType<typeof deriveAnonKeys>;
}

function suiteOf(aead: AnonAeadName) {
  return SUITES[aead === 'aes-gcm' ? 'aes-gcm-16' : 'chacha20-poly1305'];
}

/** The raw AEAD of a case, keyed once as AnonSealer keys it (same suite, key material, backend). */
function rawKeys(c: AnonCase): SuiteKeys {
  return keySuite(suiteOf(c.aead), c.keys.initiatorToResponder, NO_KEY, c.backend);
}

/** ChaCha20-Poly1305 on every backend of this process that offers it, and AES-256-GCM on node:crypto. */
export function anonCases(): AnonCase[] {
  const secret = new Uint8Array(32);
  const random = seededRandom(0xa11ce);
  for (let i = 0; i < secret.length; i++) secret[i] = Math.floor(random() * 256);
  const cases: AnonCase[] = [];
  for (const aead of ['chacha20-poly1305', 'aes-gcm'] as const) {
    const keys = deriveAnonKeys(secret, { aead, context: 'pktveil bench' });
    const backends = aead === 'aes-gcm' ? ['node' as const] : availableBackends().map((b) => b.name);
    for (const backend of backends) {
      const c: AnonCase = { aead, backend, keys };
      try {
        rawKeys(c);
      } catch {
        continue; // this backend does not offer the AEAD
      }
      cases.push(c);
    }
  }
  return cases;
}

/** "chacha20-poly1305/sodium/64", the part of a figure's name after the benchmark's. */
export function caseLabel(c: AnonCase, size: number): string {
  return `${c.aead}/${c.backend}/${size}`;
}

/** Where the loops leave their byte counts, so no call is dead code. */
export const sink = { bytes: 0 };

function filled(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  const random = seededRandom(seed);
  for (let i = 0; i < length; i++) b[i] = Math.floor(random() * 256);
  return b;
}

/** One timed operation: every packet of a batch sealed in place by one sealer (its sequence keeps counting). */
export function sealLoop(c: AnonCase, size: number, batch: number): () => void {
  const sealer = new AnonSealer({
    keyMaterial: c.keys.initiatorToResponder,
    aead: c.aead,
    backend: c.backend,
  });
  const packets = Array.from({ length: batch }, (_, i) => filled(ANON_OVERHEAD + size, i));
  const expected = ANON_OVERHEAD + size;
  return () => {
    let bytes = 0;
    for (let i = 0; i < packets.length; i++) {
      const n = sealer.seal(packets[i]!, 0, size, 17, 0x0a0b0c0d, i, 0x01020304, i + 1);
      if (n !== expected)
        throw new Error(
          typeof n === 'string' ? `seal refused: ${n}` : `seal wrote ${n} bytes, not ${expected}`,
        );
      bytes += n;
    }
    sink.bytes += bytes;
  };
}

/** One timed operation: the raw AEAD sealing the same byte counts, a fresh nonce per packet. */
export function sealPrimitiveLoop(c: AnonCase, size: number, batch: number): () => void {
  const { aead, salt } = rawKeys(c);
  const nonce = new Uint8Array(12);
  nonce.set(salt, 0);
  const packets = Array.from({ length: batch }, (_, i) => {
    const p = filled(ANON_OVERHEAD + size, i);
    const u8 = new Uint8Array(p.buffer, p.byteOffset, p.length);
    return {
      aad: u8.subarray(0, CLEAR),
      data: u8.subarray(CLEAR, CLEAR + SEALED_HEADER + size),
      tag: u8.subarray(CLEAR + SEALED_HEADER + size),
    };
  });
  let counter = 0;
  return () => {
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i]!;
      counter = (counter + 1) >>> 0;
      nonce[8] = counter >>> 24;
      nonce[9] = counter >>> 16;
      nonce[10] = counter >>> 8;
      nonce[11] = counter;
      aead!.seal(nonce, p.aad, p.data, p.tag);
    }
  };
}

/** `count` packets sealed under the case's key with sequence numbers 1..count, and their plaintexts. */
export function sealedRing(
  c: AnonCase,
  size: number,
  count: number,
): { packets: Buffer[]; plaintexts: Buffer[] } {
  const sealer = new AnonSealer({
    keyMaterial: c.keys.initiatorToResponder,
    aead: c.aead,
    backend: c.backend,
  });
  const plaintexts: Buffer[] = [];
  const packets = Array.from({ length: count }, (_, i) => {
    const p = filled(ANON_OVERHEAD + size, 0x0e0 + i);
    const n = sealer.seal(p, 0, size, 6, 0x0a0b0c0d, 0x01020304, 0x05060708, i);
    if (n !== p.length) throw new Error(`sealing ring packet ${i} gave ${String(n)}`);
    const plain = Buffer.alloc(SEALED_HEADER + size);
    plain.writeUInt32BE(0x05060708, 0);
    plain.writeUInt32BE(i, 4);
    plain[8] = 6;
    filled(ANON_OVERHEAD + size, 0x0e0 + i).copy(plain, SEALED_HEADER, ANON_HEADROOM, ANON_HEADROOM + size);
    plaintexts.push(plain);
    return p;
  });
  return { packets, plaintexts };
}

/** Opens the ring once with a fresh opener and checks every plaintext byte for byte. */
export function checkRingOpens(c: AnonCase, ring: { packets: Buffer[]; plaintexts: Buffer[] }): void {
  const opener = newOpener(c);
  const out = Buffer.alloc(65_535);
  ring.packets.forEach((p, i) => {
    const n = opener.open(p, 0, p.length, out, 0);
    if (typeof n === 'string') throw new Error(`ring packet ${i} does not open: ${n}`);
    if (!out.subarray(0, n).equals(ring.plaintexts[i]!))
      throw new Error(`ring packet ${i} opens to other bytes than were sealed`);
  });
}

function newOpener(c: AnonCase): AnonOpener {
  return new AnonOpener({ keyMaterial: c.keys.initiatorToResponder, aead: c.aead, backend: c.backend });
}

/** One timed operation: a fresh opener opens every packet of the ring (each must give 9 + size bytes). */
export function openLoop(c: AnonCase, size: number, ring: readonly Buffer[]): () => void {
  const out = Buffer.alloc(65_535);
  const expected = SEALED_HEADER + size;
  return () => {
    const opener = newOpener(c);
    let bytes = 0;
    for (let i = 0; i < ring.length; i++) {
      const p = ring[i]!;
      const n = opener.open(p, 0, p.length, out, 0);
      if (n !== expected)
        throw new Error(
          typeof n === 'string' ? `open dropped ring packet ${i}: ${n}` : `open gave ${n} bytes`,
        );
      bytes += n;
    }
    sink.bytes += bytes;
  };
}

/** One timed operation: the raw AEAD opening the same ring (ciphertext copied to a work buffer first). */
export function openPrimitiveLoop(c: AnonCase, size: number, ring: readonly Buffer[]): () => void {
  const { aead, salt } = rawKeys(c);
  const packets = ring.map((p) => {
    const u8 = new Uint8Array(p.buffer, p.byteOffset, p.length);
    const nonce = new Uint8Array(12);
    nonce.set(salt, 0);
    nonce.set(u8.subarray(8, 16), 4);
    return {
      nonce,
      aad: u8.subarray(0, CLEAR),
      ciphertext: u8.subarray(CLEAR, CLEAR + SEALED_HEADER + size),
      tag: u8.subarray(CLEAR + SEALED_HEADER + size, CLEAR + SEALED_HEADER + size + TAG),
    };
  });
  const work = new Uint8Array(SEALED_HEADER + size);
  return () => {
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i]!;
      work.set(p.ciphertext);
      if (!aead!.open(p.nonce, p.aad, work, p.tag))
        throw new Error(`raw AEAD open failed on ring packet ${i}`);
    }
  };
}

/** Seconds one open operation spends making its opener (median of `samples`). */
export function openerSetupSeconds(c: AnonCase, samples = 201): number {
  return medianSeconds(samples, () => newOpener(c));
}

function medianSeconds(samples: number, make: () => unknown): number {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const began = performance.now();
    make();
    times.push(performance.now() - began);
  }
  times.sort((a, b) => a - b);
  return times[samples >> 1]! / 1000;
}

/** A server's packets to a client host, after the exchange, and what a fresh client session needs. */
export interface ReceiveRing {
  /** Raw IPv4 packets (protocol 253), the server's sequence numbers 1..n in order. */
  packets: Buffer[];
  /** The transport bytes each carries. */
  transports: Buffer[];
}

/** Rotations of the server's own SID, by count. */
const ROTATE_EVERY = 256;

function sessionOptions(c: AnonCase, role: 'initiator' | 'responder') {
  return {
    keys: keysFor(c.keys, role),
    aead: c.aead,
    backend: c.backend,
    firstSid: c.keys.rendezvousSid,
    rotateEveryPackets: ROTATE_EVERY,
    rotateEveryMs: 0,
    idleTimeoutMs: 0,
  };
}

/** Seals `transport` from `s` behind a 20-byte IPv4 header (server → subnet broadcast, protocol 253). */
function sealIpv4(s: AnonSession, transport: Buffer): Buffer {
  const p = Buffer.alloc(IPV4 + ANON_OVERHEAD + transport.length);
  transport.copy(p, IPV4 + ANON_HEADROOM);
  const n = s.seal(p, IPV4, transport.length, 17, 0n);
  if (n !== ANON_OVERHEAD + transport.length) throw new Error(`session seal refused: ${String(n)}`);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(0x4000, 6);
  p[8] = 64;
  p[9] = 253;
  p.writeUInt32BE(0xc6120107, 12); // 198.18.1.7, the server
  p.writeUInt32BE(0xc61200ff, 16); // 198.18.0.255, the subnet broadcast
  p.writeUInt16BE(internetChecksum(p, 0, IPV4), 10);
  return p;
}

function expectDelivered(host: AnonReceiver, p: Buffer, what: string): number {
  const r = host.receive(p, 0, p.length, 0n);
  if (typeof r === 'string') throw new Error(`${what}: the receiver dropped it (${r})`);
  return r;
}

/**
 * `count` packets a server session sends its client once the exchange is done: the client's first contact
 * reaches the server, the server's reply (on the client's first SID) starts the ring, the client's second
 * packet lets the server move to its own chain, and the rest follow with a rotation every 256 packets.
 */
export function receiveRing(c: AnonCase, size: number, count: number): ReceiveRing {
  const clientHost = new AnonReceiver();
  const serverHost = new AnonReceiver();
  const client = clientHost.initiator(sessionOptions(c, 'initiator'));
  const server = serverHost.responder(sessionOptions(c, 'responder'));
  expectDelivered(serverHost, sealIpv4(client, filled(32, 1)), 'first contact');
  const transports = Array.from({ length: count }, (_, i) => filled(size, 0x7e0 + i));
  const packets = [sealIpv4(server, transports[0]!)];
  expectDelivered(clientHost, packets[0]!, 'the reply');
  expectDelivered(serverHost, sealIpv4(client, filled(32, 2)), "the client's second packet");
  for (let i = 1; i < count; i++) packets.push(sealIpv4(server, transports[i]!));
  if (server.ownGeneration < 2)
    throw new Error(`the server rotated only to generation ${server.ownGeneration}`);
  return { packets, transports };
}

/**
 * One timed operation: a fresh client session on one host receives the whole ring (the previous pass's
 * session closed first); every packet must come out with its transport bytes' length.
 */
export function receiveLoop(c: AnonCase, size: number, ring: ReceiveRing): () => void {
  const host = new AnonReceiver();
  let session: AnonSession | null = null;
  const packets = ring.packets;
  return () => {
    session?.close();
    session = host.initiator(sessionOptions(c, 'initiator'));
    let bytes = 0;
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i]!;
      const n = host.receive(p, 0, p.length, 0n);
      if (n !== size)
        throw new Error(
          typeof n === 'string' ? `receive dropped ring packet ${i}: ${n}` : `receive gave ${n} bytes`,
        );
      bytes += n;
    }
    sink.bytes += bytes;
  };
}

/** Receives the ring once through a fresh session and checks every transport byte for byte. */
export function checkRingReceived(c: AnonCase, ring: ReceiveRing): void {
  const host = new AnonReceiver();
  host.initiator(sessionOptions(c, 'initiator'));
  ring.packets.forEach((p, i) => {
    const n = expectDelivered(host, p, `ring packet ${i}`);
    const d = host.delivered;
    if (!d.buffer.subarray(d.transportOffset, d.transportOffset + n).equals(ring.transports[i]!))
      throw new Error(`ring packet ${i} was received with other transport bytes than were sealed`);
  });
}

/** Seconds one receive operation spends closing the last session and making the next (median). */
export function sessionSetupSeconds(c: AnonCase, samples = 201): number {
  const host = new AnonReceiver();
  let session: AnonSession | null = null;
  return medianSeconds(samples, () => {
    session?.close();
    session = host.initiator(sessionOptions(c, 'initiator'));
  });
}
