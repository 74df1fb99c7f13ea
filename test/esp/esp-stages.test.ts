/**
 * The ESP stages on real link layers: Ethernet (with VLAN tags), raw IPv4 (LINKTYPE 228 and 101) and Linux
 * cooked captures (113, 276). The link header is kept, frames without IPv4 pass through and are counted,
 * and an inner IPv6 packet out of a tunnel gets a link header that says IPv6.
 */
import { describe, expect, it } from 'vitest';
import { EspDecapStage, EspEncapStage } from '../../src/esp/esp-stages.js';
import { SecurityAssociation } from '../../src/esp/sa.js';
import { LinkType, type Packet } from '../../src/packet.js';
import { fixedSize, sizeBuckets } from '../../src/tfc/padding.js';
import { hex } from '../helpers/bytes.js';
import { ipv6Packet, mustSeal, runOnce, saConfig, saPair, udpPacket } from './engine-fixtures.js';

const MACS = hex('0e2fdfd27da7 a2da45295ec8');

/** Link headers in front of an IPv4 (or, with 0x86dd, IPv6) packet, per link type. */
const LINKS: { name: string; link: number; header: (etherType: number) => Buffer }[] = [
  { name: 'Ethernet', link: LinkType.ETHERNET, header: (t) => Buffer.concat([MACS, u16(t)]) },
  {
    name: 'Ethernet with an 802.1Q tag',
    link: LinkType.ETHERNET,
    header: (t) => Buffer.concat([MACS, hex('8100 2064'), u16(t)]),
  },
  {
    name: 'Ethernet with 802.1ad and 802.1Q tags',
    link: LinkType.ETHERNET,
    header: (t) => Buffer.concat([MACS, hex('88a8 0005 8100 0064'), u16(t)]),
  },
  { name: 'raw IPv4 (228)', link: LinkType.IPV4, header: () => Buffer.alloc(0) },
  { name: 'raw IP (101)', link: LinkType.RAW, header: () => Buffer.alloc(0) },
  // SLL: packet type 0 (to us), ARPHRD_ETHER, address length 6, address + 2 bytes padding, protocol.
  {
    name: 'Linux cooked (113)',
    link: LinkType.LINUX_SLL,
    header: (t) => Buffer.concat([hex('0000 0001 0006 a2da45295ec8 0000'), u16(t)]),
  },
  // SLL2: protocol, reserved, interface index 3, ARPHRD_ETHER, packet type, address length, address.
  {
    name: 'Linux cooked v2 (276)',
    link: LinkType.LINUX_SLL2,
    header: (t) => Buffer.concat([u16(t), hex('0000 00000003 0001 00 06 a2da45295ec80000')]),
  },
];

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function frame(link: number, data: Buffer, ts = 1_700_000_000_000_000_000n): Packet {
  return { data, ts, link, ifIndex: 2 };
}

describe.each(LINKS)('ESP stages over $name', ({ link, header }) => {
  const ipv4Header = header(0x0800);

  it('encapsulates the IPv4 packet behind the same link header, and decapsulation gives the frame back', () => {
    const config = saConfig('aes-gcm-16', 'tunnel');
    const { tx, rx } = saPair(config);
    const twin = new SecurityAssociation(config);
    const encap = new EspEncapStage([tx]);
    const decap = new EspDecapStage([rx]);
    for (let i = 0; i < 3; i++) {
      const inner = udpPacket({ id: i });
      const original = frame(link, Buffer.concat([ipv4Header, inner]));
      const sealed = runOnce(encap, original).emitted;
      expect(sealed).toHaveLength(1);
      const out = sealed[0]!;
      expect([out.link, out.ts, out.ifIndex]).toEqual([link, original.ts, 2]);
      expect(out.data.subarray(0, ipv4Header.length)).toEqual(ipv4Header);
      expect(out.data.subarray(ipv4Header.length)).toEqual(mustSeal(twin, inner));
      const opened = runOnce(decap, out).emitted;
      expect(opened.map((p) => [p.link, p.ts, p.ifIndex, p.data])).toEqual([
        [link, original.ts, 2, original.data],
      ]);
    }
    expect(encap.stats()).toEqual({ packetsIn: 3, packetsOut: 3, dropped: {}, passedThrough: 0, dummies: 0 });
    expect(decap.stats()).toEqual({
      packetsIn: 3,
      packetsOut: 3,
      dropped: {},
      passedThrough: 0,
      layersRemoved: 3,
    });
  });

  it('gives an inner IPv6 packet out of the tunnel a link header that says IPv6', () => {
    const { tx, rx } = saPair(saConfig('chacha20-poly1305', 'tunnel'));
    const inner = ipv6Packet(30);
    const esp = mustSeal(tx, inner);
    const got = runOnce(new EspDecapStage([rx]), frame(link, Buffer.concat([ipv4Header, esp]))).emitted;
    expect(got).toHaveLength(1);
    const ipv6Header = link === LinkType.IPV4 ? Buffer.alloc(0) : header(0x86dd);
    // LINKTYPE_IPV4 cannot carry IPv6: the packet becomes LINKTYPE_IPV6 (229); DLT_RAW carries both.
    const wantLink = link === LinkType.IPV4 ? LinkType.IPV6 : link;
    expect([got[0]!.link, got[0]!.data]).toEqual([wantLink, Buffer.concat([ipv6Header, inner])]);
  });
});

