/**
 * Corpora for the host filter benchmarks: what the broadcast scheme puts on a host's link, many frames
 * packed back to back in one buffer (a million separate Buffers would measure the garbage collector).
 *
 * - SID corpus: Ethernet/IPv4/protocol 253 replies broadcast into the subnet, each with an anonymity
 *   header whose clear current SID is either one of this host's sessions' (current or announced next SID)
 *   or another host's (random). A few frames carry IPv4 options, so the SID is not always at one offset.
 * - Tuple corpus: basic-mode Ethernet/IPv4/TCP|UDP replies, either on one of this host's conversation
 *   tuples or on another host's.
 * - Broadcast load: a ring of fixed-size frames mixing both kinds, for the live prefilter benchmark.
 *
 * Built by hand from the RFC layouts with a seeded generator: the same frames on every machine. Which
 * frames are the host's is recorded (`own`), so a filter's keep count can be checked against the truth.
 */
import { foldChecksum, internetChecksum, ipv4PseudoHeaderSum, onesSum } from '../../src/codec/checksum.js';
import { seededRandom } from './corpus.js';

const ETH = 14;
/** The anonymity layer's clear part, sealed header and tag: what every anon frame carries at least. */
const ANON_OVERHEAD = 41;
const HOST_MAC = [0x02, 0x00, 0x5e, 0x10, 0x00, 0xfe];
/** The subnet's broadcast address (198.18.0.0/24, RFC 2544 benchmarking range): where replies go. */
export const SUBNET_BROADCAST = 0xc61200ff;

/** Frames packed back to back: frame i is bytes[offsets[i], offsets[i] + lengths[i]). */
export interface PackedFrames {
  bytes: Buffer;
  offsets: Uint32Array;
  lengths: Uint16Array;
  /** 1 where the frame belongs to this host (the truth a filter is checked against). */
  own: Uint8Array;
  count: number;
  ownCount: number;
}

/** A session of this host: the SIDs its filter accepts, as (hi, lo) halves. */
export interface HostSession {
  currentHi: number;
  currentLo: number;
  nextHi: number;
  nextLo: number;
}

/** Seeded uint32 generator. */
function u32Source(seed: number): () => number {
  const random = seededRandom(seed);
  return () => Math.floor(random() * 2 ** 32) >>> 0;
}

/** `n` sessions with distinct, non-zero current and next SIDs. */
export function hostSessions(n: number, seed = 0x5e55): HostSession[] {
  const u32 = u32Source(seed);
  const seen = new Set<string>();
  const fresh = (): [number, number] => {
    for (;;) {
      const hi = u32();
      const lo = u32();
      const key = `${hi}/${lo}`;
      if ((hi | lo) !== 0 && !seen.has(key)) {
        seen.add(key);
        return [hi, lo];
      }
    }
  };
  return Array.from({ length: n }, () => {
    const [currentHi, currentLo] = fresh();
    const [nextHi, nextLo] = fresh();
    return { currentHi, currentLo, nextHi, nextLo };
  });
}

