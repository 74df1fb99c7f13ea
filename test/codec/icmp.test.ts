import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv6PseudoHeaderSum } from '../../src/codec/checksum.js';
import {
  echoRest,
  ICMP_HEADER_LENGTH,
  Icmpv4Repr,
  Icmpv4Type,
  Icmpv4View,
  Icmpv6Repr,
  Icmpv6Type,
  Icmpv6View,
} from '../../src/codec/icmp.js';
import { hex, junk } from '../helpers/bytes.js';

// Real frames between two namespaces (veth, tx checksum offload off), captured with tcpdump. The echo
// requests came from the kernel's ICMP datagram ("ping") sockets, the replies and the port unreachable
// from the peer kernel. Readings from `tshark -T fields -e icmp.* / -e icmpv6.*`.
const ETH = 14;
const V4_OFF = 34;
const V6_OFF = 54;

// tshark: icmp.type 8 code 0 checksum 0x88ba [good] ident 60152 (0xeaf8) seq 1, data "pktveil-echo".
const ECHO_REQUEST = hex(`
  4683affda845 62d77952ea02 0800
  4500 0028 ceaf 4000 4001 dffd c6120001 c6120002
  08 00 88ba eaf8 0001 706b7476 65696c2d 6563686f`);
// tshark: icmp.type 0 code 0 checksum 0x90ba [good] ident 60152 seq 1.
const ECHO_REPLY = hex(`
  62d77952ea02 4683affda845 0800
  4500 0028 bcb8 0000 4001 31f5 c6120002 c6120001
  00 00 90ba eaf8 0001 706b7476 65696c2d 6563686f`);
// tshark: icmp.type 3 code 3 (port unreachable) checksum 0x8944 [good]; body = the offending IPv4+UDP.
const PORT_UNREACHABLE = hex(`
  62d77952ea02 4683affda845 0800
  45c0 003e bcb9 0000 4001 311e c6120002 c6120001
  03 03 8944 00000000
  4500 0022 d5a4 4000 4011 d8fe c6120001 c6120002 9b25 0009 000e a037 636c6f736564`);
// tshark: icmpv6.type 128 code 0 checksum 0x7ef4 [good] echo.identifier 0xeaf9 sequence 1.
const ECHO6_REQUEST = hex(`
  4683affda845 62d77952ea02 86dd
  6002fd79 0015 3a 40 20010db8000000000000000000000001 20010db8000000000000000000000002
  80 00 7ef4 eaf9 0001 706b7476 65696c2d 6563686f 36`);
// tshark: icmpv6.type 129 code 0 checksum 0x7df4 [good].
const ECHO6_REPLY = hex(`
  62d77952ea02 4683affda845 86dd
  600abe14 0015 3a 40 20010db8000000000000000000000002 20010db8000000000000000000000001
  81 00 7df4 eaf9 0001 706b7476 65696c2d 6563686f 36`);
// tshark: icmpv6.type 136 (neighbour advertisement) code 0 checksum 0xedac [good].
const NEIGHBOR_ADVERT = hex(`
  62d77952ea02 4683affda845 86dd
  60000000 0020 3a ff 20010db8000000000000000000000002 20010db8000000000000000000000001
  88 00 edac 60000000 20010db8000000000000000000000002 0201 4683affda845`);

const v4Length = (f: Buffer) => f.readUInt16BE(ETH + 2) - 20;
const v6Length = (f: Buffer) => f.readUInt16BE(ETH + 4);
const pseudo6 = (f: Buffer) => ipv6PseudoHeaderSum(f, ETH, 58, v6Length(f));

