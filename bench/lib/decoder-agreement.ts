/**
 * Before anything is timed: every corpus frame must decode fully with pktveil (three layers, no error,
 * every checksum right) and, when cap is there, cap must read the same value for every field. A
 * benchmark of decoders that disagree would compare different work.
 */
import { macString } from '../../src/codec/ethernet.js';
import { ipv4String } from '../../src/codec/ip-address.js';
import type { PacketParser } from '../../src/codec/parser.js';
import { Layer } from '../../src/codec/registry.js';
import { LinkType } from '../../src/packet.js';
import type { CapDecoders } from './cap-decoders.js';

/** Throws naming the first frame and field where something is wrong. */
export function checkDecodersAgree(parser: PacketParser, frames: Buffer[], cap: CapDecoders | null): void {
  frames.forEach((frame, index) => {
    const fail = (what: string): never => {
      throw new Error(`corpus frame ${index} (${frame.length} bytes): ${what}`);
    };
    const layers = parser.parse(frame, LinkType.ETHERNET);
    if (parser.error) fail(`pktveil stopped at ${parser.error.layer}: ${parser.error.detail}`);
    if (layers !== 3) fail(`pktveil decoded ${layers} layers, expected eth/ipv4/tcp|udp`);
    const transport = parser.layers[2];
    if (parser.layers[1] !== Layer.ipv4 || (transport !== Layer.tcp && transport !== Layer.udp))
      fail(`layers ${Array.from(parser.layers.subarray(0, layers)).join(',')} are not eth/ipv4/tcp|udp`);
    if (parser.ipv4.checksumOk() !== true) fail('IPv4 header checksum does not verify');
    if (transport === Layer.tcp && parser.tcpChecksumOk() !== true) fail('TCP checksum does not verify');
    if (transport === Layer.udp && parser.udpChecksumOk() !== true) fail('UDP checksum does not verify');
    if (!cap) return;

    const same = (field: string, ours: unknown, theirs: unknown) => {
      if (ours !== theirs) fail(`${field}: pktveil reads ${String(ours)}, cap reads ${String(theirs)}`);
    };
    const eth = cap.Ethernet(frame);
    same('eth dst', macString(frame, parser.eth.dst), eth.info.dstmac);
    same('eth src', macString(frame, parser.eth.src), eth.info.srcmac);
    same('eth type', parser.eth.etherType, eth.info.type);
    const ip = cap.IPV4(frame, eth.offset);
    const v = parser.ipv4;
    same('ipv4 ihl', v.ihl, ip.info.hdrlen);
    same('ipv4 dscp', v.dscp, ip.info.dscp);
    same('ipv4 ecn', v.ecn, ip.info.ecn);
    same('ipv4 total length', v.totalLength, ip.info.totallen);
    same('ipv4 id', v.id, ip.info.id);
    same('ipv4 flags', v.flags, ip.info.flags);
    same('ipv4 fragment offset', v.fragOffset, ip.info.fragoffset);
    same('ipv4 ttl', v.ttl, ip.info.ttl);
    same('ipv4 protocol', v.protocol, ip.info.protocol);
    same('ipv4 checksum', v.checksum, ip.info.hdrchecksum);
    same('ipv4 src', ipv4String(v.src), ip.info.srcaddr);
    same('ipv4 dst', ipv4String(v.dst), ip.info.dstaddr);
    if (transport === Layer.tcp) {
      const t = cap.TCP(frame, ip.offset);
      const p = parser.tcp;
      same('tcp src port', p.srcPort, t.info.srcport);
      same('tcp dst port', p.dstPort, t.info.dstport);
      same('tcp seq', p.seq, t.info.seqno);
      // cap reports the acknowledgement number and urgent pointer only when their flags say they count.
      same('tcp ack', p.flags & 0x10 ? p.ack : undefined, t.info.ackno);
      same('tcp header length', p.dataOffset * 4, t.hdrlen);
      same('tcp flags', p.flags, t.info.flags);
      same('tcp window', p.window, t.info.window);
      same('tcp checksum', p.checksum, t.info.checksum);
      same('tcp urgent', p.flags & 0x20 ? p.urgent : undefined, t.info.urgentptr);
    } else {
      const u = cap.UDP(frame, ip.offset);
      const p = parser.udp;
      same('udp src port', p.srcPort, u.info.srcport);
      same('udp dst port', p.dstPort, u.info.dstport);
      same('udp payload length', p.payloadLength, u.info.length);
      same('udp checksum', p.checksum, u.info.checksum);
    }
  });
}
