/**
 * The baselines of the ESP engine benchmarks: the raw crypto primitives of the same backend doing the
 * same cryptographic work on the same byte counts as one ESP packet, with no framing around them. The
 * engine's packets/s divided by these is its framing efficiency.
 *
 * Encapsulation: AEAD seal of the padded payload (a fresh nonce every call, 8-byte AAD); AES-CBC encrypt
 * plus HMAC over ESP header, IV and ciphertext; HMAC alone for null encryption. Decapsulation, on the very
 * packets the engine opens: the ciphertext copied into a work buffer (the engine copies too: it never
 * writes into its input, and an in-place open destroys what the next pass needs) and AEAD open; HMAC
 * verify, copy and AES-CBC decrypt; HMAC verify alone. Every open and verify must succeed, or the loop
 * throws: a failed check is not throughput.
 */
import { ESP_HEADER_LENGTH } from '../../src/codec/esp.js';
import { IPV4_HEADER_LENGTH } from '../../src/codec/ipv4.js';
import { keySuite, type SuiteKeys } from '../../src/esp/crypto/select.js';
import type { Suite } from '../../src/esp/suites.js';
import type { EspCase } from './esp-cases.js';

const NO_EXTRA = new Uint8Array(0);
/** Where ESP starts in a tunnel-mode packet without NAT-T: right after the outer IPv4 header. */
const ESP_OFFSET = IPV4_HEADER_LENGTH;

/** Byte layout of a tunnel-mode ESP packet carrying an inner packet of `innerSize` bytes. */
export interface EspLayout {
  ivOff: number;
  dataOff: number;
  /** Payload ‖ padding ‖ pad length ‖ next header: what is encrypted. */
  dataLength: number;
  icvOff: number;
  total: number;
}

/** The same arithmetic as the engine (RFC 4303 §2.4 padding to the suite's block size). */
export function espLayout(suite: Suite, innerSize: number): EspLayout {
  const ivOff = ESP_OFFSET + ESP_HEADER_LENGTH;
  const dataOff = ivOff + suite.ivLength;
  const unpadded = innerSize + 2;
  const dataLength = unpadded + ((suite.blockSize - (unpadded % suite.blockSize)) % suite.blockSize);
  const icvOff = dataOff + dataLength;
  return { ivOff, dataOff, dataLength, icvOff, total: icvOff + suite.icvLength };
}

/** What the baseline of a case is called in a figure: "node AEAD seal", "noble aes-cbc + hmac-sha1 verify, decrypt". */
export function primitiveName(c: EspCase, direction: 'encap' | 'decap'): string {
  const s = c.suite;
  if (s.kind === 'aead') return `${c.backend} AEAD ${direction === 'encap' ? 'seal' : 'open'}`;
  if (s.kind === 'cbc-hmac')
    return direction === 'encap'
      ? `${c.backend} aes-cbc encrypt + hmac-${s.hmac}`
      : `${c.backend} hmac-${s.hmac} verify + aes-cbc decrypt`;
  return `${c.backend} hmac-${s.hmac} ${direction === 'encap' ? 'compute' : 'verify'}`;
}

function keysOf(c: EspCase): SuiteKeys {
  return keySuite(c.suite, c.encKey, c.authKey, c.backend);
}

/**
 * One timed operation: `iterations` packets' worth of the primitives encapsulation runs, on a packet
 * buffer laid out as the engine lays it out (so alignments match).
 */