describe('Icmpv4View on real messages', () => {
  it('reads an echo request and its reply as tshark does', () => {
    const v = new Icmpv4View();
    expect(v.bind(ECHO_REQUEST, V4_OFF, ECHO_REQUEST.length, v4Length(ECHO_REQUEST))).toBeNull();
    expect([v.type, v.code, v.checksum, v.identifier, v.sequence]).toEqual([
      Icmpv4Type.ECHO_REQUEST,
      0,
      0x88ba,
      0xeaf8,
      1,
    ]);
    expect(v.isEcho).toBe(true);
    expect(v.rest).toBe(0xeaf80001);
    expect(v.payloadLength).toBe(12);
    expect(ECHO_REQUEST.subarray(v.payloadOffset).toString()).toBe('pktveil-echo');
    expect(v.checksumOk()).toBe(true);

    expect(v.bind(ECHO_REPLY, V4_OFF, ECHO_REPLY.length, v4Length(ECHO_REPLY))).toBeNull();
    expect([v.type, v.code, v.checksum, v.identifier, v.sequence]).toEqual([
      Icmpv4Type.ECHO_REPLY,
      0,
      0x90ba,
      0xeaf8,
      1,
    ]);
    expect(v.checksumOk()).toBe(true);
  });

  it('reads an error message whose body is the offending datagram', () => {
    const v = new Icmpv4View();
    expect(v.bind(PORT_UNREACHABLE, V4_OFF)).toBeNull();
    expect([v.type, v.code, v.checksum, v.rest]).toEqual([Icmpv4Type.DEST_UNREACHABLE, 3, 0x8944, 0]);
    expect(v.isEcho).toBe(false);
    expect(v.payloadLength).toBe(34);
    expect(PORT_UNREACHABLE[v.payloadOffset]).toBe(0x45);
    expect(v.checksumOk()).toBe(true);
  });

  it('gives the exact error for every truncation of the header', () => {
    const v = new Icmpv4View();
    for (let cut = 0; cut < ICMP_HEADER_LENGTH; cut++) {
      expect(v.bind(ECHO_REQUEST, V4_OFF, V4_OFF + cut)).toEqual({
        layer: 'icmp',
        kind: 'truncated',
        offset: V4_OFF,
        detail: `icmp header needs 8 bytes, ${cut} available`,
      });
    }
    expect(v.bind(ECHO_REQUEST, V4_OFF, V4_OFF + 8, 20)).toBeNull();
    expect(v.complete).toBe(false);
    expect(v.checksumOk()).toBeNull();
    expect(v.fillChecksum()).toBe(false);
  });

  it('reports an IP length shorter than the header', () => {
    expect(new Icmpv4View().bind(ECHO_REQUEST, V4_OFF, ECHO_REQUEST.length, 6)).toEqual({
      layer: 'icmp',
      kind: 'malformed',
      offset: V4_OFF,
      detail: 'the IP layer carries 6 bytes, less than the 8-byte header',
    });
  });

  it('judges checksums over the whole message and repairs them', () => {
    const bad = Buffer.from(ECHO_REQUEST);
    bad[bad.length - 1]! ^= 0x40;
    const v = new Icmpv4View();
    v.bind(bad, V4_OFF);
    expect(v.checksumOk()).toBe(false);
    bad[bad.length - 1]! ^= 0x40;
    v.sequence = 2;
    expect(v.checksumOk()).toBe(false);
    v.sequence = 1;
    v.checksum = 0;
    expect(v.fillChecksum()).toBe(true);
    expect(bad).toEqual(ECHO_REQUEST);
  });
});

describe('Icmpv6View on real messages', () => {
  it('reads an echo request and reply, checksum over the IPv6 pseudo-header', () => {
    const v = new Icmpv6View();
    for (const [frame, type, checksum] of [
      [ECHO6_REQUEST, Icmpv6Type.ECHO_REQUEST, 0x7ef4],
      [ECHO6_REPLY, Icmpv6Type.ECHO_REPLY, 0x7df4],
    ] as const) {
      expect(v.bind(frame, V6_OFF, frame.length, v6Length(frame))).toBeNull();
      expect([v.type, v.code, v.checksum, v.identifier, v.sequence]).toEqual([type, 0, checksum, 0xeaf9, 1]);
      expect(v.isEcho).toBe(true);
      expect(v.payloadLength).toBe(13);
      expect(v.checksumOk(pseudo6(frame))).toBe(true);
      // Without the pseudo-header the sum does not verify: it really is part of the checksum.
      expect(v.checksumOk(0)).toBe(false);
    }
  });

  it('reads a neighbour advertisement', () => {
    const v = new Icmpv6View();
    expect(v.bind(NEIGHBOR_ADVERT, V6_OFF)).toBeNull();
    expect([v.type, v.code, v.checksum, v.rest]).toEqual([
      Icmpv6Type.NEIGHBOR_ADVERTISEMENT,
      0,
      0xedac,
      0x60000000,
    ]);
    expect(v.isEcho).toBe(false);
    expect(v.checksumOk(pseudo6(NEIGHBOR_ADVERT))).toBe(true);
  });

  it('gives the exact error for every truncation of the header', () => {
    const v = new Icmpv6View();
    for (let cut = 0; cut < ICMP_HEADER_LENGTH; cut++) {
      expect(v.bind(ECHO6_REQUEST, V6_OFF, V6_OFF + cut)).toEqual({
        layer: 'icmpv6',
        kind: 'truncated',
        offset: V6_OFF,
        detail: `icmpv6 header needs 8 bytes, ${cut} available`,
      });
    }
    expect(v.bind(ECHO6_REQUEST, V6_OFF, V6_OFF + 10, 21)).toBeNull();
    expect(v.checksumOk(pseudo6(ECHO6_REQUEST))).toBeNull();
  });
});

