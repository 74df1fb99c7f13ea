import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ETHERNET_HEADER_LENGTH,
  EthernetRepr,
  EthernetView,
  EtherType,
  MAX_VLAN_TAGS,
  macString,
  parseMac,
  type VlanTag,
  writeMac,
} from '../../src/codec/ethernet.js';
import { hex, junk } from '../helpers/bytes.js';
import { ARP_REQUEST, DOT1Q_ICMP, PING_RR, Q9100_ARP, QINQ_ICMP } from './fixtures/veth-capture.js';

const tagsOf = (v: EthernetView) => v.toRepr().vlan;

/** A frame header with `n` 802.1Q tags (VIDs 1…n) and then IPv4, followed by 4 payload bytes. */
function stacked(n: number): Buffer {
  const tags = Array.from({ length: n }, (_, i) => `8100 ${(i + 1).toString(16).padStart(4, '0')}`);
  return hex(`020000000002 020000000001 ${tags.join(' ')} 0800 45000000`);
}

const vlanTag: fc.Arbitrary<VlanTag> = fc.record({
  tpid: fc.constantFrom(0x8100, 0x88a8, 0x9100),
  pcp: fc.integer({ min: 0, max: 7 }),
  dei: fc.boolean(),
  id: fc.integer({ min: 0, max: 0xfff }),
});
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => macString(b, 0));