export function encapPrimitiveLoop(c: EspCase, innerSize: number, iterations: number): () => void {
  const keys = keysOf(c);
  const layout = espLayout(c.suite, innerSize);
  const packet = Buffer.alloc(layout.total, 0x5c);
  const data = packet.subarray(layout.dataOff, layout.icvOff);
  const icv = packet.subarray(layout.icvOff, layout.total);
  const esp = packet.subarray(ESP_OFFSET, layout.icvOff);
  const { aead, cbc, mac } = keys;
  if (aead) {
    const nonce = new Uint8Array(12);
    nonce.set(keys.salt, 0);
    const aad = Uint8Array.of(0, 0, 0xb3, 0x7c, 0, 0, 0, 1);
    let counter = 0;
    return () => {
      for (let i = 0; i < iterations; i++) {
        // A fresh nonce per packet, as the SA's IV counter gives one.
        counter = (counter + 1) >>> 0;
        nonce[8] = counter >>> 24;
        nonce[9] = counter >>> 16;
        nonce[10] = counter >>> 8;
        nonce[11] = counter;
        aead.seal(nonce, aad, data, icv);
      }
    };
  }
  if (!mac)
    throw new Error(`${c.suite.name}: no integrity primitive to time (null suites are not benchmarked)`);
  const iv = packet.subarray(layout.ivOff, layout.dataOff);
  if (cbc)
    return () => {
      for (let i = 0; i < iterations; i++) {
        cbc.encrypt(iv, data);
        mac.compute(esp, NO_EXTRA, icv);
      }
    };
  return () => {
    for (let i = 0; i < iterations; i++) mac.compute(esp, NO_EXTRA, icv);
  };
}

/** Views of one ESP packet of the ring, made before timing so the loop allocates nothing of its own. */
interface RingPacket {
  nonce: Uint8Array;
  /** SPI ‖ sequence number (ESN off): the AEAD AAD. */
  header: Uint8Array;
  iv: Uint8Array;
  ciphertext: Uint8Array;
  /** ESP header through ciphertext: what the HMAC covers. */
  authenticated: Uint8Array;
  icv: Uint8Array;
}

/**
 * One timed operation: the primitives decapsulation runs, once for every packet of `ring` (valid ESP
 * packets of `c` carrying `innerSize`-byte inner packets, as espRing builds them).
 */
export function decapPrimitiveLoop(c: EspCase, innerSize: number, ring: readonly Buffer[]): () => void {
  const keys = keysOf(c);
  const layout = espLayout(c.suite, innerSize);
  const packets: RingPacket[] = ring.map((p, i) => {
    if (p.length !== layout.total)
      throw new Error(`ring packet ${i} is ${p.length} bytes; the layout says ${layout.total}`);
    const nonce = new Uint8Array(12);
    nonce.set(keys.salt, 0);
    nonce.set(p.subarray(layout.ivOff, layout.ivOff + 8), 4);
    return {
      nonce,
      header: p.subarray(ESP_OFFSET, ESP_OFFSET + ESP_HEADER_LENGTH),
      iv: p.subarray(layout.ivOff, layout.dataOff),
      ciphertext: p.subarray(layout.dataOff, layout.icvOff),
      authenticated: p.subarray(ESP_OFFSET, layout.icvOff),
      icv: p.subarray(layout.icvOff, layout.total),
    };
  });
  const work = new Uint8Array(layout.dataLength);
  const { aead, cbc, mac } = keys;
  const fail = (what: string, i: number) => {
    throw new Error(`${primitiveName(c, 'decap')}: ${what} failed on ring packet ${i}`);
  };
  if (aead)
    return () => {
      for (let i = 0; i < packets.length; i++) {
        const p = packets[i]!;
        work.set(p.ciphertext);
        if (!aead.open(p.nonce, p.header, work, p.icv)) fail('open', i);
      }
    };
  if (!mac)
    throw new Error(`${c.suite.name}: no integrity primitive to time (null suites are not benchmarked)`);
  if (cbc)
    return () => {
      for (let i = 0; i < packets.length; i++) {
        const p = packets[i]!;
        if (!mac.verify(p.authenticated, NO_EXTRA, p.icv)) fail('verify', i);
        work.set(p.ciphertext);
        cbc.decrypt(p.iv, work);
      }
    };
  return () => {
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i]!;
      if (!mac.verify(p.authenticated, NO_EXTRA, p.icv)) fail('verify', i);
    }
  };
}
