/**
 * Synthetic labelled traffic for judging TFC settings: deterministic (seeded) generators on virtual time of
 * raw IPv4 packets (LINKTYPE_IPV4, valid IP, UDP and TCP headers and checksums) that take turns, and the
 * labels file (analysis/labels.ts format) saying which pattern was on the wire when.
 *
 * Patterns, each run for one turn (packets that would fall after the turn's end are not sent):
 * - voip: a 200-byte UDP/RTP packet every 20 ms ± 1 ms jitter in each direction (G.711, 20 ms frames);
 * - web: a 300–800-byte request, 20–60 ms later a burst of 3–80 segments of 1500 bytes at 100 Mbit/s with
 *   an ACK every second segment, then 100–700 ms of think time;
 * - bulk: back-to-back 1500-byte segments at 20 Mbit/s (± 50 µs) with an ACK every second one;
 * - silence: nothing;
 * - constant: `constant.packetBytes`-byte UDP packets at exactly `constant.packetsPerSecond`, on one
 *   schedule from the start of the traffic through consecutive constant turns (what a perfect
 *   constant-rate TFC shows, whatever the class underneath).
 *
 * Hosts are in 198.18.0.0/15: the client 198.18.0.1, the VoIP peer .2, the web server .3, the bulk server
 * .4, the constant-rate peer .10.
 */

import { ipv4PseudoHeaderSum } from '../codec/checksum.js';
import { IPV4_HEADER_LENGTH, Ipv4Repr } from '../codec/ipv4.js';
import { TCP_HEADER_LENGTH, TcpFlags, TcpRepr } from '../codec/tcp.js';
import { UDP_HEADER_LENGTH, UdpRepr } from '../codec/udp.js';
import { writeCapture } from '../io/capture-file.js';
import { LinkType, type Packet } from '../packet.js';
import { type LabelsJson, labelsToJson } from './analysis/labels.js';
import { type Random, seededRandom } from './random.js';

export type PatternName = 'voip' | 'web' | 'bulk' | 'silence' | 'constant';

export interface TrafficTurn {
  pattern: PatternName;
  seconds: number;
  /** Label of the turn in the labels file; default: the pattern's name. */
  class?: string;
}

export interface ConstantPattern {
  /** IPv4 total length of every packet (28 to 1500). */
  packetBytes: number;
  packetsPerSecond: number;
}

export interface TrafficOptions {
  seed: number;
  turns: readonly TrafficTurn[];
  /** Start of the first turn, in ns since the epoch (default 1,700,000,000 s). */
  start?: bigint;
  /** windowSeconds of the labels (default 1). */
  windowSeconds?: number;
  /** The constant pattern's packets (default 500 bytes at 100 per second). */
  constant?: ConstantPattern;
}

export interface GeneratedTraffic {
  /** The packets in time order. Each packet's data is borrowed until the next one is requested. */
  packets(): Generator<Packet>;
  /** Which turn was when, as a labels file for `pktveil analyze --labels`. */
  labels: LabelsJson;
  /** First and end (exclusive) time of the turns, ns since the epoch. */
  start: bigint;
  end: bigint;
}

export const DEFAULT_TRAFFIC_START = 1_700_000_000_000_000_000n;
export const DEFAULT_CONSTANT: ConstantPattern = { packetBytes: 500, packetsPerSecond: 100 };

const CLIENT = 0xc6120001; // 198.18.0.1
const VOIP_PEER = 0xc6120002;
const WEB_SERVER = 0xc6120003;
const BULK_SERVER = 0xc6120004;
const CONSTANT_PEER = 0xc612000a;

const MS = 1e6;
const MTU = 1500;
const TCP_MSS = MTU - IPV4_HEADER_LENGTH - TCP_HEADER_LENGTH;

/** One packet to build: time within the turn (ns) and its headers' values. */
interface Send {
  t: number;
  protocol: 6 | 17;
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  /** Transport payload bytes. */
  payload: number;
  seq: number;
  ack: number;
  flags: number;
}

/** Turns of `patterns` in rotation, `rounds` times, each lasting `seconds` (or a seeded draw from [min, max)). */
export function takeTurns(
  patterns: readonly PatternName[],
  rounds: number,
  seconds: number | readonly [number, number],
  seed = 1,
): TrafficTurn[] {
  const random = seededRandom(seed);
  const turns: TrafficTurn[] = [];
  for (let r = 0; r < rounds; r++)
    for (const pattern of patterns) {
      const s = typeof seconds === 'number' ? seconds : seconds[0] + random() * (seconds[1] - seconds[0]);
      turns.push({ pattern, seconds: Math.round(s * 1000) / 1000 });
    }
  return turns;
}