describe('EthernetView', () => {
  it('reads an untagged frame as tshark does', () => {
    const v = new EthernetView();
    expect(v.bind(ARP_REQUEST, 0)).toBeNull();
    expect(macString(ARP_REQUEST, v.dst)).toBe('ff:ff:ff:ff:ff:ff');
    expect(macString(ARP_REQUEST, v.src)).toBe('fa:73:38:fb:87:d9');
    expect(v.etherType).toBe(0x0806);
    expect(v.vlanCount).toBe(0);
    expect(v.headerLength).toBe(14);
    expect(v.payloadOffset).toBe(14);
  });

  it('reads an 802.1Q tag (tshark: priority 5, DEI 0, ID 100, type IPv4)', () => {
    const v = new EthernetView();
    expect(v.bind(DOT1Q_ICMP, 0)).toBeNull();
    expect(v.vlanCount).toBe(1);
    expect([v.vlanTpid(0), v.vlanPcp(0), v.vlanDei(0), v.vlanId(0)]).toEqual([0x8100, 5, false, 100]);
    expect(v.etherType).toBe(EtherType.IPV4);
    expect(v.headerLength).toBe(18);
    expect(v.payloadOffset).toBe(18);
    expect(DOT1Q_ICMP[v.payloadOffset]).toBe(0x45);
  });

  it('reads 802.1ad + 802.1Q (tshark: S-tag priority 3 DEI 1 ID 200, C-tag ID 300)', () => {
    const v = new EthernetView();
    expect(v.bind(QINQ_ICMP, 0)).toBeNull();
    expect(tagsOf(v)).toEqual([
      { tpid: 0x88a8, pcp: 3, dei: true, id: 200 },
      { tpid: 0x8100, pcp: 0, dei: false, id: 300 },
    ]);
    expect(v.etherType).toBe(EtherType.IPV4);
    expect(v.headerLength).toBe(22);
  });

  it('accepts 0x9100 as an outer tag (tshark: vlan.id 7,8, then ARP)', () => {
    const v = new EthernetView();
    expect(v.bind(Q9100_ARP, 0)).toBeNull();
    expect(tagsOf(v)).toEqual([
      { tpid: 0x9100, pcp: 0, dei: false, id: 7 },
      { tpid: 0x8100, pcp: 0, dei: false, id: 8 },
    ]);
    expect(v.etherType).toBe(EtherType.ARP);
    expect(v.payloadOffset).toBe(22);
  });

  it('binds at an offset inside a larger buffer', () => {
    const buf = Buffer.concat([Buffer.from('junk'), QINQ_ICMP]);
    const v = new EthernetView();
    expect(v.bind(buf, 4)).toBeNull();
    expect(v.vlanId(1)).toBe(300);
    expect(v.payloadOffset).toBe(26);
    expect(macString(buf, v.src)).toBe('fa:73:38:fb:87:d9');
  });

  it('gives the exact error for every truncation of the header and of each tag', () => {
    const v = new EthernetView();
    for (let cut = 0; cut < ETHERNET_HEADER_LENGTH; cut++) {
      expect(v.bind(QINQ_ICMP, 0, cut)).toEqual({
        layer: 'eth',
        kind: 'truncated',
        offset: 0,
        detail: `eth header needs 14 bytes, ${cut} available`,
      });
    }
    for (let cut = 14; cut < 22; cut++) {
      const tag = cut < 18 ? 0 : 1;
      expect(v.bind(QINQ_ICMP, 0, cut)).toEqual({
        layer: 'eth',
        kind: 'truncated',
        offset: 14 + 4 * tag,
        detail: `eth VLAN tag ${tag} (TCI and the type after it) needs 4 bytes, ${cut - 14 - 4 * tag} available`,
      });
    }
    expect(v.bind(QINQ_ICMP, 0, 22)).toBeNull();
    expect(v.headerLength).toBe(22);
  });

  it('takes 8 stacked tags and refuses a 9th as unsupported', () => {
    const v = new EthernetView();
    const eight = stacked(MAX_VLAN_TAGS);
    expect(v.bind(eight, 0)).toBeNull();
    expect(v.vlanCount).toBe(8);
    expect(v.vlanId(7)).toBe(8);
    expect(v.headerLength).toBe(46);
    expect(v.etherType).toBe(EtherType.IPV4);
    expect(v.bind(stacked(9), 0)).toEqual({
      layer: 'eth',
      kind: 'unsupported',
      offset: 44,
      detail: 'more than 8 stacked VLAN tags',
    });
  });

  it('rewrites tag fields and the type in place without touching their neighbours', () => {
    const buf = Buffer.from(QINQ_ICMP);
    const v = new EthernetView();
    v.bind(buf, 0);
    v.setVlanId(0, 0xfff);
    v.setVlanPcp(1, 7);
    v.setVlanDei(1, true);
    v.etherType = EtherType.IPV6;
    v.setDst(parseMac('02:00:00:00:00:02'));
    v.setSrc(parseMac('02:00:00:00:00:01'));
    expect(buf.subarray(0, 24)).toEqual(hex('020000000002 020000000001 88a8 7fff 8100 f12c 86dd 4500'));
    expect(v.bind(buf, 0)).toBeNull();
    expect(tagsOf(v)).toEqual([
      { tpid: 0x88a8, pcp: 3, dei: true, id: 0xfff },
      { tpid: 0x8100, pcp: 7, dei: true, id: 300 },
    ]);
  });

  it('never throws on random or mutated bytes', () => {
    const v = new EthernetView();
    const mutated = fc
      .tuple(fc.constantFrom(QINQ_ICMP, Q9100_ARP, stacked(8)), fc.nat(), fc.integer({ min: 0, max: 255 }))
      .map(([frame, i, b]) => {
        const m = Buffer.from(frame);
        m[i % m.length] = b;
        return m;
      });
    const tpidSoup = fc
      .array(fc.constantFrom(0x81, 0x00, 0x88, 0xa8, 0x91), { maxLength: 64 })
      .map((a) => Buffer.from(a));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
          mutated,
          tpidSoup,
        ),
        (buf) => {
          const err = v.bind(buf, 0);
          if (err === null) {
            expect(v.headerLength).toBeLessThanOrEqual(buf.length);
            v.toRepr();
          } else expect(['truncated', 'unsupported']).toContain(err.kind);
        },
      ),
    );
  });
});

