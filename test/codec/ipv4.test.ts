import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checksumVerifies } from '../../src/codec/checksum.js';
import {
  IPV4_HEADER_LENGTH,
  Ipv4Flags,
  Ipv4Repr,
  Ipv4View,
  ipv4String,
  parseIpv4,
} from '../../src/codec/ipv4.js';
import { hex, junk } from '../helpers/bytes.js';
import {
  DOT1Q_ICMP,
  IPV4_FIRST_FRAGMENT,
  IPV4_FIRST_FRAGMENT_WIRE_LENGTH,
  IPV4_LAST_FRAGMENT,
  IPV4_LAST_FRAGMENT_WIRE_LENGTH,
  PING_RR,
} from './fixtures/veth-capture.js';

const IP_OFF = 14;
const RR_OPTIONS = hex(`01 07 27 08 c6120001 ${'00'.repeat(32)}`);

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const ipv4Fields = fc.record({
  dscp: fc.integer({ min: 0, max: 63 }),
  ecn: fc.integer({ min: 0, max: 3 }),
  id: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.integer({ min: 0, max: 7 }),
  fragOffset: fc.integer({ min: 0, max: 0x1fff }),
  ttl: fc.integer({ min: 0, max: 255 }),
  protocol: fc.integer({ min: 0, max: 255 }),
  src: u32,
  dst: u32,
  options: fc
    .integer({ min: 0, max: 10 })
    .chain((words) =>
      fc.uint8Array({ minLength: 4 * words, maxLength: 4 * words }).map((a) => Buffer.from(a)),
    ),
  payloadLength: fc.integer({ min: 0, max: 0xffff - 60 }),
});