/** The same turns and labels, every one sending the constant pattern instead (a perfect TFC's view). */
export function asConstantRate(turns: readonly TrafficTurn[]): TrafficTurn[] {
  return turns.map((t) => ({ pattern: 'constant', seconds: t.seconds, class: t.class ?? t.pattern }));
}

export function generateTraffic(options: TrafficOptions): GeneratedTraffic {
  const start = options.start ?? DEFAULT_TRAFFIC_START;
  const constant = options.constant ?? DEFAULT_CONSTANT;
  if (!(constant.packetBytes >= IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH && constant.packetBytes <= MTU))
    throw new Error(`constant.packetBytes must be from 28 to ${MTU}, got ${constant.packetBytes}`);
  if (!(constant.packetsPerSecond > 0))
    throw new Error(`constant.packetsPerSecond must be positive, got ${constant.packetsPerSecond}`);
  const spans: { start: bigint; offset: number; ns: number; turn: TrafficTurn }[] = [];
  let at = start;
  for (const [i, turn] of options.turns.entries()) {
    if (!(turn.seconds > 0)) throw new Error(`turns[${i}].seconds must be positive, got ${turn.seconds}`);
    const ns = Math.round(turn.seconds * 1e9);
    spans.push({ start: at, offset: Number(at - start), ns, turn });
    at += BigInt(ns);
  }
  const windowNs = BigInt(Math.round((options.windowSeconds ?? 1) * 1e9));
  if (windowNs <= 0n) throw new Error(`windowSeconds must be positive, got ${options.windowSeconds}`);
  const labels = labelsToJson({
    windowNs,
    windows: spans.map((s) => ({
      start: s.start,
      end: s.start + BigInt(s.ns),
      class: s.turn.class ?? s.turn.pattern,
    })),
  });
  return {
    labels,
    start,
    end: at,
    *packets() {
      const random = seededRandom(options.seed);
      const builder = new PacketBuilder();
      for (const span of spans) {
        const sends = schedule(span.turn.pattern, span.offset, span.ns, random, constant);
        sends.sort((a, b) => a.t - b.t);
        for (const s of sends) yield builder.build(s, span.start + BigInt(Math.round(s.t)));
      }
    },
  };
}

/** Writes the generated packets as a pcap (or pcapng) file of raw IPv4 with ns timestamps. */
export function writeTraffic(
  path: string,
  traffic: GeneratedTraffic,
  format: 'pcap' | 'pcapng' = 'pcap',
): Promise<number> {
  return writeCapture(path, traffic.packets(), { format, link: LinkType.IPV4, nanosecond: true });
}

