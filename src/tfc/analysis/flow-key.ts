/**
 * What identifies a flow to an observer of the wire, read from a parsed frame into 13 uint32 words
 * (no allocation per packet):
 *
 * - IP: source and destination address and the protocol, plus what the next header shows in clear:
 *   ports for TCP and UDP; the SPI for ESP (after the ports for NAT-T ESP in UDP 4500); the current
 *   session ID for the anonymity layer. An IP fragment other than the first shows no ports, so it keys
 *   on addresses and protocol alone, as an observer without reassembly sees it.
 * - Other link-layer protocols (ARP, …): one flow per EtherType.
 * - Frames that did not decode as far as a network header: one flow.
 *
 * Flows are directional: the two directions of a conversation are two flows.
 */
import { ipv4String, ipv6String } from '../../codec/ip-address.js';
import type { PacketParser } from '../../codec/parser.js';
import { Layer } from '../../codec/registry.js';

export const FLOW_KEY_WORDS = 13;

/** Network kind in the low byte of word 0. */
const Network = { other: 0, ipv4: 4, ipv6: 6, undecoded: 255 } as const;
/** Which optional fields a key carries (bits 16+ of word 0). */
const HAS_PORTS = 1 << 16;
const HAS_SPI = 1 << 17;
const HAS_SID = 1 << 18;

const W_SRC = 1;
const W_DST = 5;
const W_PORTS = 9;
const W_SPI = 10;
const W_SID_HI = 11;
const W_SID_LO = 12;

/** Writes the flow key of the parser's last frame into `key` (FLOW_KEY_WORDS words). */
export function readFlowKey(p: PacketParser, key: Uint32Array): void {
  key.fill(0);
  let i = 0;
  let network = -1;
  for (; i < p.layerCount; i++) {
    const layer = p.layers[i];
    if (layer === Layer.ipv4 || layer === Layer.ipv6) {
      network = layer;
      break;
    }
  }
  if (network === -1) {
    readLinkKey(p, key);
    return;
  }
  let word0: number;
  if (network === Layer.ipv4) {
    const ip = p.ipv4;
    word0 = Network.ipv4 | (ip.protocol << 8);
    key[W_SRC] = ip.src;
    key[W_DST] = ip.dst;
  } else {
    const ip = p.ipv6;
    word0 = Network.ipv6 | (ip.upperProtocol << 8);
    const buf = ip.buf;
    for (let w = 0; w < 4; w++) {
      key[W_SRC + w] = buf.readUInt32BE(ip.src + 4 * w);
      key[W_DST + w] = buf.readUInt32BE(ip.dst + 4 * w);
    }
  }
  for (i++; i < p.layerCount; i++) {
    switch (p.layers[i]) {
      case Layer.tcp:
        word0 |= HAS_PORTS;
        key[W_PORTS] = ((p.tcp.srcPort << 16) | p.tcp.dstPort) >>> 0;
        break;
      case Layer.udp:
        word0 |= HAS_PORTS;
        key[W_PORTS] = ((p.udp.srcPort << 16) | p.udp.dstPort) >>> 0;
        break;
      case Layer.esp:
        word0 |= HAS_SPI;
        key[W_SPI] = p.esp.spi;
        break;
      case Layer.anon:
        word0 |= HAS_SID;
        key[W_SID_HI] = p.anon.sidHi;
        key[W_SID_LO] = p.anon.sidLo;
        break;
    }
  }
  key[0] = word0 >>> 0;
}

function readLinkKey(p: PacketParser, key: Uint32Array): void {
  if (p.layerCount === 0) {
    key[0] = Network.undecoded;
    return;
  }
  key[0] = Network.other;
  switch (p.layers[0]) {
    case Layer.eth:
      key[W_SRC] = p.eth.etherType;
      break;
    case Layer.sll:
      key[W_SRC] = p.sll.protocol;
      break;
    case Layer.sll2:
      key[W_SRC] = p.sll2.protocol;
      break;
  }
}

/** A flow key in words, for reports (slow path: allocates). */
export interface FlowIdentity {
  network: 'ipv4' | 'ipv6' | 'other' | 'undecoded';
  src?: string;
  dst?: string;
  protocol?: number;
  srcPort?: number;
  dstPort?: number;
  /** ESP SPI as 0x-prefixed hex (8 digits), as in SA files. */
  spi?: string;
  /** Anonymity-layer current session ID as 16 hex digits, as in inspect's JSON. */
  sid?: string;
  /** Non-IP frames: the EtherType (or Linux cooked protocol). */
  etherType?: number;
}

export function describeFlowKey(key: Uint32Array, at = 0): FlowIdentity {
  const word0 = key[at]!;
  const kind = word0 & 0xff;
  if (kind === Network.undecoded) return { network: 'undecoded' };
  if (kind === Network.other) return { network: 'other', etherType: key[at + W_SRC]! };
  const out: FlowIdentity =
    kind === Network.ipv4
      ? { network: 'ipv4', src: ipv4String(key[at + W_SRC]!), dst: ipv4String(key[at + W_DST]!) }
      : { network: 'ipv6', src: ipv6Text(key, at + W_SRC), dst: ipv6Text(key, at + W_DST) };
  out.protocol = (word0 >>> 8) & 0xff;
  if (word0 & HAS_PORTS) {
    out.srcPort = key[at + W_PORTS]! >>> 16;
    out.dstPort = key[at + W_PORTS]! & 0xffff;
  }
  if (word0 & HAS_SPI) out.spi = `0x${key[at + W_SPI]!.toString(16).padStart(8, '0')}`;
  if (word0 & HAS_SID)
    out.sid =
      key[at + W_SID_HI]!.toString(16).padStart(8, '0') + key[at + W_SID_LO]!.toString(16).padStart(8, '0');
  return out;
}

function ipv6Text(key: Uint32Array, at: number): string {
  const bytes = Buffer.alloc(16);
  for (let w = 0; w < 4; w++) bytes.writeUInt32BE(key[at + w]!, 4 * w);
  return ipv6String(bytes, 0);
}
