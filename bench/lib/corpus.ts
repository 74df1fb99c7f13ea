/**
 * A corpus of realistic Ethernet/IPv4/TCP and Ethernet/IPv4/UDP frames, 60–1514 bytes, with correct
 * IPv4, TCP and UDP checksums. Built by hand from the RFC layouts (not with pktveil's encoders) so the
 * decoders under test read bytes they had no part in writing. Deterministic: the same seed gives the
 * same frames on every machine.
 *
 * The mix follows what a busy link carries: many bare ACKs (with timestamps, some with SACK blocks),
 * full-MSS segments, handshakes with the usual SYN options, some odd-sized data, and UDP from DNS-sized
 * to QUIC-sized datagrams, with frames shorter than 60 bytes padded as Ethernet requires.
 */
import { foldChecksum, internetChecksum, ipv4PseudoHeaderSum, onesSum } from '../../src/codec/checksum.js';
import { seededRandom } from '../../src/tfc/random.js';

/** Mulberry32 (one implementation, in src/tfc/random.ts), so corpora are the same everywhere. */
export { seededRandom };

export const ETH_LENGTH = 14;
export const IPV4_LENGTH = 20;
export const UDP_LENGTH = 8;
/** The shortest Ethernet frame without its FCS; shorter ones are padded with zeros. */
export const MIN_FRAME = 60;
/** The longest untagged Ethernet frame without its FCS at a 1500-byte MTU. */
export const MAX_FRAME = 1514;

export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

export interface Ipv4Fields {
  src: number;
  dst: number;
  id: number;
  ttl: number;
  dscp: number;
  ecn: number;
  dontFragment: boolean;
}

export interface TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgent: number;
  /** Options bytes; their length must be a multiple of 4 (pad with NOP/EOL). */
  options: Uint8Array;
}

export interface UdpFields {
  srcPort: number;
  dstPort: number;
}

function writeEthernet(frame: Buffer, dstMac: Uint8Array, srcMac: Uint8Array): void {
  frame.set(dstMac, 0);
  frame.set(srcMac, 6);
  frame.writeUInt16BE(0x0800, 12);
}

/** Writes an IPv4 header without options at frame[14] with its checksum. */
function writeIpv4(frame: Buffer, ip: Ipv4Fields, protocol: number, totalLength: number): void {
  const o = ETH_LENGTH;
  frame[o] = 0x45;
  frame[o + 1] = (ip.dscp << 2) | ip.ecn;
  frame.writeUInt16BE(totalLength, o + 2);
  frame.writeUInt16BE(ip.id, o + 4);
  frame.writeUInt16BE(ip.dontFragment ? 0x4000 : 0, o + 6);
  frame[o + 8] = ip.ttl;
  frame[o + 9] = protocol;
  frame.writeUInt16BE(0, o + 10);
  frame.writeUInt32BE(ip.src >>> 0, o + 12);
  frame.writeUInt32BE(ip.dst >>> 0, o + 16);
  frame.writeUInt16BE(internetChecksum(frame, o, IPV4_LENGTH), o + 10);
}

/** An Ethernet/IPv4/TCP frame carrying `payload`, padded to 60 bytes when shorter. */
export function tcpFrame(
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  ip: Ipv4Fields,
  tcp: TcpFields,
  payload: Uint8Array,
): Buffer {
  if (tcp.options.length % 4 !== 0 || tcp.options.length > 40)
    throw new Error(`TCP options must be a multiple of 4 bytes, at most 40 (got ${tcp.options.length})`);
  const tcpLength = 20 + tcp.options.length + payload.length;
  const ipLength = IPV4_LENGTH + tcpLength;
  const frame = Buffer.alloc(Math.max(MIN_FRAME, ETH_LENGTH + ipLength));
  writeEthernet(frame, dstMac, srcMac);
  writeIpv4(frame, ip, 6, ipLength);
  const t = ETH_LENGTH + IPV4_LENGTH;
  frame.writeUInt16BE(tcp.srcPort, t);
  frame.writeUInt16BE(tcp.dstPort, t + 2);
  frame.writeUInt32BE(tcp.seq >>> 0, t + 4);
  frame.writeUInt32BE(tcp.ack >>> 0, t + 8);
  frame.writeUInt16BE((((20 + tcp.options.length) / 4) << 12) | tcp.flags, t + 12);
  frame.writeUInt16BE(tcp.window, t + 14);
  frame.writeUInt16BE(0, t + 16);
  frame.writeUInt16BE(tcp.urgent, t + 18);
  frame.set(tcp.options, t + 20);
  frame.set(payload, t + 20 + tcp.options.length);
  const sum = onesSum(frame, t, tcpLength, ipv4PseudoHeaderSum(frame, ETH_LENGTH, 6, tcpLength));
  frame.writeUInt16BE(foldChecksum(sum), t + 16);
  return frame;
}