describe('Ipv4View', () => {
  it('reads a header with Record Route options as tshark does', () => {
    const v = new Ipv4View();
    expect(v.bind(PING_RR, IP_OFF)).toBeNull();
    expect(v.version).toBe(4);
    expect(v.ihl).toBe(15);
    expect(v.headerLength).toBe(60);
    expect([v.dscp, v.ecn]).toEqual([0, 0]);
    expect(v.totalLength).toBe(124);
    expect(v.id).toBe(0x5352);
    expect(v.flags).toBe(Ipv4Flags.DF);
    expect([v.dontFragment, v.moreFragments, v.fragOffset, v.isFragment]).toEqual([true, false, 0, false]);
    expect(v.ttl).toBe(64);
    expect(v.protocol).toBe(1);
    expect(v.checksum).toBe(0x62e4);
    expect(v.checksumOk()).toBe(true);
    expect(ipv4String(v.src)).toBe('198.18.0.1');
    expect(ipv4String(v.dst)).toBe('198.18.0.2');
    expect(v.optionsOffset).toBe(34);
    expect(v.optionsLength).toBe(40);
    expect(PING_RR.subarray(v.optionsOffset, v.optionsOffset + v.optionsLength)).toEqual(RR_OPTIONS);
    expect(v.payloadOffset).toBe(74);
    expect(v.payloadLength).toBe(64);
    expect(v.complete).toBe(true);
    expect(v.capturedEnd).toBe(PING_RR.length);
  });

  it('reads a first fragment captured with a 96-byte snap length (tshark: MF, offset 0, checksum good)', () => {
    const v = new Ipv4View();
    const wire = IPV4_FIRST_FRAGMENT_WIRE_LENGTH - IP_OFF;
    expect(v.bind(IPV4_FIRST_FRAGMENT, IP_OFF, IPV4_FIRST_FRAGMENT.length, wire)).toBeNull();
    expect(v.totalLength).toBe(1500);
    expect(v.id).toBe(0x5353);
    expect(v.flags).toBe(Ipv4Flags.MF);
    expect([v.moreFragments, v.fragOffset, v.isFragment]).toEqual([true, 0, true]);
    expect(v.payloadLength).toBe(1480);
    // Cut short by the capture, not broken: the header is whole, so its checksum can be judged.
    expect(v.complete).toBe(false);
    expect(v.captured).toBe(82);
    expect(v.checksumOk()).toBe(true);
  });

  it('reads a last fragment (tshark: flags 0, offset 185 = 1480 bytes)', () => {
    const v = new Ipv4View();
    const wire = IPV4_LAST_FRAGMENT_WIRE_LENGTH - IP_OFF;
    expect(v.bind(IPV4_LAST_FRAGMENT, IP_OFF, IPV4_LAST_FRAGMENT.length, wire)).toBeNull();
    expect(v.totalLength).toBe(548);
    expect([v.flags, v.moreFragments, v.fragOffset, v.isFragment]).toEqual([0, false, 185, true]);
    expect(v.checksum).toBe(0x98a5);
    expect(v.checksumOk()).toBe(true);
  });

  it('reads a packet behind a VLAN tag', () => {
    const v = new Ipv4View();
    expect(v.bind(DOT1Q_ICMP, 18)).toBeNull();
    expect([v.totalLength, v.id, v.ttl, v.protocol, v.checksum]).toEqual([35, 1, 64, 1, 0xeeb1]);
    expect(v.checksumOk()).toBe(true);
  });

  it('ends the packet at totalLength, not at the end of a padded Ethernet frame', () => {
    // DOT1Q_ICMP's 35-byte packet in an untagged frame padded to the 60-byte minimum, as a NIC sends it
    // (a veth does not pad, so this frame is assembled from the captured one).
    const frame = Buffer.concat([
      hex('ffffffffffff fa7338fb87d9 0800'),
      DOT1Q_ICMP.subarray(18),
      Buffer.alloc(11),
    ]);
    expect(frame.length).toBe(60);
    const v = new Ipv4View();
    expect(v.bind(frame, IP_OFF, frame.length, frame.length - IP_OFF)).toBeNull();
    expect(v.captured).toBe(35);
    expect(v.capturedEnd).toBe(49);
    expect(v.payloadLength).toBe(15);
    expect(v.complete).toBe(true);
    expect(v.checksumOk()).toBe(true);
  });

  it('gives the exact error for every truncation of the header and of the options', () => {
    const v = new Ipv4View();
    const wire = PING_RR.length - IP_OFF;
    for (let cut = 0; cut < IPV4_HEADER_LENGTH; cut++) {
      expect(v.bind(PING_RR, IP_OFF, IP_OFF + cut, wire)).toEqual({
        layer: 'ipv4',
        kind: 'truncated',
        offset: IP_OFF,
        detail: `ipv4 header needs 20 bytes, ${cut} available`,
      });
    }
    for (let cut = IPV4_HEADER_LENGTH; cut < 60; cut++) {
      expect(v.bind(PING_RR, IP_OFF, IP_OFF + cut, wire)).toEqual({
        layer: 'ipv4',
        kind: 'truncated',
        offset: IP_OFF,
        detail: `ipv4 header with 40 bytes of options needs 60 bytes, ${cut} available`,
      });
    }
    // A whole header with the payload cut short is a truncated capture, not an error.
    expect(v.bind(PING_RR, IP_OFF, IP_OFF + 60, wire)).toBeNull();
    expect(v.complete).toBe(false);
    expect(v.checksumOk()).toBe(true);
  });

  it('reports a version, IHL or total length that contradicts the header or the link', () => {
    const v = new Ipv4View();
    const with0 = (byte0: number) => {
      const b = Buffer.from(PING_RR);
      b[IP_OFF] = byte0;
      return b;
    };
    expect(v.bind(with0(0x6f), IP_OFF)).toEqual({
      layer: 'ipv4',
      kind: 'malformed',
      offset: IP_OFF,
      detail: 'version field 6 is not 4',
    });
    expect(v.bind(with0(0x44), IP_OFF)?.detail).toBe('IHL 4 is below the minimum of 5 (20 bytes)');
    const short = Buffer.from(PING_RR);
    short.writeUInt16BE(59, IP_OFF + 2);
    expect(v.bind(short, IP_OFF)?.detail).toBe('total length 59 is below the 60-byte header');
    expect(v.bind(PING_RR, IP_OFF, PING_RR.length, 123)).toEqual({
      layer: 'ipv4',
      kind: 'malformed',
      offset: IP_OFF,
      detail: 'total length 124 exceeds the 123 bytes the link layer carries',
    });
  });

  it('judges the header checksum: a flipped bit is bad, fillChecksum repairs it', () => {
    const buf = Buffer.from(PING_RR);
    const v = new Ipv4View();
    v.bind(buf, IP_OFF);
    buf[IP_OFF + 40]! ^= 0x10; // inside the options: covered by the header checksum
    expect(v.checksumOk()).toBe(false);
    buf[IP_OFF + 40]! ^= 0x10;
    v.checksum = 0xdead;
    expect(v.checksumOk()).toBe(false);
    v.fillChecksum();
    expect(v.checksum).toBe(0x62e4);
    expect(v.checksumOk()).toBe(true);
  });

  it('rewrites addresses with an incremental checksum update equal to a full recomputation', () => {
    fc.assert(
      fc.property(ipv4Fields, u32, u32, fc.boolean(), (fields, newSrc, newDst, both) => {
        const buf = junk(60);
        new Ipv4Repr({ ...fields, payloadLength: 0 }).encodeInto(buf, 0);
        const v = new Ipv4View();
        expect(v.bind(buf, 0)).toBeNull();
        v.setSrcIncremental(newSrc);
        if (both) v.setDstIncremental(newDst);
        const incremental = v.checksum;
        expect(v.src).toBe(newSrc);
        expect(v.dst).toBe(both ? newDst : fields.dst);
        expect(v.checksumOk()).toBe(true);
        v.fillChecksum();
        expect(incremental).toBe(v.checksum);
      }),
    );
  });

  it('rewrites the source of a captured packet to a broadcast address (the anonymity-layer case)', () => {
    const buf = Buffer.from(PING_RR);
    const v = new Ipv4View();
    v.bind(buf, IP_OFF);
    v.setSrcIncremental(parseIpv4('198.18.0.255'));
    expect(ipv4String(v.src)).toBe('198.18.0.255');
    expect(v.checksum).toBe(0x62e4 - 0xfe); // one word grew by 0x00fe
    expect(checksumVerifies(buf, IP_OFF, 60)).toBe(true);
  });

  it('sets flag bits, fragment offset, DSCP and ECN without disturbing their neighbours', () => {
    fc.assert(
      fc.property(ipv4Fields, ipv4Fields, (a, b) => {
        const buf = junk(60);
        new Ipv4Repr({ ...a, options: Buffer.alloc(0) }).encodeInto(buf, 0);
        const v = new Ipv4View();
        v.bind(buf, 0, 60, 0xffff);
        v.flags = b.flags;
        expect([v.flags, v.fragOffset]).toEqual([b.flags, a.fragOffset]);
        v.dontFragment = !v.dontFragment;
        expect(v.flags).toBe(b.flags ^ Ipv4Flags.DF);
        v.moreFragments = !v.moreFragments;
        expect(v.flags).toBe(b.flags ^ Ipv4Flags.DF ^ Ipv4Flags.MF);
        v.fragOffset = b.fragOffset;
        expect([v.flags, v.fragOffset]).toEqual([b.flags ^ 3, b.fragOffset]);
        expect(v.isFragment).toBe(v.moreFragments || b.fragOffset !== 0);
        v.dscp = b.dscp;
        expect([v.dscp, v.ecn]).toEqual([b.dscp, a.ecn]);
        v.ecn = b.ecn;
        expect([v.dscp, v.ecn]).toEqual([b.dscp, b.ecn]);
        expect(v.version).toBe(4);
        expect(v.ttl).toBe(a.ttl);
      }),
    );
  });

  it('never throws on random or mutated bytes', () => {
    const v = new Ipv4View();
    const mutated = fc
      .tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat({ max: PING_RR.length }))
      .map(([i, b, cut]) => {
        const m = Buffer.from(PING_RR.subarray(0, Math.max(cut, IP_OFF)));
        if (m.length > IP_OFF) m[IP_OFF + (i % (m.length - IP_OFF))] = b;
        return m;
      });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)),
          mutated,
        ),
        fc.integer({ min: 0, max: 200 }),
        (buf, wire) => {
          const off = Math.min(IP_OFF, buf.length);
          const err = v.bind(buf, off, buf.length, wire);
          if (err === null) {
            expect(v.headerLength).toBeLessThanOrEqual(v.captured);
            expect(v.totalLength).toBeLessThanOrEqual(wire);
            v.toRepr();
            v.checksumOk();
          }
        },
      ),
    );
  });
});

