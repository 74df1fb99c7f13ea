import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { setTransportChecksum, writeIpv4Header } from '../../src/anonymity-layer/ipv4-envelope.js';
import { parseIpv4 } from '../../src/codec/ip-address.js';
import { junk } from '../helpers/bytes.js';
import { ICMP, icmpPacket, TCP, tcpPacket, UDP, udpPacket } from './ipv4-packets.js';

/** Rebuilds `packet`'s header around its transport bytes (in a junk buffer) with new addresses. */
function rebuild(packet: Buffer, src: string, dst: string): Buffer {
  const ihl = (packet[0]! & 0x0f) * 4;
  const transport = packet.subarray(ihl);
  const buf = junk(20 + transport.length);
  transport.copy(buf, 20);
  writeIpv4Header(buf, 0, transport.length, packet[9]!, parseIpv4(src), parseIpv4(dst), 0x1234);
  expect(setTransportChecksum(buf, 0)).toBe('ok');
  return buf;
}

describe('writeIpv4Header + setTransportChecksum', () => {
  it('give the packet our codecs build from scratch for the new addresses (TCP, UDP), byte for byte', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 1, max: 65535 }),
        fc.boolean(),
        (payload, a, b, tcp) => {
          const p = Buffer.from(payload);
          const ports = { srcPort: a, dstPort: b, payload: p };
          const before = { src: '198.18.5.7', dst: '198.18.9.2', id: 0x1234, flags: 0 };
          const after = { src: '198.18.9.2', dst: '198.18.99.4', id: 0x1234, flags: 0 };
          const original = tcp ? tcpPacket(before, ports) : udpPacket(before, ports);
          const expected = tcp ? tcpPacket(after, ports) : udpPacket(after, ports);
          expect(rebuild(original, after.src, after.dst).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a UDP checksum of 0 ("none") and leaves ICMP alone', () => {
    const udp = udpPacket(
      { src: '198.18.5.7', dst: '198.18.9.2' },
      { srcPort: 1, dstPort: 2, noChecksum: true },
    );
    expect(rebuild(udp, '198.18.9.2', '198.18.99.1').readUInt16BE(26)).toBe(0);
    const icmp = icmpPacket(
      { src: '198.18.5.7', dst: '198.18.9.2' },
      { type: 8, code: 0, body: Buffer.from('ping') },
    );
    const out = rebuild(icmp, '198.18.9.2', '198.18.99.1');
    expect(out[9]).toBe(ICMP);
    expect(out.subarray(20).equals(icmp.subarray(20))).toBe(true);
  });

  it('refuses TCP and UDP segments shorter than their header', () => {
    for (const [protocol, length] of [
      [TCP, 19],
      [UDP, 7],
    ] as const) {
      const buf = junk(20 + length);
      writeIpv4Header(buf, 0, length, protocol, 1, 2, 0);
      expect(setTransportChecksum(buf, 0)).toBe('truncated');
    }
  });

  it('refuses a packet longer than IPv4 allows', () => {
    expect(() => writeIpv4Header(junk(20), 0, 65_516, UDP, 1, 2, 0)).toThrow(/exceeds 65535/);
  });
});
