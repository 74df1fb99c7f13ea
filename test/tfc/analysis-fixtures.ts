/**
 * Hand-built frames for the traffic-analysis tests: raw IPv4 packets carrying UDP, TCP, ESP, NAT-T ESP,
 * the anonymity layer or a fragment, IPv6 UDP, Ethernet framing and ARP, each encoded with the project's
 * codecs into a junk-filled buffer, plus capture files of them.
 */
import { ANON_SEALED_HEADER_LENGTH, ANON_TAG_LENGTH, AnonRepr } from '../../src/codec/anon.js';
import { ipv4PseudoHeaderSum, ipv6PseudoHeaderSum } from '../../src/codec/checksum.js';
import { EspRepr } from '../../src/codec/esp.js';
import { EthernetRepr } from '../../src/codec/ethernet.js';
import { Ipv4Repr, parseIpv4 } from '../../src/codec/ipv4.js';
import { Ipv6Repr } from '../../src/codec/ipv6.js';
import { TcpFlags, TcpRepr } from '../../src/codec/tcp.js';
import { UdpRepr } from '../../src/codec/udp.js';
import { writeCapture } from '../../src/io/capture-file.js';
import { LinkType, type Packet } from '../../src/packet.js';
import { junk } from '../helpers/bytes.js';

export interface Ipv4Options {
  src?: string;
  dst?: string;
  ttl?: number;
  id?: number;
}

/** A raw IPv4 packet around `upper` bytes written by `write(buf, offset)` (after the 20-byte header). */
function ipv4(
  o: Ipv4Options,
  protocol: number,
  upperLength: number,
  write: (buf: Buffer, off: number) => void,
  fragment: { flags: number; fragOffset: number } = { flags: 0b010, fragOffset: 0 },
): Buffer {
  const buf = junk(20 + upperLength);
  new Ipv4Repr({
    id: o.id ?? 1,
    flags: fragment.flags,
    fragOffset: fragment.fragOffset,
    ttl: o.ttl ?? 64,
    protocol,
    src: parseIpv4(o.src ?? '198.18.0.1'),
    dst: parseIpv4(o.dst ?? '198.18.0.2'),
    payloadLength: upperLength,
  }).encodeInto(buf, 0);
  write(buf, 20);
  return buf;
}

/** Payload bytes that differ per `tag`, so packets with the same headers still differ. */
function fillPayload(buf: Buffer, off: number, length: number, tag: number): void {
  for (let i = 0; i < length; i++) buf[off + i] = (tag * 31 + i) & 0xff;
}

export interface UdpOptions extends Ipv4Options {
  srcPort?: number;
  dstPort?: number;
  /** Payload bytes (default 0). */
  payload?: number;
  tag?: number;
}

/** Raw IPv4 + UDP: 28 + payload bytes. */
export function udp4(o: UdpOptions = {}): Buffer {
  const payload = o.payload ?? 0;
  return ipv4(o, 17, 8 + payload, (buf, off) => {
    fillPayload(buf, off + 8, payload, o.tag ?? 0);
    new UdpRepr({
      srcPort: o.srcPort ?? 40000,
      dstPort: o.dstPort ?? 5004,
      payloadLength: payload,
    }).encodeInto(buf, off, ipv4PseudoHeaderSum(buf, 0, 17, 8 + payload));
  });
}

/** Raw IPv4 + TCP (no options): 40 + payload bytes. */
export function tcp4(o: UdpOptions & { seq?: number } = {}): Buffer {
  const payload = o.payload ?? 0;
  return ipv4(o, 6, 20 + payload, (buf, off) => {
    fillPayload(buf, off + 20, payload, o.tag ?? 0);
    new TcpRepr({
      srcPort: o.srcPort ?? 40000,
      dstPort: o.dstPort ?? 443,
      seq: o.seq ?? 1,
      ack: 1,
      flags: TcpFlags.ACK,
      window: 1024,
      urgent: 0,
      payloadLength: payload,
    }).encodeInto(buf, off, ipv4PseudoHeaderSum(buf, 0, 6, 20 + payload));
  });
}

