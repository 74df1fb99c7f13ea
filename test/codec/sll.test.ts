import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EtherType, macString } from '../../src/codec/ethernet.js';
import { Ipv4View } from '../../src/codec/ipv4.js';
import {
  SLL_HEADER_LENGTH,
  SLL2_HEADER_LENGTH,
  Sll2Repr,
  Sll2View,
  SllPacketType,
  SllRepr,
  SllView,
} from '../../src/codec/sll.js';
import type { VlanTag } from '../../src/codec/vlan.js';
import { hex, junk } from '../helpers/bytes.js';
import {
  SLL_ARP_REQUEST,
  SLL_DOT1Q_ICMP,
  SLL_PING_RR_HEAD,
  SLL_QINQ_ICMP,
  SLL2_ARP_REQUEST,
  SLL2_DOT1Q_ICMP,
  SLL2_PING_RR_HEAD,
  SLL2_Q9100_ARP,
} from './fixtures/veth-capture.js';

const vlanTag: fc.Arbitrary<VlanTag> = fc.record({
  tpid: fc.constantFrom(0x8100, 0x88a8, 0x9100),
  pcp: fc.integer({ min: 0, max: 7 }),
  dei: fc.boolean(),
  id: fc.integer({ min: 0, max: 0xfff }),
});
const notTpid = fc
  .integer({ min: 0, max: 0xffff })
  .filter((t) => t !== 0x8100 && t !== 0x88a8 && t !== 0x9100);
const cookedAddress = fc
  .tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: 8, maxLength: 8 }))
  .map(([addressLength, bytes]) => ({
    addressLength,
    address: Buffer.from(bytes.subarray(0, Math.min(addressLength, 8))),
  }));

describe('SllView (LINKTYPE_LINUX_SLL)', () => {
  it('reads captured headers as tshark does', () => {
    const v = new SllView();
    expect(v.bind(SLL_ARP_REQUEST, 0)).toBeNull();
    expect(v.packetType).toBe(SllPacketType.BROADCAST);
    expect(v.arphrdType).toBe(1);
    expect(v.addressLength).toBe(6);
    expect(v.storedAddressLength).toBe(6);
    expect(macString(SLL_ARP_REQUEST, v.addressOffset)).toBe('fa:73:38:fb:87:d9');
    expect(v.protocol).toBe(EtherType.ARP);
    expect([v.vlanCount, v.headerLength, v.payloadOffset]).toEqual([0, 16, 16]);

    expect(v.bind(SLL_PING_RR_HEAD, 0)).toBeNull();
    expect([v.packetType, v.protocol]).toEqual([SllPacketType.HOST, EtherType.IPV4]);
    // The fixture keeps only the fixed IPv4 header of this 60-byte header with options.
    expect(new Ipv4View().bind(SLL_PING_RR_HEAD, v.payloadOffset, SLL_PING_RR_HEAD.length, 124)?.detail).toBe(
      'ipv4 header with 40 bytes of options needs 60 bytes, 20 available',
    );
  });

  it('walks the VLAN tag libpcap puts back after the header (tshark: vlan.id 100, then IPv4)', () => {
    const v = new SllView();
    expect(v.bind(SLL_DOT1Q_ICMP, 0)).toBeNull();
    expect(v.vlanCount).toBe(1);
    expect([v.vlanTpid(0), v.vlanPcp(0), v.vlanDei(0), v.vlanId(0)]).toEqual([0x8100, 5, false, 100]);
    expect(v.protocol).toBe(EtherType.IPV4);
    expect([v.headerLength, v.payloadOffset]).toEqual([20, 20]);
    const ip = new Ipv4View();
    expect(ip.bind(SLL_DOT1Q_ICMP, v.payloadOffset)).toBeNull();
    expect(ip.checksumOk()).toBe(true);
  });

  it('reads a Q-in-Q frame whose inner tag lost its type as tshark does: an 802.1ad tag, then no IPv4', () => {
    const v = new SllView();
    expect(v.bind(SLL_QINQ_ICMP, 0)).toBeNull();
    expect(v.vlanTags()).toEqual([{ tpid: 0x88a8, pcp: 3, dei: true, id: 200 }]);
    expect(v.protocol).toBe(EtherType.IPV4);
    // tshark: "Bogus IPv4 version (0, must be 4)".
    expect(new Ipv4View().bind(SLL_QINQ_ICMP, v.payloadOffset)?.detail).toBe('version field 0 is not 4');
  });

  it('gives the exact error for every truncation of the header and of a tag', () => {
    const v = new SllView();
    for (let cut = 0; cut < SLL_HEADER_LENGTH; cut++) {
      expect(v.bind(SLL_DOT1Q_ICMP, 0, cut)).toEqual({
        layer: 'sll',
        kind: 'truncated',
        offset: 0,
        detail: `sll header needs 16 bytes, ${cut} available`,
      });
    }
    for (let cut = 16; cut < 20; cut++) {
      expect(v.bind(SLL_DOT1Q_ICMP, 0, cut)).toEqual({
        layer: 'sll',
        kind: 'truncated',
        offset: 16,
        detail: `sll VLAN tag 0 (TCI and the type after it) needs 4 bytes, ${cut - 16} available`,
      });
    }
    expect(v.bind(SLL_DOT1Q_ICMP, 0, 20)).toBeNull();
  });

  it('keeps at most 8 address bytes, whatever the address length says', () => {
    const infiniband = hex('0000 0020 0014 0102030405060708 0800');
    const v = new SllView();
    expect(v.bind(infiniband, 0)).toBeNull();
    expect([v.addressLength, v.storedAddressLength]).toEqual([20, 8]);
    expect(v.toRepr().address).toEqual(hex('0102030405060708'));
  });

  it('never throws on random or mutated bytes', () => {
    const v = new SllView();
    const mutated = fc
      .tuple(fc.constantFrom(SLL_DOT1Q_ICMP, SLL_QINQ_ICMP, SLL_ARP_REQUEST), fc.nat(), fc.nat({ max: 255 }))
      .map(([frame, i, b]) => {
        const m = Buffer.from(frame);
        m[i % 24] = b;
        return m;
      });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
          mutated,
        ),
        (buf) => {
          if (v.bind(buf, 0) === null) {
            expect(v.headerLength).toBeLessThanOrEqual(buf.length);
            v.toRepr();
          }
        },
      ),
    );
  });
});