/** An Ethernet/IPv4/UDP frame carrying `payload`, padded to 60 bytes when shorter. */
export function udpFrame(
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  ip: Ipv4Fields,
  udp: UdpFields,
  payload: Uint8Array,
): Buffer {
  const udpLength = UDP_LENGTH + payload.length;
  const ipLength = IPV4_LENGTH + udpLength;
  const frame = Buffer.alloc(Math.max(MIN_FRAME, ETH_LENGTH + ipLength));
  writeEthernet(frame, dstMac, srcMac);
  writeIpv4(frame, ip, 17, ipLength);
  const u = ETH_LENGTH + IPV4_LENGTH;
  frame.writeUInt16BE(udp.srcPort, u);
  frame.writeUInt16BE(udp.dstPort, u + 2);
  frame.writeUInt16BE(udpLength, u + 4);
  frame.writeUInt16BE(0, u + 6);
  frame.set(payload, u + UDP_LENGTH);
  const sum = onesSum(frame, u, udpLength, ipv4PseudoHeaderSum(frame, ETH_LENGTH, 17, udpLength));
  // RFC 768: a computed 0 is sent as all ones (0 means "no checksum").
  frame.writeUInt16BE(foldChecksum(sum) || 0xffff, u + 6);
  return frame;
}

/** Option kinds (RFC 9293, 7323, 2018). */
const NOP = 1;
const MSS = 2;
const WSCALE = 3;
const SACK_OK = 4;
const SACK = 5;
const TIMESTAMP = 8;

/** What Linux puts on a SYN: MSS, SACK permitted, timestamps, NOP, window scale (20 bytes). */
function synOptions(tsVal: number, tsEcr: number, wscale: number): Buffer {
  const o = Buffer.alloc(20);
  o.set([MSS, 4, 0x05, 0xb4, SACK_OK, 2, TIMESTAMP, 10], 0);
  o.writeUInt32BE(tsVal >>> 0, 8);
  o.writeUInt32BE(tsEcr >>> 0, 12);
  o.set([NOP, WSCALE, 3, wscale], 16);
  return o;
}

/** NOP, NOP, timestamps, then optional SACK blocks (NOP, NOP, kind, length, edges): 12 to 40 bytes. */
function ackOptions(tsVal: number, tsEcr: number, sackBlocks: [number, number][]): Buffer {
  const o = Buffer.alloc(12 + (sackBlocks.length > 0 ? 4 + 8 * sackBlocks.length : 0));
  o.set([NOP, NOP, TIMESTAMP, 10], 0);
  o.writeUInt32BE(tsVal >>> 0, 4);
  o.writeUInt32BE(tsEcr >>> 0, 8);
  if (sackBlocks.length > 0) {
    o.set([NOP, NOP, SACK, 2 + 8 * sackBlocks.length], 12);
    sackBlocks.forEach(([left, right], i) => {
      o.writeUInt32BE(left >>> 0, 16 + 8 * i);
      o.writeUInt32BE(right >>> 0, 20 + 8 * i);
    });
  }
  return o;
}

export interface Corpus {
  frames: Buffer[];
  /** Sum of frame lengths. */
  bytes: number;
  tcp: number;
  udp: number;
}

/**
 * `count` frames, about three quarters TCP. Every frame is a complete Ethernet/IPv4/{TCP,UDP} frame
 * between 60 and 1514 bytes.
 */