/** Raw IPv4 + ESP header + `payload` opaque bytes: 28 + payload bytes. */
export function esp4(o: Ipv4Options & { spi: number; seq?: number; payload?: number }): Buffer {
  const payload = o.payload ?? 16;
  return ipv4(o, 50, 8 + payload, (buf, off) => {
    new EspRepr({ spi: o.spi, seq: o.seq ?? 1, payloadLength: payload }).encodeInto(buf, off);
    fillPayload(buf, off + 8, payload, o.seq ?? 1);
  });
}

/** Raw IPv4 + UDP 4500 + ESP (RFC 3948): 36 + payload bytes. */
export function nattEsp4(o: Ipv4Options & { spi: number; srcPort?: number; payload?: number }): Buffer {
  const payload = o.payload ?? 16;
  return ipv4(o, 17, 16 + payload, (buf, off) => {
    new EspRepr({ spi: o.spi, seq: 1, payloadLength: payload }).encodeInto(buf, off + 8);
    fillPayload(buf, off + 16, payload, 1);
    new UdpRepr({ srcPort: o.srcPort ?? 4500, dstPort: 4500, payloadLength: 8 + payload }).encodeInto(
      buf,
      off,
      ipv4PseudoHeaderSum(buf, 0, 17, 16 + payload),
    );
  });
}

/** Raw IPv4 + anonymity layer (protocol 253) with the given current SID: 20 + 16 + 25 + transport bytes. */
export function anon4(o: Ipv4Options & { sid: bigint; transport?: number }): Buffer {
  const payload = ANON_SEALED_HEADER_LENGTH + (o.transport ?? 0) + ANON_TAG_LENGTH;
  return ipv4(o, 253, 16 + payload, (buf, off) => {
    new AnonRepr({ currentSid: o.sid, sequence: 1n, payloadLength: payload }).encodeInto(buf, off);
    fillPayload(buf, off + 16, payload, 2);
  });
}

/** A non-first IPv4 fragment of a UDP datagram: no UDP header visible; 20 + bytes. */
export function udpFragment4(o: Ipv4Options & { bytes: number; fragOffset: number }): Buffer {
  return ipv4(o, 17, o.bytes, (buf, off) => fillPayload(buf, off, o.bytes, 3), {
    flags: 0,
    fragOffset: o.fragOffset,
  });
}

/** Raw IPv6 + UDP: 48 + payload bytes. */
export function udp6(o: {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: number;
}): Buffer {
  const buf = junk(48 + o.payload);
  new Ipv6Repr({
    nextHeader: 17,
    hopLimit: 64,
    src: o.src,
    dst: o.dst,
    payloadLength: 8 + o.payload,
  }).encodeInto(buf, 0);
  fillPayload(buf, 48, o.payload, 4);
  new UdpRepr({ srcPort: o.srcPort, dstPort: o.dstPort, payloadLength: o.payload }).encodeInto(
    buf,
    40,
    ipv6PseudoHeaderSum(buf, 0, 17, 8 + o.payload),
  );
  return buf;
}

/** `ip` behind a 14-byte Ethernet header. */
export function ether(ip: Buffer, etherType = 0x0800): Buffer {
  const buf = junk(14 + ip.length);
  new EthernetRepr({ dst: '02:00:00:00:00:02', src: '02:00:00:00:00:01', vlan: [], etherType }).encodeInto(
    buf,
    0,
  );
  ip.copy(buf, 14);
  return buf;
}

/** An Ethernet ARP request (42 bytes). */
export function arpFrame(): Buffer {
  const arp = Buffer.from('0001080006040001020000000001c6120001000000000000c6120002', 'hex');
  return ether(arp, 0x0806);
}

export function packet(data: Buffer, ts: bigint, link: number = LinkType.IPV4): Packet {
  return { data, ts, link };
}

/** Writes packets (one link type) as a ns pcap file. */
export function writePcap(path: string, packets: Packet[], link: number = LinkType.IPV4): Promise<number> {
  return writeCapture(path, packets, { format: 'pcap', link, nanosecond: true });
}

/** Seconds since the epoch as ns, plus `ms` milliseconds: the base time of the hand-built traces. */
export const T0 = 1_700_000_000_000_000_000n;
export function at(ms: number): bigint {
  return T0 + BigInt(Math.round(ms * 1e6));
}