describe('Sll2View (LINKTYPE_LINUX_SLL2)', () => {
  it('reads captured headers as tshark does', () => {
    const v = new Sll2View();
    expect(v.bind(SLL2_ARP_REQUEST, 0)).toBeNull();
    expect(v.protocol).toBe(EtherType.ARP);
    expect(v.reserved).toBe(0);
    expect(v.interfaceIndex).toBe(2);
    expect(v.arphrdType).toBe(1);
    expect(v.packetType).toBe(SllPacketType.BROADCAST);
    expect(v.addressLength).toBe(6);
    expect(macString(SLL2_ARP_REQUEST, v.addressOffset)).toBe('fa:73:38:fb:87:d9');
    expect([v.vlanCount, v.headerLength, v.payloadOffset]).toEqual([0, 20, 20]);

    expect(v.bind(SLL2_PING_RR_HEAD, 0)).toBeNull();
    expect([v.packetType, v.protocol]).toEqual([SllPacketType.HOST, EtherType.IPV4]);

    // With v2 libpcap did not put the stripped 802.1Q tag back: the payload is IPv4 right away.
    expect(v.bind(SLL2_DOT1Q_ICMP, 0)).toBeNull();
    expect([v.vlanCount, v.protocol]).toEqual([0, EtherType.IPV4]);
    expect(new Ipv4View().bind(SLL2_DOT1Q_ICMP, v.payloadOffset)).toBeNull();
  });

  it('walks tags left in the data after the header (tshark: vlan.id 7,8, then ARP)', () => {
    const v = new Sll2View();
    expect(v.bind(SLL2_Q9100_ARP, 0)).toBeNull();
    expect(v.vlanTags()).toEqual([
      { tpid: 0x9100, pcp: 0, dei: false, id: 7 },
      { tpid: 0x8100, pcp: 0, dei: false, id: 8 },
    ]);
    expect(v.protocol).toBe(EtherType.ARP);
    expect([v.headerLength, v.payloadOffset]).toEqual([28, 28]);
    expect(SLL2_Q9100_ARP.readUInt16BE(v.payloadOffset)).toBe(1); // ARP htype Ethernet
  });

  it('gives the exact error for every truncation of the header and of each tag', () => {
    const v = new Sll2View();
    for (let cut = 0; cut < SLL2_HEADER_LENGTH; cut++) {
      expect(v.bind(SLL2_Q9100_ARP, 0, cut)).toEqual({
        layer: 'sll2',
        kind: 'truncated',
        offset: 0,
        detail: `sll2 header needs 20 bytes, ${cut} available`,
      });
    }
    for (let cut = 20; cut < 28; cut++) {
      const tag = cut < 24 ? 0 : 1;
      expect(v.bind(SLL2_Q9100_ARP, 0, cut)).toEqual({
        layer: 'sll2',
        kind: 'truncated',
        offset: 20 + 4 * tag,
        detail: `sll2 VLAN tag ${tag} (TCI and the type after it) needs 4 bytes, ${cut - 20 - 4 * tag} available`,
      });
    }
    expect(v.bind(SLL2_Q9100_ARP, 0, 28)).toBeNull();
  });

  it('rewrites fields in place', () => {
    const buf = Buffer.from(SLL2_Q9100_ARP);
    const v = new Sll2View();
    v.bind(buf, 0);
    v.protocol = EtherType.IPV6;
    v.interfaceIndex = 0xfffffffe;
    v.packetType = SllPacketType.OUTGOING;
    v.arphrdType = 772;
    v.setVlanId(1, 9);
    expect(buf.subarray(0, 28)).toEqual(
      hex('9100 0000 fffffffe 0304 04 06 fa7338fb87d90000 0007 8100 0009 86dd'),
    );
    expect(v.interfaceIndex).toBe(0xfffffffe);
  });

  it('never throws on random or mutated bytes', () => {
    const v = new Sll2View();
    const mutated = fc
      .tuple(fc.constantFrom(SLL2_Q9100_ARP, SLL2_ARP_REQUEST), fc.nat(), fc.nat({ max: 255 }))
      .map(([frame, i, b]) => {
        const m = Buffer.from(frame);
        m[i % 28] = b;
        return m;
      });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 48 }).map((a) => Buffer.from(a)),
          mutated,
        ),
        (buf) => {
          if (v.bind(buf, 0) === null) {
            expect(v.headerLength).toBeLessThanOrEqual(buf.length);
            v.toRepr();
          }
        },
      ),
    );
  });
});

