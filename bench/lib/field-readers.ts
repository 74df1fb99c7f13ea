/**
 * The work a decode benchmark times: decode one frame and read every header field the decoder offers,
 * folding each into a number the caller keeps (so the JIT cannot drop any read). Both sides read the
 * same fields: Ethernet addresses and type, the twelve IPv4 header fields, the eight TCP fixed-header
 * fields (with the header length) or the four UDP fields. Neither walks TCP options.
 *
 * The sums are returned as int32 (`| 0`, wrapping): a double returned from a call that is not inlined
 * is boxed on the heap, and the harness must not add an allocation per frame to either side.
 */
import type { PacketParser } from '../../src/codec/parser.js';
import { Layer } from '../../src/codec/registry.js';
import { LinkType } from '../../src/packet.js';
import type { CapDecoders } from './cap-decoders.js';

/** A MAC address at b[o] as one number (what a caller keying a table by MAC would compute). */
function macNumber(b: Buffer, o: number): number {
  return (
    ((b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!) * 0x1000000 +
    ((b[o + 3]! << 16) | (b[o + 4]! << 8) | b[o + 5]!)
  );
}

/** Decodes `frame` with pktveil's parser and sums every header field into the returned number. */
export function readFieldsPktveil(parser: PacketParser, frame: Buffer): number {
  const layers = parser.parse(frame, LinkType.ETHERNET);
  if (layers === 0) return -1;
  const eth = parser.eth;
  let sink = macNumber(eth.buf, eth.dst) + macNumber(eth.buf, eth.src) + eth.etherType + eth.vlanCount;
  if (layers < 2 || parser.layers[1] !== Layer.ipv4) return sink | 0;
  const ip = parser.ipv4;
  sink +=
    ip.ihl +
    ip.dscp +
    ip.ecn +
    ip.totalLength +
    ip.id +
    ip.flags +
    ip.fragOffset +
    ip.ttl +
    ip.protocol +
    ip.checksum +
    ip.src +
    ip.dst;
  if (layers < 3) return sink | 0;
  const transport = parser.layers[2];
  if (transport === Layer.tcp) {
    const t = parser.tcp;
    sink += t.srcPort + t.dstPort + t.seq + t.ack + t.dataOffset + t.flags + t.window + t.checksum + t.urgent;
  } else if (transport === Layer.udp) {
    const u = parser.udp;
    sink += u.srcPort + u.dstPort + u.length + u.checksum;
  }
  return sink | 0;
}

/**
 * Decodes `frame` with cap's decoders the way their README chains them (Ethernet → IPV4 → TCP/UDP by
 * type and protocol) and sums every field they return; addresses come back as text, so their lengths.
 */
export function readFieldsCap(decoders: CapDecoders, frame: Buffer): number {
  const eth = decoders.Ethernet(frame);
  const ei = eth.info;
  let sink = ei.dstmac.length + ei.srcmac.length + (ei.type ?? 0) + (ei.vlan ? ei.vlan.VID : 0);
  if (ei.type !== 0x0800) return sink | 0;
  const ip = decoders.IPV4(frame, eth.offset);
  const ii = ip.info;
  sink +=
    ii.hdrlen +
    ii.dscp +
    ii.ecn +
    ii.totallen +
    ii.id +
    ii.flags +
    ii.fragoffset +
    ii.ttl +
    ii.protocol +
    ii.hdrchecksum +
    ii.srcaddr.length +
    ii.dstaddr.length;
  if (ii.protocol === 6) {
    const t = decoders.TCP(frame, ip.offset);
    const ti = t.info;
    sink +=
      ti.srcport +
      ti.dstport +
      ti.seqno +
      (ti.ackno ?? 0) +
      t.hdrlen +
      ti.flags +
      ti.window +
      ti.checksum +
      (ti.urgentptr ?? 0);
  } else if (ii.protocol === 17) {
    const u = decoders.UDP(frame, ip.offset);
    const ui = u.info;
    sink += ui.srcport + ui.dstport + ui.length + ui.checksum;
  }
  return sink | 0;
}