describe('ICMP reprs', () => {
  it('encode into junk exactly the captured ICMPv4 messages', () => {
    for (const frame of [ECHO_REQUEST, ECHO_REPLY, PORT_UNREACHABLE]) {
      const buf = junk(frame.length);
      frame.copy(buf, 0, 0, V4_OFF);
      frame.copy(buf, V4_OFF + 8, V4_OFF + 8);
      const v = new Icmpv4View();
      v.bind(frame, V4_OFF);
      const { checksum: _, ...fields } = v.toRepr();
      expect(new Icmpv4Repr(fields).encodeInto(buf, V4_OFF)).toBe(8);
      expect(buf).toEqual(frame);
    }
  });

  it('encode into junk exactly the captured ICMPv6 messages', () => {
    for (const frame of [ECHO6_REQUEST, ECHO6_REPLY, NEIGHBOR_ADVERT]) {
      const buf = junk(frame.length);
      frame.copy(buf, 0, 0, V6_OFF);
      frame.copy(buf, V6_OFF + 8, V6_OFF + 8);
      const r = new Icmpv6Repr({
        type: frame[V6_OFF]!,
        code: 0,
        rest: frame.readUInt32BE(V6_OFF + 4),
        payloadLength: v6Length(frame) - 8,
      });
      expect(r.encodeInto(buf, V6_OFF, pseudo6(buf))).toBe(8);
      expect(buf).toEqual(frame);
    }
  });

  it('build echo headers from identifier and sequence', () => {
    const r = new Icmpv4Repr({ type: 8, code: 0, rest: echoRest(0xeaf8, 1), payloadLength: 12 });
    expect([r.identifier, r.sequence]).toEqual([0xeaf8, 1]);
    const buf = Buffer.from(ECHO_REQUEST);
    buf.fill(0xa5, V4_OFF, V4_OFF + 8);
    r.encodeInto(buf, V4_OFF);
    expect(buf).toEqual(ECHO_REQUEST);
  });

  it('refuse an ICMPv6 checksum without the pseudo-header', () => {
    const r = new Icmpv6Repr({ type: 128, code: 0, rest: 0, payloadLength: 0 });
    expect(() => r.encodeInto(Buffer.alloc(8), 0)).toThrow(/pseudo-header sum/);
  });

  const fieldsArb = fc.record({
    type: fc.integer({ min: 0, max: 255 }),
    code: fc.integer({ min: 0, max: 255 }),
    rest: fc.integer({ min: 0, max: 0xffffffff }),
    payloadLength: fc.integer({ min: 0, max: 1000 }),
    checksum: fc.integer({ min: 0, max: 0xffff }),
  });

  it('round-trip any header through encode and decode, both versions', () => {
    fc.assert(
      fc.property(fieldsArb, (fields) => {
        const buf = junk(8);
        new Icmpv4Repr(fields).encodeInto(buf, 0);
        const v4 = new Icmpv4View();
        expect(v4.bind(buf, 0, 8, 8 + fields.payloadLength)).toBeNull();
        expect({ ...v4.toRepr() }).toEqual(fields);
        new Icmpv6Repr(fields).encodeInto(buf, 0);
        const v6 = new Icmpv6View();
        expect(v6.bind(buf, 0, 8, 8 + fields.payloadLength)).toBeNull();
        expect({ ...v6.toRepr() }).toEqual(fields);
      }),
    );
  });

  it('compute checksums that verify', () => {
    fc.assert(
      fc.property(
        fieldsArb,
        fc.uint8Array({ maxLength: 40 }),
        fc.integer({ min: 0, max: 0x7fffffff }),
        (f, body, ps) => {
          const buf = Buffer.concat([junk(8), Buffer.from(body)]);
          const fields = { type: f.type, code: f.code, rest: f.rest, payloadLength: body.length };
          new Icmpv4Repr(fields).encodeInto(buf, 0);
          const v4 = new Icmpv4View();
          v4.bind(buf, 0);
          expect(v4.checksumOk()).toBe(true);
          new Icmpv6Repr(fields).encodeInto(buf, 0, ps);
          const v6 = new Icmpv6View();
          v6.bind(buf, 0);
          expect(v6.checksumOk(ps)).toBe(true);
        },
      ),
    );
  });

  it('never throw on random bytes', () => {
    const v4 = new Icmpv4View();
    const v6 = new Icmpv6View();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 0, max: 100 }), (a, wire) => {
        const buf = Buffer.from(a);
        for (const v of [v4, v6]) {
          if (v.bind(buf, 0, buf.length, wire) === null) {
            v.toRepr();
            expect(v.payloadLength).toBe(wire - 8);
          }
        }
        if (v4.bind(buf, 0) === null) v4.checksumOk();
        if (v6.bind(buf, 0) === null) v6.checksumOk(0);
      }),
    );
  });
});