describe('MAC text', () => {
  it('formats and parses colon and dash forms', () => {
    expect(macString(hex('0002 0000000001ff'), 2)).toBe('00:00:00:00:01:ff');
    expect(parseMac('02:00:00:00:00:01')).toEqual(hex('020000000001'));
    expect(parseMac('FA-73-38-FB-87-D9')).toEqual(hex('fa7338fb87d9'));
    const buf = junk(8);
    writeMac(buf, 1, 'ff:ff:ff:ff:ff:ff');
    expect(buf).toEqual(hex('a5 ffffffffffff a5'));
  });

  it('refuses text that is not six hex pairs', () => {
    for (const bad of [
      '',
      '02:00:00:00:00',
      '02:00:00:00:00:01:02',
      '02-00:00:00:00:01',
      '2:0:0:0:0:1',
      'g2:00:00:00:00:01',
    ])
      expect(() => parseMac(bad), bad).toThrow('not a MAC address');
  });
});

describe('EthernetRepr', () => {
  it('encodes into junk exactly the captured Q-in-Q header', () => {
    const buf = junk(QINQ_ICMP.length);
    QINQ_ICMP.copy(buf, 22, 22);
    const r = new EthernetRepr({
      dst: 'ff:ff:ff:ff:ff:ff',
      src: 'fa:73:38:fb:87:d9',
      vlan: [
        { tpid: 0x88a8, pcp: 3, dei: true, id: 200 },
        { tpid: 0x8100, pcp: 0, dei: false, id: 300 },
      ],
      etherType: EtherType.IPV4,
    });
    expect(r.encodedLength).toBe(22);
    expect(r.encodeInto(buf, 0)).toBe(22);
    expect(buf).toEqual(QINQ_ICMP);
  });

  it('encodes an untagged header into junk exactly', () => {
    const buf = junk(14);
    const r = new EthernetRepr({
      dst: '6a:36:9a:57:6a:3e',
      src: 'fa:73:38:fb:87:d9',
      vlan: [],
      etherType: 0x0800,
    });
    expect(r.encodeInto(buf, 0)).toBe(14);
    expect(buf).toEqual(PING_RR.subarray(0, 14));
  });

  it('refuses tags and addresses it cannot encode', () => {
    const base = { dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:00:00:01', etherType: 0x0800 };
    const tag = { tpid: 0x8100, pcp: 0, dei: false, id: 1 };
    expect(() => new EthernetRepr({ ...base, vlan: [{ ...tag, tpid: 0x0800 }] })).toThrow('VLAN TPID 0x800');
    expect(() => new EthernetRepr({ ...base, vlan: [{ ...tag, pcp: 8 }] })).toThrow('VLAN PCP 8');
    expect(() => new EthernetRepr({ ...base, vlan: [{ ...tag, id: 4096 }] })).toThrow('VLAN ID 4096');
    expect(() => new EthernetRepr({ ...base, vlan: Array(9).fill(tag) })).toThrow('at most 8');
    expect(() => new EthernetRepr({ ...base, dst: 'ff:ff', vlan: [] })).toThrow('not a MAC address');
  });

  it('round-trips any header through encode and decode', () => {
    fc.assert(
      fc.property(
        fc.record({
          dst: mac,
          src: mac,
          vlan: fc.array(vlanTag, { maxLength: MAX_VLAN_TAGS }),
          // Not a TPID, or the decoder would rightly read one more tag.
          etherType: fc
            .integer({ min: 0, max: 0xffff })
            .filter((t) => t !== 0x8100 && t !== 0x88a8 && t !== 0x9100),
        }),
        (fields) => {
          const r = new EthernetRepr(fields);
          const buf = junk(r.encodedLength);
          expect(r.encodeInto(buf, 0)).toBe(r.encodedLength);
          const v = new EthernetView();
          expect(v.bind(buf, 0)).toBeNull();
          expect(v.headerLength).toBe(r.encodedLength);
          expect({ ...v.toRepr() }).toEqual(fields);
        },
      ),
    );
  });
});
