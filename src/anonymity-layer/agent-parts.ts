/**
 * Pieces both agents (host-agent.ts, responder-agent.ts) share: the key derivation they agree on, the
 * fresh first sequence number of each session, packet views without per-packet allocation, the IPv4
 * checks of a captured packet, and the per-session SID log behind `sids.json`.
 */
import { randomFillSync } from 'node:crypto';
import { networkOffset } from '../codec/network-offset.js';
import { LinkType, type Packet } from '../packet.js';
import { countDrop, type StageStats } from '../stages/stage.js';
import { type AnonKeys, deriveAnonKeys } from './keys.js';
import { sidHex, sidOf } from './sid.js';

/** HKDF context both agents derive a peer's keys with (keys.ts): one secret, one pair of agents. */
export const AGENT_KEY_CONTEXT = 'pktveil agent';

/** The keys an agent uses with a peer whose shared secret is `secret`. */
export function agentKeys(secret: Uint8Array): AnonKeys {
  return deriveAnonKeys(secret, { context: AGENT_KEY_CONTEXT });
}

/**
 * A random first sequence number in [1, 2^62]. The agents' keys come from a long-term secret, so a
 * restarted agent gets the same keys again; starting each session's counter at a random point keeps
 * (salt ‖ sequence) nonces of two runs apart: two runs of 2^32 packets each overlap with odds of about
 * 2^-29, where starting at 1 would reuse every nonce.
 */
export function randomFirstSequence(): bigint {
  const b = new Uint8Array(8);
  randomFillSync(b);
  const hi = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 2; // 30 bits
  const lo = ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
  return sidOf(hi, lo) + 1n;
}

/**
 * Emits packets whose bytes are buffer[0, n) without allocating per packet: one Buffer view per length
 * seen (as LiveCapture does) and one Packet object, both reused. The receiver of an emitted packet borrows
 * it for the call only.
 */
export class PacketViews {
  readonly buffer: Buffer;
  private readonly views = new Map<number, Buffer>();
  private readonly pkt: Packet;

  constructor(size: number, link: LinkType = LinkType.IPV4) {
    this.buffer = Buffer.alloc(size);
    this.pkt = { data: this.buffer.subarray(0, 0), ts: 0n, link };
  }

  /** The packet buffer[0, length) stamped `ts`. */
  packet(length: number, ts: bigint): Packet {
    let data = this.views.get(length);
    if (data === undefined) {
      data = this.buffer.subarray(0, length);
      if (this.views.size < 4096) this.views.set(length, data);
    }
    this.pkt.data = data;
    this.pkt.ts = ts;
    this.pkt.origLen = length;
    return this.pkt;
  }
}

/** Where an IPv4 packet starts in a frame and how long it is, or why it cannot be used. */
export interface Ipv4Span {
  offset: number;
  headerLength: number;
  totalLength: number;
}

const version: { ip: 4 | 6 } = { ip: 4 };

/**
 * Finds the IPv4 packet of a captured frame into `span`; returns null, or why the frame was refused:
 * 'not-ipv4' (no IP, or IPv6), 'truncated' (cut short), 'malformed' (lengths that contradict each other).
 */
export function ipv4Span(pkt: Packet, span: Ipv4Span): null | 'not-ipv4' | 'truncated' | 'malformed' {
  const data = pkt.data;
  const off = networkOffset(data, pkt.link, version);
  if (off < 0 || version.ip !== 4) return 'not-ipv4';
  if (data.length - off < 20) return 'truncated';
  const headerLength = (data[off]! & 0x0f) << 2;
  const total = (data[off + 2]! << 8) | data[off + 3]!;
  if (headerLength < 20 || total < headerLength) return 'malformed';
  if (off + total > data.length) return 'truncated';
  span.offset = off;
  span.headerLength = headerLength;
  span.totalLength = total;
  return null;
}

/**
 * A stage's first step on a packet: counts it in, finds its IPv4 packet into `span`, and when there is none
 * counts the drop by ipv4Span's reason. Returns whether the stage goes on.
 */
export function takeIpv4(pkt: Packet, span: Ipv4Span, stats: StageStats): boolean {
  stats.packetsIn++;
  const bad = ipv4Span(pkt, span);
  if (bad === null) return true;
  countDrop(stats, bad);
  return false;
}

/** True when the IPv4 header at buf[off] is a fragment (more fragments, or an offset). */
export function isFragment(buf: Uint8Array, off: number): boolean {
  return (((buf[off + 6]! << 8) | buf[off + 7]!) & 0x3fff) !== 0;
}

/** One session's SIDs in the order they were first used, per direction (hex, as sids.json has them). */
export interface SidLogEntry {
  peer: string;
  direction: 'out' | 'in';
  sids: string[];
}

/**
 * Records the current SIDs a session sends and receives under, each once, in order of first use. The
 * per-packet cost is one comparison with the last SID; a late packet under an older SID adds nothing.
 */
export class SidRecorder {
  readonly out: SidLogEntry;
  readonly in: SidLogEntry;
  private outHi = 0;
  private outLo = 0;
  private inHi = 0;
  private inLo = 0;
  private readonly seenOut = new Set<string>();
  private readonly seenIn = new Set<string>();

  constructor(peer: string) {
    this.out = { peer, direction: 'out', sids: [] };
    this.in = { peer, direction: 'in', sids: [] };
  }

  sent(hi: number, lo: number): void {
    if (hi === this.outHi && lo === this.outLo) return;
    this.outHi = hi;
    this.outLo = lo;
    const hex = sidHex(sidOf(hi, lo));
    if (this.seenOut.has(hex)) return;
    this.seenOut.add(hex);
    this.out.sids.push(hex);
  }

  received(hi: number, lo: number): void {
    if (hi === this.inHi && lo === this.inLo) return;
    this.inHi = hi;
    this.inLo = lo;
    const hex = sidHex(sidOf(hi, lo));
    if (this.seenIn.has(hex)) return;
    this.seenIn.add(hex);
    this.in.sids.push(hex);
  }
}