function writeU32(b: Buffer, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** Ethernet header to the broadcast MAC from the router, IPv4 EtherType. */
function writeEthernet(b: Buffer, o: number): void {
  b.fill(0xff, o, o + 6);
  for (let i = 0; i < 6; i++) b[o + 6 + i] = HOST_MAC[i]!;
  b[o + 12] = 0x08;
  b[o + 13] = 0x00;
}

/** IPv4 header (with `optionBytes` of NOP options) from `src` to the subnet broadcast; returns its length. */
function writeIpv4(
  b: Buffer,
  o: number,
  protocol: number,
  payloadLength: number,
  src: number,
  id: number,
  optionBytes: number,
): number {
  const ihl = 20 + optionBytes;
  b[o] = 0x40 | (ihl >> 2);
  b[o + 1] = 0;
  b.writeUInt16BE(ihl + payloadLength, o + 2);
  b.writeUInt16BE(id & 0xffff, o + 4);
  b.writeUInt16BE(0x4000, o + 6);
  b[o + 8] = 57;
  b[o + 9] = protocol;
  b.writeUInt16BE(0, o + 10);
  writeU32(b, o + 12, src);
  writeU32(b, o + 16, SUBNET_BROADCAST);
  b.fill(0x01, o + 20, o + ihl);
  b.writeUInt16BE(internetChecksum(b, o, ihl), o + 10);
  return ihl;
}

/** A remote server's address in 198.18.0.0/15 outside the host's own /24. */
function remoteAddress(u32: () => number): number {
  return (0xc6120000 | (0x100 + (u32() % 0x1ff00))) >>> 0;
}

/** Lays out `count` frames of the given lengths in one buffer. */
function pack(lengths: Uint16Array): { bytes: Buffer; offsets: Uint32Array } {
  const offsets = new Uint32Array(lengths.length);
  let total = 0;
  for (let i = 0; i < lengths.length; i++) {
    offsets[i] = total;
    total += lengths[i]!;
  }
  return { bytes: Buffer.alloc(total), offsets };
}

export interface SidCorpusOptions {
  count: number;
  /** Share of frames on this host's sessions, 0..1. */
  ownShare: number;
  /** Share of IPv4 headers with 4 bytes of options. */
  optionShare?: number;
  seed?: number;
}

/**
 * Anonymity-layer replies (protocol 253) with 0–96 transport bytes behind the header; the SIDs are written
 * separately (assignSids), so one corpus serves tables of several sizes. Sealed bytes and tags are random:
 * a filter decides before any decryption.
 */
export function sidCorpus(options: SidCorpusOptions): PackedFrames {
  const { count, ownShare } = options;
  const optionShare = options.optionShare ?? 0.02;
  const random = seededRandom(options.seed ?? 0xa110);
  const u32 = u32Source((options.seed ?? 0xa110) ^ 0x77);
  const lengths = new Uint16Array(count);
  const options4 = new Uint8Array(count);
  const own = new Uint8Array(count);
  let ownCount = 0;
  for (let i = 0; i < count; i++) {
    options4[i] = random() < optionShare ? 1 : 0;
    lengths[i] = ETH + 20 + 4 * options4[i]! + ANON_OVERHEAD + Math.floor(random() * 97);
    if (random() < ownShare) {
      own[i] = 1;
      ownCount++;
    }
  }
  const { bytes, offsets } = pack(lengths);
  for (let i = 0; i < count; i++) {
    const o = offsets[i]!;
    const end = o + lengths[i]!;
    writeEthernet(bytes, o);
    const ihl = writeIpv4(
      bytes,
      o + ETH,
      253,
      end - o - ETH - 20 - 4 * options4[i]!,
      remoteAddress(u32),
      u32(),
      4 * options4[i]!,
    );
    // Sequence, sealed part and tag: random bytes, four at a time.
    for (let p = o + ETH + ihl + 8; p < end; p += 4) {
      const v = u32();
      bytes[p] = v >>> 24;
      if (p + 1 < end) bytes[p + 1] = v >>> 16;
      if (p + 2 < end) bytes[p + 2] = v >>> 8;
      if (p + 3 < end) bytes[p + 3] = v;
    }
  }
  return { bytes, offsets, lengths, own, count, ownCount };
}

/** Where the clear current SID of SID-corpus frame i starts. */
function sidOffset(c: PackedFrames, i: number): number {
  const o = c.offsets[i]!;
  return o + ETH + ((c.bytes[o + ETH]! & 0x0f) << 2);
}

/**
 * Writes every frame's current SID: own frames get a random session's current SID (three in four) or its
 * announced next SID, the others a random SID that is none of the sessions' (checked).
 */
export function assignSids(c: PackedFrames, sessions: readonly HostSession[], seed = 0x51d): void {
  const random = seededRandom(seed);
  const u32 = u32Source(seed ^ 0x3c);
  const taken = new Set<string>();
  for (const s of sessions) {
    taken.add(`${s.currentHi}/${s.currentLo}`);
    taken.add(`${s.nextHi}/${s.nextLo}`);
  }
  for (let i = 0; i < c.count; i++) {
    const off = sidOffset(c, i);
    let hi: number;
    let lo: number;
    if (c.own[i]) {
      const s = sessions[Math.floor(random() * sessions.length)]!;
      const next = random() < 0.25;
      hi = next ? s.nextHi : s.currentHi;
      lo = next ? s.nextLo : s.currentLo;
    } else {
      do {
        hi = u32();
        lo = u32();
      } while ((hi | lo) === 0 || taken.has(`${hi}/${lo}`));
    }
    writeU32(c.bytes, off, hi);
    writeU32(c.bytes, off + 4, lo);
  }
}

/** A basic-mode conversation of this host: the reply's source address and ports, and protocol. */
export interface HostTuple {
  remoteAddress: number;
  remotePort: number;
  localPort: number;
  protocol: 6 | 17;
}

/** `n` distinct conversation tuples. */
export function hostTuples(n: number, seed = 0x7091): HostTuple[] {
  const random = seededRandom(seed);
  const u32 = u32Source(seed ^ 0x11);
  const services = [443, 80, 53, 22, 993, 123, 5353, 8080];
  const seen = new Set<string>();
  const out: HostTuple[] = [];
  while (out.length < n) {
    const t: HostTuple = {
      remoteAddress: remoteAddress(u32),
      remotePort: services[Math.floor(random() * services.length)]!,
      localPort: 32768 + Math.floor(random() * 28232),
      protocol: random() < 0.7 ? 6 : 17,
    };
    const key = `${t.remoteAddress}/${t.remotePort}/${t.localPort}/${t.protocol}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(t);
  }
  return out;
}

/**
 * Basic-mode replies: TCP (bare ACKs and data up to 96 bytes) and UDP, from remote servers to the subnet
 * broadcast. Own frames carry one of `tuples`, the others a random tuple that is none of them (checked).
 * Transport checksums are computed (UDP's 0 sent as 0xffff).
 */
export function tupleCorpus(
  tuples: readonly HostTuple[],
  options: { count: number; ownShare: number; seed?: number },
): PackedFrames {
  const { count, ownShare } = options;
  const random = seededRandom(options.seed ?? 0x7c0);
  const u32 = u32Source((options.seed ?? 0x7c0) ^ 0x99);
  const taken = new Set(tuples.map((t) => `${t.remoteAddress}/${t.remotePort}/${t.localPort}/${t.protocol}`));
  const picks: HostTuple[] = [];
  const own = new Uint8Array(count);
  const lengths = new Uint16Array(count);
  const dataLengths = new Uint8Array(count);
  let ownCount = 0;
  for (let i = 0; i < count; i++) {
    let t: HostTuple;
    if (random() < ownShare) {
      t = tuples[Math.floor(random() * tuples.length)]!;
      own[i] = 1;
      ownCount++;
    } else {
      do {
        t = {
          remoteAddress: remoteAddress(u32),
          remotePort: [443, 80, 53, 22, 993, 123, 5353, 8080][Math.floor(random() * 8)]!,
          localPort: 32768 + Math.floor(random() * 28232),
          protocol: random() < 0.7 ? 6 : 17,
        };
      } while (taken.has(`${t.remoteAddress}/${t.remotePort}/${t.localPort}/${t.protocol}`));
    }
    picks.push(t);
    dataLengths[i] = random() < 0.5 ? 0 : Math.floor(random() * 97);
    // Short frames are padded to Ethernet's 60 bytes; the padding is not part of the IP packet.
    lengths[i] = Math.max(60, ETH + 20 + (t.protocol === 6 ? 20 : 8) + dataLengths[i]!);
  }
  const { bytes, offsets } = pack(lengths);
  for (let i = 0; i < count; i++) {
    const t = picks[i]!;
    const o = offsets[i]!;
    const header = t.protocol === 6 ? 20 : 8;
    const data = dataLengths[i]!;
    const segment = header + data;
    writeEthernet(bytes, o);
    writeIpv4(bytes, o + ETH, t.protocol, segment, t.remoteAddress, u32(), 0);
    const s = o + ETH + 20;
    bytes.writeUInt16BE(t.remotePort, s);
    bytes.writeUInt16BE(t.localPort, s + 2);
    for (let p = s + header; p < s + segment; p++) bytes[p] = u32() & 0xff;
    if (t.protocol === 6) {
      writeU32(bytes, s + 4, u32());
      writeU32(bytes, s + 8, u32());
      bytes.writeUInt16BE(0x5010 | (data > 0 ? 0x08 : 0), s + 12);
      bytes.writeUInt16BE(502, s + 14);
      bytes.writeUInt16BE(0, s + 16);
      bytes.writeUInt16BE(0, s + 18);
      const sum = onesSum(bytes, s, segment, ipv4PseudoHeaderSum(bytes, o + ETH, 6, segment));
      bytes.writeUInt16BE(foldChecksum(sum), s + 16);
    } else {
      bytes.writeUInt16BE(segment, s + 4);
      bytes.writeUInt16BE(0, s + 6);
      const sum = onesSum(bytes, s, segment, ipv4PseudoHeaderSum(bytes, o + ETH, 17, segment));
      bytes.writeUInt16BE(foldChecksum(sum) || 0xffff, s + 6);
    }
  }
  return { bytes, offsets, lengths, own, count, ownCount };
}

export interface BroadcastLoadOptions {
  /** Frames in the ring the sender replays. */
  count: number;
  /** Every frame's length: anonymity-layer and UDP frames alike. */
  frameSize: number;
  /** Share of frames on this host's sessions (the rest are other hosts'). */
  ownShare: number;
  /** Share of other hosts' basic-mode UDP replies (not protocol 253). */
  basicShare: number;
  /** Source MAC of the frames (the sending interface's). */
  srcMac: Uint8Array;
  seed?: number;
}

/**
 * What the router broadcasts into a subnet: replies to every host, to the broadcast MAC and the subnet's
 * broadcast address, `frameSize` bytes each, back to back. Anonymity-layer replies carry this host's SIDs
 * (own) or random ones; basic-mode replies are UDP from remote servers to ephemeral ports.
 */
export function broadcastLoad(sessions: readonly HostSession[], options: BroadcastLoadOptions): PackedFrames {
  const { count, frameSize, ownShare, basicShare } = options;
  if (frameSize < ETH + 20 + ANON_OVERHEAD || frameSize > 1514)
    throw new Error(`frameSize ${frameSize} must be ${ETH + 20 + ANON_OVERHEAD}–1514`);
  const random = seededRandom(options.seed ?? 0xb0ad);
  const u32 = u32Source((options.seed ?? 0xb0ad) ^ 0x5a);
  const lengths = new Uint16Array(count).fill(frameSize);
  const own = new Uint8Array(count);
  const { bytes, offsets } = pack(lengths);
  let ownCount = 0;
  for (let i = 0; i < count; i++) {
    const o = offsets[i]!;
    const end = o + frameSize;
    writeEthernet(bytes, o);
    bytes.set(options.srcMac, o + 6);
    for (let p = o + ETH + 20; p < end; p++) bytes[p] = u32() & 0xff;
    const roll = random();
    if (roll < basicShare) {
      const segment = frameSize - ETH - 20;
      writeIpv4(bytes, o + ETH, 17, segment, remoteAddress(u32), u32(), 0);
      const s = o + ETH + 20;
      bytes.writeUInt16BE([53, 443, 123][Math.floor(random() * 3)]!, s);
      bytes.writeUInt16BE(32768 + Math.floor(random() * 28232), s + 2);
      bytes.writeUInt16BE(segment, s + 4);
      bytes.writeUInt16BE(0, s + 6);
      const sum = onesSum(bytes, s, segment, ipv4PseudoHeaderSum(bytes, o + ETH, 17, segment));
      bytes.writeUInt16BE(foldChecksum(sum) || 0xffff, s + 6);
      continue;
    }
    writeIpv4(bytes, o + ETH, 253, frameSize - ETH - 20, remoteAddress(u32), u32(), 0);
    const sid = o + ETH + 20;
    if (roll < basicShare + ownShare) {
      const s = sessions[Math.floor(random() * sessions.length)]!;
      const next = random() < 0.25;
      writeU32(bytes, sid, next ? s.nextHi : s.currentHi);
      writeU32(bytes, sid + 4, next ? s.nextLo : s.currentLo);
      own[i] = 1;
      ownCount++;
    }
    // Others' SIDs stay random; one of this host's among them has odds of 2^-57 per frame.
  }
  return { bytes, offsets, lengths, own, count, ownCount };
}