/** The packets of one turn lasting `ns`, which starts `offset` ns after the traffic's start. */
function schedule(
  pattern: PatternName,
  offset: number,
  ns: number,
  random: Random,
  constant: ConstantPattern,
): Send[] {
  const out: Send[] = [];
  const uniform = (lo: number, hi: number) => lo + random() * (hi - lo);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const push = (s: Send) => {
    if (s.t >= 0 && s.t < ns) out.push(s);
  };
  const udp = (t: number, src: number, dst: number, srcPort: number, dstPort: number, payload: number) =>
    push({ t, protocol: 17, src, dst, srcPort, dstPort, payload, seq: 0, ack: 0, flags: 0 });
  const tcp = (
    t: number,
    src: number,
    dst: number,
    ports: [number, number],
    seq: number,
    ack: number,
    payload: number,
  ) =>
    push({
      t,
      protocol: 6,
      src,
      dst,
      srcPort: ports[0],
      dstPort: ports[1],
      payload,
      seq,
      ack,
      flags: TcpFlags.ACK | (payload > 0 ? TcpFlags.PSH : 0),
    });
  switch (pattern) {
    case 'silence':
      break;
    case 'constant': {
      // Slot k is at k/rate seconds from the traffic's start, whichever turn it falls in.
      const slot = (k: number) => Math.round((k * 1e9) / constant.packetsPerSecond);
      const payload = constant.packetBytes - IPV4_HEADER_LENGTH - UDP_HEADER_LENGTH;
      let k = Math.floor((offset * constant.packetsPerSecond) / 1e9);
      while (slot(k) < offset) k++;
      for (; slot(k) < offset + ns; k++) udp(slot(k) - offset, CLIENT, CONSTANT_PEER, 40001, 5000, payload);
      break;
    }
    case 'voip': {
      // RTP header 12 + 160 bytes of G.711: 200 bytes with UDP and IP headers.
      const payload = 200 - IPV4_HEADER_LENGTH - UDP_HEADER_LENGTH;
      for (const [src, dst, srcPort, dstPort] of [
        [CLIENT, VOIP_PEER, 40000, 5004],
        [VOIP_PEER, CLIENT, 5004, 40000],
      ] as const) {
        const phase = uniform(0, 20 * MS);
        for (let k = 0; phase + k * 20 * MS < ns; k++)
          udp(phase + k * 20 * MS + uniform(-MS, MS), src, dst, srcPort, dstPort, payload);
      }
      break;
    }
    case 'web': {
      let t = uniform(0, 100 * MS);
      let clientPort = 49152 + int(0, 9999);
      while (t < ns) {
        const ports: [number, number] = [clientPort, 443];
        const back: [number, number] = [443, clientPort];
        let clientSeq = int(0, 2 ** 31);
        let serverSeq = int(0, 2 ** 31);
        const request = int(300, 800) - IPV4_HEADER_LENGTH - TCP_HEADER_LENGTH;
        tcp(t, CLIENT, WEB_SERVER, ports, clientSeq, serverSeq, request);
        clientSeq += request;
        t += uniform(20 * MS, 60 * MS);
        const segments = int(3, 80);
        const spacing = (MTU * 8 * 1e9) / 100e6; // 120 µs at 100 Mbit/s
        for (let s = 0; s < segments; s++) {
          const payload = s === segments - 1 ? int(100, TCP_MSS) : TCP_MSS;
          tcp(t, WEB_SERVER, CLIENT, back, serverSeq, clientSeq, payload);
          serverSeq += payload;
          if (s % 2 === 1 || s === segments - 1)
            tcp(t + 50_000, CLIENT, WEB_SERVER, ports, clientSeq, serverSeq, 0);
          t += spacing;
        }
        t += uniform(100 * MS, 700 * MS);
        clientPort = clientPort === 65535 ? 49152 : clientPort + 1;
      }
      break;
    }
    case 'bulk': {
      const interval = (MTU * 8 * 1e9) / 20e6; // 600 µs at 20 Mbit/s
      let serverSeq = int(0, 2 ** 31);
      const clientSeq = int(0, 2 ** 31);
      for (let k = 0; k * interval < ns; k++) {
        const t = k * interval + uniform(-0.05 * MS, 0.05 * MS);
        tcp(t, BULK_SERVER, CLIENT, [443, 50000], serverSeq, clientSeq, TCP_MSS);
        serverSeq += TCP_MSS;
        if (k % 2 === 1) tcp(t + 30_000, CLIENT, BULK_SERVER, [50000, 443], clientSeq, serverSeq, 0);
      }
      break;
    }
    default:
      throw new Error(`unknown traffic pattern '${pattern as string}' (voip, web, bulk, silence, constant)`);
  }
  return out;
}

/** Builds each packet into one reused buffer; IP IDs count per source host. */
class PacketBuilder {
  private readonly buf = Buffer.alloc(MTU);
  private readonly ipIds = new Map<number, number>();
  private serial = 0;

  build(s: Send, ts: bigint): Packet {
    const buf = this.buf;
    const transportLength = (s.protocol === 17 ? UDP_HEADER_LENGTH : TCP_HEADER_LENGTH) + s.payload;
    const total = IPV4_HEADER_LENGTH + transportLength;
    const id = this.ipIds.get(s.src) ?? 0;
    this.ipIds.set(s.src, (id + 1) & 0xffff);
    new Ipv4Repr({
      id,
      flags: 0b010, // DF, as hosts send
      ttl: 64,
      protocol: s.protocol,
      src: s.src,
      dst: s.dst,
      payloadLength: transportLength,
    }).encodeInto(buf, 0);
    const off = IPV4_HEADER_LENGTH;
    const payloadOff = off + transportLength - s.payload;
    buf.fill(0, payloadOff, total);
    // A serial number in the payload keeps every packet distinct, as real payloads are.
    if (s.payload >= 4) buf.writeUInt32BE(this.serial++ >>> 0, payloadOff);
    const pseudo = ipv4PseudoHeaderSum(buf, 0, s.protocol, transportLength);
    if (s.protocol === 17)
      new UdpRepr({ srcPort: s.srcPort, dstPort: s.dstPort, payloadLength: s.payload }).encodeInto(
        buf,
        off,
        pseudo,
      );
    else
      new TcpRepr({
        srcPort: s.srcPort,
        dstPort: s.dstPort,
        seq: s.seq >>> 0,
        ack: s.ack >>> 0,
        flags: s.flags,
        window: 64240,
        urgent: 0,
        payloadLength: s.payload,
      }).encodeInto(buf, off, pseudo);
    return { data: buf.subarray(0, total), ts, link: LinkType.IPV4 };
  }
}