describe('frames without IPv4 (or without ESP) pass through, counted', () => {
  const arp = frame(
    LinkType.ETHERNET,
    Buffer.concat([
      hex('ffffffffffff a2da45295ec8 0806'),
      hex('0001 0800 06 04 0001 a2da45295ec8 c6120001 000000000000 c6120002'),
    ]),
  );
  const ipv6OverEthernet = frame(LinkType.ETHERNET, Buffer.concat([MACS, u16(0x86dd), ipv6Packet()]));
  const ipv6Raw = frame(LinkType.RAW, ipv6Packet());
  const unknownLink = frame(147, udpPacket());
  const runt = frame(LinkType.ETHERNET, hex('ffffffffffff a2da45'));
  const notIp = frame(LinkType.RAW, hex('55000014'));
  const sllArp = frame(
    LinkType.LINUX_SLL,
    Buffer.concat([hex('0001 0001 0006 a2da45295ec8 0000 0806'), Buffer.alloc(28)]),
  );
  const others = [arp, ipv6OverEthernet, ipv6Raw, unknownLink, runt, notIp, sllArp];

  it('through the encapsulation stage, unchanged', () => {
    const encap = new EspEncapStage([new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'))]);
    for (const pkt of others) {
      const emitted: Packet[] = [];
      encap.process(pkt, (p) => emitted.push(p));
      expect(emitted).toEqual([pkt]);
    }
    expect(encap.stats()).toEqual({
      packetsIn: others.length,
      packetsOut: others.length,
      dropped: {},
      passedThrough: others.length,
      dummies: 0,
    });
  });

  it('through the decapsulation stage, unchanged, and IPv4 that is not ESP too', () => {
    const decap = new EspDecapStage([new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'))]);
    const plainIpv4 = frame(LinkType.ETHERNET, Buffer.concat([MACS, u16(0x0800), udpPacket()]));
    const all = [...others, plainIpv4];
    for (const pkt of all) {
      const emitted: Packet[] = [];
      decap.process(pkt, (p) => emitted.push(p));
      expect(emitted).toEqual([pkt]);
    }
    expect(decap.stats()).toEqual({
      packetsIn: all.length,
      packetsOut: all.length,
      dropped: {},
      passedThrough: all.length,
      layersRemoved: 0,
    });
  });
});

describe('stage counters', () => {
  it('the encapsulation stage counts refusals by reason, dummies and keepalives', () => {
    const tx = new SecurityAssociation(
      saConfig('aes-gcm-16', 'transport', {
        lifetime: { packets: { hard: 2 } },
        natt: { srcPort: 4500, dstPort: 4500 },
      }),
    );
    const encap = new EspEncapStage([tx]);
    const out: Packet[] = [];
    const emit = (p: Packet) => out.push({ ...p, data: Buffer.from(p.data) });
    encap.process(frame(LinkType.IPV4, udpPacket({ flags: 0b001 })), emit);
    encap.process(frame(LinkType.IPV4, udpPacket()), emit);
    const malformed = udpPacket();
    malformed.writeUInt16BE(malformed.length + 4, 2);
    encap.process(frame(LinkType.IPV4, malformed), emit);
    encap.process(frame(LinkType.IPV4, udpPacket()), emit);
    encap.process(frame(LinkType.IPV4, udpPacket()), emit);
    expect(out).toHaveLength(2);
    expect(encap.stats()).toEqual({
      packetsIn: 5,
      packetsOut: 2,
      dropped: { fragment: 1, 'malformed-inner': 1, 'sa-expired': 1 },
      passedThrough: 0,
      dummies: 0,
    });
    // The returned stats are a snapshot, not the stage's own counters.
    const snapshot = encap.stats();
    snapshot.dropped.fragment = 99;
    snapshot.packetsIn = 0;
    expect(encap.stats()).toMatchObject({ packetsIn: 5, dropped: { fragment: 1 } });
  });

  it('dummies and NAT keepalives come out as raw IPv4 from the outermost SA, and are counted', () => {
    const config = saConfig('aes-gcm-16', 'tunnel', { natt: { srcPort: 4500, dstPort: 4500 } });
    const { tx, rx } = saPair(config);
    const inner = new SecurityAssociation(saConfig('null-hmac-sha256-128', 'tunnel', { spi: 9 }));
    const encap = new EspEncapStage([inner, tx]);
    const out: Packet[] = [];
    const emit = (p: Packet) => out.push({ ...p, data: Buffer.from(p.data) });
    encap.emitDummy(64, 5n, emit);
    encap.emitNatKeepalive(6n, emit);
    expect(out.map((p) => [p.link, p.ts, p.data[9], p.data.readUInt16BE(22)])).toEqual([
      [LinkType.IPV4, 5n, 17, 4500],
      [LinkType.IPV4, 6n, 17, 4500],
    ]);
    expect(out[1]!.data.length).toBe(29);
    expect(encap.stats()).toMatchObject({ packetsIn: 0, packetsOut: 2, dummies: 1 });
    const decap = new EspDecapStage([rx]);
    for (const p of out) decap.process(p, () => expect.unreachable('nothing to deliver'));
    expect(decap.stats()).toEqual({
      packetsIn: 2,
      packetsOut: 0,
      dropped: { dummy: 1, 'natt-keepalive': 1 },
      passedThrough: 0,
      layersRemoved: 0,
    });
  });

  it('the decapsulation stage refuses bad configuration', () => {
    expect(() => new EspDecapStage([], { maxLayers: 0 })).toThrow(
      'maxLayers must be a positive integer, got 0',
    );
    expect(() => new EspEncapStage([])).toThrow('a telescope needs at least one SA');
  });

  it('the decapsulation stage removes at most maxLayers layers', () => {
    const configs = [1, 2, 3].map((spi) => saConfig('aes-gcm-16', 'tunnel', { spi }));
    let pkt = udpPacket();
    for (const c of configs) pkt = mustSeal(new SecurityAssociation(c), pkt);
    const decap = new EspDecapStage(
      configs.map((c) => new SecurityAssociation(c)),
      { maxLayers: 2 },
    );
    const got = runOnce(decap, frame(LinkType.IPV4, pkt)).emitted;
    expect(got).toHaveLength(1);
    expect(got[0]!.data.readUInt32BE(20)).toBe(1);
    expect(decap.stats().layersRemoved).toBe(2);
  });
});

describe('per-packet TFC padding (RFC 4303 §2.7) from a padding policy', () => {
  it('pads each inner packet to the policy’s target inside the innermost SA; the receiver strips it', () => {
    const { tx, rx } = saPair(saConfig('chacha20-poly1305', 'tunnel'));
    const buckets = sizeBuckets([256, 512, 1024]);
    const encap = new EspEncapStage([tx], { padding: buckets });
    const decap = new EspDecapStage([rx]);
    for (const size of [0, 100, 300, 700]) {
      const inner = udpPacket({ payload: Buffer.alloc(size, 7) });
      const [sealed] = runOnce(encap, { data: inner, ts: 0n, link: LinkType.IPV4 }).emitted;
      // Outer IPv4 20 + ESP 8 + IV 8 + padded inner + pad to 4 + 2 + ICV 16.
      const target = buckets.target(inner.length);
      const espData = target + 2 + ((4 - ((target + 2) % 4)) % 4);
      expect(sealed!.data.length).toBe(20 + 8 + 8 + espData + 16);
      expect(runOnce(decap, sealed!).emitted.map((p) => p.data)).toEqual([inner]);
    }
  });

  it('needs the innermost SA in tunnel mode', () => {
    const transport = new SecurityAssociation(saConfig('aes-gcm-16', 'transport'));
    expect(() => new EspEncapStage([transport], { padding: fixedSize(500) })).toThrow(
      'padding needs the innermost SA in tunnel mode; 0x0000a5f8 is transport',
    );
  });
});