describe('Ipv4Repr', () => {
  const rr = () =>
    new Ipv4Repr({
      id: 0x5352,
      flags: Ipv4Flags.DF,
      ttl: 64,
      protocol: 1,
      src: parseIpv4('198.18.0.1'),
      dst: parseIpv4('198.18.0.2'),
      options: RR_OPTIONS,
      payloadLength: 64,
    });

  it('encodes into junk exactly the captured header with options, checksum computed', () => {
    const buf = junk(PING_RR.length);
    PING_RR.copy(buf, 0, 0, IP_OFF);
    PING_RR.copy(buf, 74, 74);
    const r = rr();
    expect(r.encodedLength).toBe(60);
    expect(r.encodeInto(buf, IP_OFF)).toBe(60);
    expect(buf).toEqual(PING_RR);
  });

  it('writes a given checksum as is', () => {
    const buf = junk(60);
    const r = rr();
    r.checksum = 0x1234;
    r.encodeInto(buf, 0);
    expect(buf.readUInt16BE(10)).toBe(0x1234);
  });

  it('refuses fields it cannot encode', () => {
    const base = { id: 1, ttl: 64, protocol: 17, src: 1, dst: 2, payloadLength: 0 };
    expect(() => new Ipv4Repr({ ...base, options: Buffer.alloc(3) })).toThrow('IPv4 options are 3 bytes');
    expect(() => new Ipv4Repr({ ...base, options: Buffer.alloc(44) })).toThrow('IPv4 options are 44 bytes');
    expect(() => new Ipv4Repr({ ...base, payloadLength: 0xffff - 19 })).toThrow('exceeds 65535');
    expect(() => new Ipv4Repr({ ...base, dscp: 64 })).toThrow('IPv4 dscp 64 is out of range 0–63');
    expect(() => new Ipv4Repr({ ...base, ecn: 4 })).toThrow('IPv4 ecn 4');
    expect(() => new Ipv4Repr({ ...base, flags: 8 })).toThrow('IPv4 flags 8');
    expect(() => new Ipv4Repr({ ...base, fragOffset: 0x2000 })).toThrow('IPv4 fragOffset 8192');
    expect(() => new Ipv4Repr({ ...base, ttl: 256 }).encodeInto(Buffer.alloc(20), 0)).toThrow();
  });

  it('round-trips any header through encode and decode', () => {
    fc.assert(
      fc.property(ipv4Fields, (fields) => {
        const r = new Ipv4Repr(fields);
        const buf = junk(r.encodedLength);
        expect(r.encodeInto(buf, 0)).toBe(20 + fields.options.length);
        const v = new Ipv4View();
        expect(v.bind(buf, 0, buf.length, r.encodedLength + fields.payloadLength)).toBeNull();
        expect(v.checksumOk()).toBe(true);
        const { checksum, ...decoded } = v.toRepr();
        expect(decoded).toEqual(fields);
        expect(checksum).toBe(buf.readUInt16BE(10));
      }),
    );
  });
});