describe('SllRepr and Sll2Repr', () => {
  it('encode into junk exactly the captured headers', () => {
    const v1 = junk(20);
    const r1 = new SllRepr({
      packetType: SllPacketType.BROADCAST,
      arphrdType: 1,
      addressLength: 6,
      address: hex('fa7338fb87d9'),
      vlan: [{ tpid: 0x8100, pcp: 5, dei: false, id: 100 }],
      protocol: EtherType.IPV4,
    });
    expect(r1.encodedLength).toBe(20);
    expect(r1.encodeInto(v1, 0)).toBe(20);
    expect(v1).toEqual(SLL_DOT1Q_ICMP.subarray(0, 20));

    const v2 = junk(20);
    const r2 = new Sll2Repr({
      protocol: EtherType.ARP,
      interfaceIndex: 2,
      arphrdType: 1,
      packetType: SllPacketType.BROADCAST,
      addressLength: 6,
      address: hex('fa7338fb87d9'),
    });
    expect(r2.encodedLength).toBe(20);
    expect(r2.encodeInto(v2, 0)).toBe(20);
    expect(v2).toEqual(SLL2_ARP_REQUEST.subarray(0, 20));

    const tagged = junk(28);
    new Sll2Repr({
      ...r2,
      vlan: [
        { tpid: 0x9100, pcp: 0, dei: false, id: 7 },
        { tpid: 0x8100, pcp: 0, dei: false, id: 8 },
      ],
    }).encodeInto(tagged, 0);
    expect(tagged).toEqual(SLL2_Q9100_ARP.subarray(0, 28));
  });

  it('refuse an address that does not match its length', () => {
    const base = { packetType: 0, arphrdType: 1, protocol: 0x0800 };
    expect(() => new SllRepr({ ...base, addressLength: 6, address: hex('01') })).toThrow(
      'does not match address length 6',
    );
    expect(
      () => new Sll2Repr({ ...base, interfaceIndex: 1, addressLength: 20, address: hex('0102030405060708') }),
    ).not.toThrow();
  });

  it('round-trip any v1 header through encode and decode', () => {
    fc.assert(
      fc.property(
        cookedAddress,
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.array(vlanTag, { maxLength: 8 }),
        notTpid,
        (addr, packetType, arphrdType, vlan, protocol) => {
          const fields = { packetType, arphrdType, ...addr, vlan, protocol };
          const r = new SllRepr(fields);
          const buf = junk(r.encodedLength);
          expect(r.encodeInto(buf, 0)).toBe(16 + 4 * vlan.length);
          const v = new SllView();
          expect(v.bind(buf, 0)).toBeNull();
          expect({ ...v.toRepr() }).toEqual(fields);
        },
      ),
    );
  });

  it('round-trip any v2 header through encode and decode', () => {
    fc.assert(
      fc.property(
        cookedAddress,
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 255 }),
        fc.array(vlanTag, { maxLength: 8 }),
        notTpid,
        (addr, interfaceIndex, arphrdType, packetType, vlan, protocol) => {
          const fields = { protocol, interfaceIndex, arphrdType, packetType, ...addr, vlan };
          const r = new Sll2Repr(fields);
          const buf = junk(r.encodedLength);
          expect(r.encodeInto(buf, 0)).toBe(20 + 4 * vlan.length);
          const v = new Sll2View();
          expect(v.bind(buf, 0)).toBeNull();
          expect(v.reserved).toBe(0);
          expect({ ...v.toRepr() }).toEqual(fields);
        },
      ),
    );
  });
});
