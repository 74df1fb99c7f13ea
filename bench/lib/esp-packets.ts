/**
 * What the ESP benchmarks feed the engine: inner IPv4/UDP packets of an exact size, and rings of valid
 * ESP packets (consecutive sequence numbers from 1) built by a sending SA for the receiving side to open.
 */
import { encapsulate } from '../../src/esp/encapsulate.js';
import { type SaConfig, SecurityAssociation } from '../../src/esp/sa.js';
import { ETH_LENGTH, IPV4_LENGTH, seededRandom, UDP_LENGTH, udpFrame } from './corpus.js';

const MAC_A = Uint8Array.of(0x02, 0x00, 0x5e, 0x10, 0x00, 0x01);
const MAC_B = Uint8Array.of(0x02, 0x00, 0x5e, 0x10, 0x00, 0xfe);

/**
 * `count` Ethernet/IPv4/UDP frames whose IPv4 packet is exactly `ipLength` bytes, with correct checksums,
 * differing in addresses (198.18.0.0/15), ports and payload bytes.
 */
export function udpFrames(ipLength: number, count: number, seed = 0xe5b): Buffer[] {
  if (ipLength < IPV4_LENGTH + UDP_LENGTH) throw new Error(`an IPv4/UDP packet needs at least 28 bytes`);
  const random = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const payload = Buffer.alloc(ipLength - IPV4_LENGTH - UDP_LENGTH);
    for (let j = 0; j < payload.length; j++) payload[j] = int(0, 255);
    const frame = udpFrame(
      MAC_A,
      MAC_B,
      {
        src: (0xc6120000 | int(0, 0x1ffff)) >>> 0,
        dst: (0xc6120000 | int(0, 0x1ffff)) >>> 0,
        id: int(0, 0xffff),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        dontFragment: true,
      },
      { srcPort: int(32768, 60999), dstPort: 443 },
      payload,
    );
    frames.push(frame);
  }
  return frames;
}

/** The IPv4 packets of udpFrames, without their Ethernet header (what encapsulate takes). */
export function innerPackets(ipLength: number, count: number, seed?: number): Buffer[] {
  return udpFrames(ipLength, count, seed).map((f) => f.subarray(ETH_LENGTH, ETH_LENGTH + ipLength));
}

/**
 * Each of `inner` ESP-encapsulated by a fresh SA of `config` (sequence numbers 1, 2, ...), each result in
 * its own buffer of exactly its length. Throws if the engine refuses one.
 */
export function espRing(config: SaConfig, inner: readonly Buffer[]): Buffer[] {
  const sender = new SecurityAssociation(config);
  const scratch = Buffer.alloc(65_535);
  return inner.map((p, i) => {
    const n = encapsulate(sender, p, 0, p.length, scratch, 0);
    if (typeof n !== 'number') throw new Error(`building the ESP ring: packet ${i} refused (${n})`);
    return Buffer.from(scratch.subarray(0, n));
  });
}