export function buildCorpus(count = 1024, seed = 0x5eed): Corpus {
  const random = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const u32 = () => Math.floor(random() * 2 ** 32);
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(0, 255);
    return b;
  };
  const hostMac = Buffer.from([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
  const routerMac = Buffer.from([0x02, 0x00, 0x5e, 0x10, 0x00, 0xfe]);
  // 198.18.0.0/15 (RFC 2544 benchmarking range) for every address.
  const address = () => (0xc6120000 | int(0, 0x1ffff)) >>> 0;
  const ipFields = (): Ipv4Fields => ({
    src: address(),
    dst: address(),
    id: int(0, 0xffff),
    ttl: [64, 128, 255, 57, 113][int(0, 4)]!,
    dscp: random() < 0.8 ? 0 : [10, 18, 34, 46][int(0, 3)]!,
    ecn: random() < 0.85 ? 0 : int(1, 3),
    dontFragment: true,
  });
  const mss = 1448;

  const frames: Buffer[] = [];
  let tcp = 0;
  let udp = 0;
  for (let i = 0; i < count; i++) {
    const outbound = random() < 0.5;
    const [dstMac, srcMac] = outbound ? [routerMac, hostMac] : [hostMac, routerMac];
    const roll = random();
    if (roll < 0.75) {
      tcp++;
      const ip = ipFields();
      const fields: TcpFields = {
        srcPort: outbound ? int(32768, 60999) : [443, 80, 22, 993][int(0, 3)]!,
        dstPort: outbound ? [443, 80, 22, 993][int(0, 3)]! : int(32768, 60999),
        seq: u32(),
        ack: u32(),
        flags: TcpFlag.ACK,
        window: int(200, 0xffff),
        urgent: 0,
        options: ackOptions(u32(), u32(), []),
      };
      let payload = 0;
      const kind = roll / 0.75;
      if (kind < 0.36) {
        // Bare ACK; one in five carries SACK blocks after a loss.
        if (random() < 0.2) {
          const blocks: [number, number][] = [];
          for (let b = int(1, 3); b > 0; b--) blocks.push([u32(), u32()]);
          fields.options = ackOptions(u32(), u32(), blocks);
        }
      } else if (kind < 0.42) {
        fields.flags = random() < 0.5 ? TcpFlag.SYN : TcpFlag.SYN | TcpFlag.ACK;
        if (fields.flags === TcpFlag.SYN) fields.ack = 0;
        fields.window = fields.flags === TcpFlag.SYN ? 64240 : 65160;
        fields.options = synOptions(u32(), fields.flags === TcpFlag.SYN ? 0 : u32(), 7);
      } else if (kind < 0.46) {
        // RST without options: a 54-byte frame padded to 60.
        fields.flags = TcpFlag.RST | (random() < 0.5 ? TcpFlag.ACK : 0);
        fields.window = 0;
        fields.options = Buffer.alloc(0);
      } else if (kind < 0.5) {
        fields.flags = TcpFlag.FIN | TcpFlag.ACK;
      } else if (kind < 0.85) {
        fields.flags = TcpFlag.ACK | (random() < 0.3 ? TcpFlag.PSH : 0);
        payload = mss;
      } else {
        fields.flags = TcpFlag.ACK | TcpFlag.PSH;
        payload = int(1, mss);
        if (random() < 0.02) {
          fields.flags |= TcpFlag.URG;
          fields.urgent = int(1, payload);
        }
      }
      frames.push(tcpFrame(dstMac, srcMac, ip, fields, bytes(payload)));
    } else {
      udp++;
      const ip = ipFields();
      ip.dontFragment = random() < 0.5;
      const kind = random();
      let port: number;
      let payload: number;
      if (kind < 0.3) {
        port = 53;
        payload = int(17, 60);
      } else if (kind < 0.5) {
        port = 53;
        payload = int(60, 480);
      } else if (kind < 0.85) {
        // QUIC: 1200-byte minimum Initial, then packets up to the path MTU.
        port = 443;
        payload = int(1200, 1472);
      } else if (kind < 0.95) {
        port = 123;
        payload = 48;
      } else {
        // No 4500 here: NAT-T would add an ESP layer that the baseline does not decode.
        port = [5353, 3478, 1194, 51820][int(0, 3)]!;
        payload = int(1, 1472);
      }
      const ephemeral = int(32768, 60999);
      const fields: UdpFields = outbound
        ? { srcPort: ephemeral, dstPort: port }
        : { srcPort: port, dstPort: ephemeral };
      frames.push(udpFrame(dstMac, srcMac, ip, fields, bytes(payload)));
    }
  }
  return { frames, bytes: frames.reduce((n, f) => n + f.length, 0), tcp, udp };
}
