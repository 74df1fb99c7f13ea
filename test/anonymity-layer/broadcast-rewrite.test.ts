/**
 * The broadcast source rewrite: after the incremental (RFC 1624) update every checksum equals a full
 * recomputation — for random packets, for fragments (the transport checksum rides in whichever fragment
 * carries it), for the kernel's own packets from examples/kernel-mix.pcap, and in ICMP quotes — and the
 * stages rewrite what the scheme needs and count what they refuse.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BroadcastReplyStage,
  BroadcastSourceStage,
  isIcmpError,
  optionsCarryAddresses,
  rewriteIcmpQuotedAddress,
  rewriteIpv4Destination,
  rewriteIpv4Source,
} from '../../src/anonymity-layer/broadcast-rewrite.js';
import { BroadcastSubnet } from '../../src/anonymity-layer/broadcast-subnet.js';
import { checksumVerifies, internetChecksum, ipv4PseudoHeaderSum } from '../../src/codec/checksum.js';
import { parseIpv4 } from '../../src/codec/ipv4.js';
import { parseCaptureBuffer } from '../../src/io/capture-file.js';
import { LinkType, type Packet } from '../../src/packet.js';
import type { Stage } from '../../src/stages/stage.js';
import { PING_RR } from '../codec/fixtures/veth-capture.js';
import { hex } from '../helpers/bytes.js';
import {
  ANON,
  anonPacket,
  carriedChecksums,
  ethernet,
  fragment,
  ICMP,
  icmpPacket,
  reassemble,
  recomputedChecksums,
  TCP,
  tcpPacket,
  UDP,
  udpPacket,
} from './ipv4-packets.js';

const SUBNET = '198.18.5.0/24';
const HOST = parseIpv4('198.18.5.7');
const BROADCAST = parseIpv4('198.18.5.255');
const REMOTE = parseIpv4('203.0.113.80');

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 0, max: 0xffff });
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

/** Random packets of every protocol the rewrite treats differently, with correct checksums. */
const anyPacket = fc.oneof(
  fc
    .record({
      src: u32,
      dst: u32,
      srcPort: port,
      dstPort: port,
      tcpFlags: fc.integer({ min: 0, max: 0x1ff }),
    })
    .chain((t) => bytes(600).map((payload) => tcpPacket(t, { ...t, flags: t.tcpFlags, payload }))),
  fc
    .record({ src: u32, dst: u32, srcPort: port, dstPort: port, noChecksum: fc.boolean() })
    .chain((u) => bytes(600).map((payload) => udpPacket(u, { ...u, payload }))),
  fc
    .record({ src: u32, dst: u32, type: fc.constantFrom(0, 8) })
    .chain((i) => bytes(100).map((body) => icmpPacket(i, { type: i.type, code: 0, body }))),
  fc.record({ src: u32, dst: u32, hi: u32, lo: u32 }).map((a) => anonPacket(a, a.hi, a.lo)),
);

function runStage(stage: Stage, packets: Packet[]): Packet[] {
  const out: Packet[] = [];
  for (const p of packets) stage.process(p, (q) => out.push({ ...q, data: Buffer.from(q.data) }));
  return out;
}

function raw(data: Buffer): Packet {
  return { data, ts: 1n, link: LinkType.IPV4 };
}

describe('rewriteIpv4Source / rewriteIpv4Destination', () => {
  it('leaves every checksum equal to a full recomputation, for any packet and any new address', () => {
    fc.assert(
      fc.property(anyPacket, u32, fc.boolean(), (packet, addr, source) => {
        const before = carriedChecksums(packet);
        const result = source ? rewriteIpv4Source(packet, 0, addr) : rewriteIpv4Destination(packet, 0, addr);
        expect(result).toBe('ok');
        expect(packet.readUInt32BE(source ? 12 : 16)).toBe(addr);
        expect(carriedChecksums(packet)).toEqual(recomputedChecksums(packet));
        // A UDP datagram sent without a checksum still has none.
        if (packet[9] === UDP && before.transport === 0) expect(carriedChecksums(packet).transport).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('sends a UDP checksum that comes out 0 as 0xffff', () => {
    // Choose the last payload word so that, from the broadcast source, the checksum computes to 0.
    const packet = udpPacket(
      { src: BROADCAST, dst: REMOTE },
      { srcPort: 40000, dstPort: 53, payload: Buffer.alloc(2) },
    );
    packet.writeUInt16BE(0, 26);
    const sum = internetChecksum(packet, 20, 10, ipv4PseudoHeaderSum(packet, 0, UDP, 10));
    packet.writeUInt16BE(sum, 28); // the payload word now makes the sum 0xffff, i.e. checksum 0
    packet.writeUInt16BE(0xffff, 26);
    expect(checksumVerifies(packet, 20, 10, ipv4PseudoHeaderSum(packet, 0, UDP, 10))).toBe(true);
    // The same datagram from the host, with its correct checksum, is what the host sends.
    expect(rewriteIpv4Source(packet, 0, HOST)).toBe('ok');
    expect(carriedChecksums(packet)).toEqual(recomputedChecksums(packet));
    expect(rewriteIpv4Source(packet, 0, BROADCAST)).toBe('ok');
    expect(packet.readUInt16BE(26)).toBe(0xffff);
    expect(recomputedChecksums(packet).transport).toBe(0xffff);
  });

  it('rewrites fragments so the reassembled datagram checks, wherever the transport checksum travels', () => {
    const datagram = fc.oneof(
      fc
        .record({ srcPort: port, dstPort: port })
        .chain((t) => bytes(1200).map((payload) => tcpPacket({ src: HOST, dst: REMOTE }, { ...t, payload }))),
      fc
        .record({ srcPort: port, dstPort: port })
        .chain((u) =>
          fc
            .uint8Array({ minLength: 1, maxLength: 1200 })
            .map((payload) => udpPacket({ src: HOST, dst: REMOTE }, { ...u, payload: Buffer.from(payload) })),
        ),
    );
    // Fragment payload sizes in 8-byte units: 1 puts a TCP checksum (offset 16) in the second or third fragment.
    const sizes = fc.array(
      fc.integer({ min: 1, max: 40 }).map((n) => n * 8),
      { minLength: 1, maxLength: 8 },
    );
    fc.assert(
      fc.property(datagram, sizes, fc.integer(), (packet, cuts, shuffle) => {
        const frags = fragment(packet, cuts);
        // Any order: a fragment is rewritten on its own, without knowing the others.
        const order = frags
          .map((_, i) => i)
          .sort((a, b) => ((a * 7919 + shuffle) % 13) - ((b * 7919 + shuffle) % 13));
        for (const i of order) {
          expect(rewriteIpv4Source(frags[i]!, 0, BROADCAST)).toBe('ok');
          expect(checksumVerifies(frags[i]!, 0, 20)).toBe(true);
        }
        const whole = reassemble(frags);
        expect(whole.readUInt32BE(12)).toBe(BROADCAST);
        const { transport } = recomputedChecksums(whole);
        expect(carriedChecksums(whole).transport).toBe(transport);
      }),
      { numRuns: 300 },
    );
  });

  it('updates the checksum in a capture cut short after it, and refuses one cut before it untouched', () => {
    const packet = tcpPacket(
      { src: HOST, dst: REMOTE },
      { srcPort: 40000, dstPort: 443, payload: hex('0102') },
    );
    const expected = Buffer.from(packet);
    rewriteIpv4Source(expected, 0, BROADCAST);
    const cut = Buffer.from(packet.subarray(0, 38)); // up to and including the TCP checksum
    expect(rewriteIpv4Source(cut, 0, BROADCAST)).toBe('ok');
    expect(cut).toEqual(expected.subarray(0, 38));
    const shorter = Buffer.from(packet.subarray(0, 37));
    expect(rewriteIpv4Source(shorter, 0, BROADCAST)).toBe('truncated');
    expect(shorter).toEqual(packet.subarray(0, 37));
    expect(rewriteIpv4Source(packet.subarray(0, 19), 0, BROADCAST)).toBe('truncated');
  });

  it('refuses headers that lie, changing nothing', () => {
    const packet = udpPacket({ src: HOST, dst: REMOTE }, { srcPort: 1, dstPort: 2, payload: hex('aa') });
    const cases: [string, (b: Buffer) => void][] = [
      ['IPv6 version', (b) => (b[0] = 0x65)],
      ['IHL below 5', (b) => (b[0] = 0x44)],
      ['total length below the header', (b) => b.writeUInt16BE(19, 2)],
      // A first fragment whose 4-byte payload ends inside the UDP checksum field.
      [
        'fragment ending inside the checksum',
        (b) => {
          b.writeUInt16BE(27, 2);
          b.writeUInt16BE(0x2000, 6);
        },
      ],
    ];
    for (const [what, spoil] of cases) {
      const b = Buffer.from(packet);
      spoil(b);
      const before = Buffer.from(b);
      expect(rewriteIpv4Source(b, 0, BROADCAST), what).toBe('malformed');
      expect(b, what).toEqual(before);
    }
    const options = Buffer.from(packet);
    options[0] = 0x46; // IHL 6, but only 20 bytes captured before the cut
    expect(rewriteIpv4Source(options.subarray(0, 22), 0, BROADCAST)).toBe('truncated');
  });

  it('gives the kernel-made packets of examples/kernel-mix.pcap checksums that a full computation agrees with', () => {
    const file = readFileSync(new URL('../../examples/kernel-mix.pcap', import.meta.url));
    const ipv4 = [...parseCaptureBuffer(file)]
      .filter((p) => p.data.readUInt16BE(12) === 0x0800)
      .map((p) => Buffer.from(p.data.subarray(14)));
    const fromHost = ipv4.filter((p) => p.readUInt32BE(12) === parseIpv4('198.18.0.1'));
    // ICMP echo, TCP handshake/data/FIN, UDP, and a UDP datagram in three fragments (frames 27–29).
    expect(new Set(fromHost.map((p) => p[9]))).toEqual(new Set([ICMP, TCP, UDP]));
    const fragments = fromHost.filter((p) => (p.readUInt16BE(6) & 0x3fff) !== 0);
    expect(fragments).toHaveLength(3);
    const whole = fromHost.filter((p) => !fragments.includes(p));
    for (const p of whole) expect(carriedChecksums(p)).toEqual(recomputedChecksums(p)); // the kernel's own
    const bcast = parseIpv4('198.18.0.255');
    for (const p of whole) {
      expect(rewriteIpv4Source(p, 0, bcast)).toBe('ok');
      expect(carriedChecksums(p)).toEqual(recomputedChecksums(p));
    }
    for (const p of fragments) expect(rewriteIpv4Source(p, 0, bcast)).toBe('ok');
    const datagram = reassemble(fragments);
    expect(datagram.readUInt16BE(2)).toBe(20 + 1480 + 1480 + 48); // as tshark reassembles frames 27–29
    expect(carriedChecksums(datagram).transport).toBe(recomputedChecksums(datagram).transport);
  });

  it('turns a reply sent to the broadcast address back into the kernel’s bytes, byte for byte', () => {
    const file = readFileSync(new URL('../../examples/kernel-mix.pcap', import.meta.url));
    const toHost = [...parseCaptureBuffer(file)]
      .filter(
        (p) => p.data.readUInt16BE(12) === 0x0800 && p.data.readUInt32BE(30) === parseIpv4('198.18.0.1'),
      )
      .map((p) => Buffer.from(p.data.subarray(14)));
    expect(toHost.length).toBeGreaterThan(5);
    for (const original of toHost) {
      const p = Buffer.from(original);
      expect(rewriteIpv4Destination(p, 0, parseIpv4('198.18.0.255'))).toBe('ok');
      expect(carriedChecksums(p)).toEqual(recomputedChecksums(p));
      expect(rewriteIpv4Destination(p, 0, parseIpv4('198.18.0.1'))).toBe('ok');
      expect(p).toEqual(original);
    }
  });
});

describe('ICMP quotes', () => {
  /** Port unreachable from the host about a datagram REMOTE sent to it, quoting `quoteLength` bytes. */
  function portUnreachable(quoteLength: number): Buffer {
    const offending = udpPacket(
      { src: REMOTE, dst: HOST },
      { srcPort: 53, dstPort: 40000, payload: Buffer.from('pktveil quoted datagram') },
    );
    return icmpPacket(
      { src: HOST, dst: REMOTE },
      { type: 3, code: 3, body: offending.subarray(0, quoteLength) },
    );
  }

  it('rewrites a quoted address with the quote’s checksums and the ICMP checksum that covers them', () => {
    const msg = portUnreachable(51); // the whole offending datagram
    expect(isIcmpError(msg[20]!)).toBe(true);
    expect(rewriteIcmpQuotedAddress(msg, 20, 16, BROADCAST)).toBe('ok');
    const quote = msg.subarray(28);
    expect(quote.readUInt32BE(16)).toBe(BROADCAST);
    expect(carriedChecksums(quote)).toEqual(recomputedChecksums(quote));
    expect(checksumVerifies(msg, 20, msg.length - 20)).toBe(true);
  });

  it('leaves a transport checksum the quote does not reach, and still gets the ICMP checksum right', () => {
    const msg = portUnreachable(20 + 4); // the quote stops after the UDP ports
    expect(rewriteIcmpQuotedAddress(msg, 20, 16, BROADCAST)).toBe('ok');
    expect(checksumVerifies(msg, 28, 20)).toBe(true);
    expect(checksumVerifies(msg, 20, msg.length - 20)).toBe(true);
    expect(rewriteIcmpQuotedAddress(portUnreachable(19), 20, 16, BROADCAST)).toBe('truncated');
  });
});

describe('optionsCarryAddresses', () => {
  it('finds Record Route in a kernel-made ping -R, and none in NOP-only options', () => {
    expect(optionsCarryAddresses(PING_RR, 14)).toBe(true);
    const nops = udpPacket({ src: HOST, dst: REMOTE, options: hex('01010100') }, { srcPort: 1, dstPort: 2 });
    expect(optionsCarryAddresses(nops, 0)).toBe(false);
    const broken = udpPacket(
      { src: HOST, dst: REMOTE, options: hex('07ff0000') },
      { srcPort: 1, dstPort: 2 },
    );
    expect(optionsCarryAddresses(broken, 0)).toBeNull();
  });
});

describe('BroadcastSourceStage', () => {
  const stage = () => new BroadcastSourceStage({ subnet: SUBNET });

  it('sends the host’s IPv4 packets from the broadcast address, over Ethernet and raw IP, input untouched', () => {
    const s = stage();
    const tcp = tcpPacket({ src: HOST, dst: REMOTE }, { srcPort: 40000, dstPort: 443 });
    const anon = anonPacket({ src: HOST, dst: REMOTE }, 0x11223344, 0x55667788);
    const frame = ethernet(tcp);
    const frameCopy = Buffer.from(frame);
    const out = runStage(s, [{ data: frame, ts: 5n, link: LinkType.ETHERNET, ifIndex: 1 }, raw(anon)]);
    expect(frame).toEqual(frameCopy); // the borrowed input is not written
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ ts: 5n, link: LinkType.ETHERNET, ifIndex: 1 });
    for (const [p, off] of [
      [out[0]!.data, 14],
      [out[1]!.data, 0],
    ] as const) {
      const ip = p.subarray(off);
      expect(ip.readUInt32BE(12)).toBe(BROADCAST);
      expect(carriedChecksums(ip)).toEqual(recomputedChecksums(ip));
    }
    expect(out[0]!.data.subarray(0, 14)).toEqual(frame.subarray(0, 14));
    expect(out[1]!.data[9]).toBe(ANON);
    expect(s.stats()).toMatchObject({ packetsIn: 2, packetsOut: 2, rewritten: 2, dropped: {} });
  });

  it('rewrites the borrowed bytes themselves with inPlace', () => {
    const s = new BroadcastSourceStage({ subnet: SUBNET, inPlace: true });
    const p = raw(udpPacket({ src: HOST, dst: REMOTE }, { srcPort: 5, dstPort: 6 }));
    let emitted: Packet | null = null;
    s.process(p, (q) => (emitted = q));
    expect(emitted).toBe(p);
    expect(p.data.readUInt32BE(12)).toBe(BROADCAST);
  });

  it('passes ARP, local traffic and packets already from the broadcast address; drops what would show the host', () => {
    const s = stage();
    const ipv6 = hex(
      '6000000000083a40 20010db8000000000000000000000001 20010db8000000000000000000000002 8000000000000000',
    );
    const options = udpPacket(
      { src: HOST, dst: REMOTE, options: PING_RR.subarray(34, 74) },
      { srcPort: 1, dstPort: 2 },
    );
    const out = runStage(s, [
      { data: hex('ffffffffffff 0e2fdfd27da7 0806 0001080006040001'), ts: 1n, link: LinkType.ETHERNET },
      raw(udpPacket({ src: HOST, dst: parseIpv4('198.18.5.9') }, { srcPort: 1, dstPort: 2 })),
      raw(udpPacket({ src: BROADCAST, dst: REMOTE }, { srcPort: 1, dstPort: 2 })),
      raw(udpPacket({ src: parseIpv4('198.18.6.7'), dst: REMOTE }, { srcPort: 1, dstPort: 2 })),
      raw(udpPacket({ src: parseIpv4('198.18.5.0'), dst: REMOTE }, { srcPort: 1, dstPort: 2 })),
      { data: ipv6, ts: 1n, link: LinkType.RAW },
      raw(options),
      raw(udpPacket({ src: HOST, dst: REMOTE }, { srcPort: 1, dstPort: 2 }).subarray(0, 24)),
    ]);
    expect(out).toHaveLength(3);
    expect(s.stats()).toMatchObject({
      packetsIn: 8,
      packetsOut: 3,
      passedThrough: 1,
      local: 1,
      alreadyBroadcast: 1,
      rewritten: 0,
      dropped: { 'source-outside-subnet': 2, ipv6: 1, 'address-in-ip-options': 1, truncated: 1 },
    });
    const passIpv6 = new BroadcastSourceStage({ subnet: SUBNET, passIpv6: true });
    expect(runStage(passIpv6, [{ data: ipv6, ts: 1n, link: LinkType.RAW }])).toHaveLength(1);
  });

  it('hides the host in the ICMP errors it sends: the quoted destination becomes the broadcast address', () => {
    const s = stage();
    const offending = udpPacket(
      { src: REMOTE, dst: HOST },
      { srcPort: 53, dstPort: 40000, payload: hex('abcd') },
    );
    const msg = icmpPacket({ src: HOST, dst: REMOTE }, { type: 3, code: 3, body: offending });
    const [out] = runStage(s, [raw(msg)]);
    const ip = out!.data;
    expect(ip.readUInt32BE(12)).toBe(BROADCAST);
    expect(ip.readUInt32BE(28 + 16)).toBe(BROADCAST);
    expect(ip.includes(Buffer.from([198, 18, 5, 7]))).toBe(false);
    expect(checksumVerifies(ip, 0, 20)).toBe(true);
    expect(checksumVerifies(ip, 20, ip.length - 20)).toBe(true);
    expect(carriedChecksums(ip.subarray(28))).toEqual(recomputedChecksums(ip.subarray(28)));
    // An echo request quotes nothing and is rewritten like any packet.
    runStage(s, [raw(icmpPacket({ src: HOST, dst: REMOTE }, { type: 8, code: 0, body: hex('0102') }))]);
    expect(s.stats()).toMatchObject({ rewritten: 2, quotesRewritten: 1 });
    // A quote cut inside its IP header cannot be cleaned: the error is dropped, never sent half-hidden.
    runStage(s, [
      raw(icmpPacket({ src: HOST, dst: REMOTE }, { type: 3, code: 3, body: offending.subarray(0, 12) })),
    ]);
    expect(s.stats().dropped).toEqual({ truncated: 1 });
  });

  it('refuses a subnet without a broadcast address or with host bits, saying what to write', () => {
    expect(() => new BroadcastSourceStage({ subnet: '198.18.5.0/31' })).toThrow(/no broadcast address/);
    expect(() => new BroadcastSourceStage({ subnet: '198.18.5.1/24' })).toThrow(/write 198\.18\.5\.0\/24/);
    expect(() => new BroadcastSourceStage({ subnet: '198.18.5/24' })).toThrow(/dotted-quad/);
    expect(BroadcastSubnet.parse('198.18.4.0/23').broadcast).toBe(parseIpv4('198.18.5.255'));
  });
});

describe('BroadcastReplyStage', () => {
  it('gives replies to the broadcast address the host’s address, and its own quotes back', () => {
    const s = new BroadcastReplyStage({ subnet: SUBNET, hostAddress: HOST });
    const reply = udpPacket(
      { src: REMOTE, dst: BROADCAST },
      { srcPort: 53, dstPort: 40000, payload: hex('0a0b') },
    );
    // A router's "fragmentation needed" about a packet the host sent from the broadcast address.
    const sent = tcpPacket(
      { src: BROADCAST, dst: REMOTE },
      { srcPort: 40000, dstPort: 443, payload: hex('01') },
    );
    const tooBig = icmpPacket(
      { src: parseIpv4('192.0.2.1'), dst: BROADCAST },
      { type: 3, code: 4, rest: 1400, body: sent },
    );
    const other = udpPacket({ src: REMOTE, dst: parseIpv4('198.18.5.9') }, { srcPort: 53, dstPort: 1 });
    const out = runStage(s, [raw(reply), raw(tooBig), raw(other)]);
    expect(out).toHaveLength(3);
    const [r, t] = [out[0]!.data, out[1]!.data];
    expect(r.readUInt32BE(16)).toBe(HOST);
    expect(carriedChecksums(r)).toEqual(recomputedChecksums(r));
    expect(t.readUInt32BE(16)).toBe(HOST);
    expect(t.readUInt32BE(28 + 12)).toBe(HOST);
    expect(checksumVerifies(t, 0, 20)).toBe(true);
    expect(checksumVerifies(t, 20, t.length - 20)).toBe(true);
    expect(carriedChecksums(t.subarray(28))).toEqual(recomputedChecksums(t.subarray(28)));
    expect(out[2]!.data).toEqual(other);
    expect(s.stats()).toMatchObject({ rewritten: 2, quotesRewritten: 1, passedThrough: 1, dropped: {} });
  });

  it('refuses a host address outside the subnet', () => {
    expect(() => new BroadcastReplyStage({ subnet: SUBNET, hostAddress: BROADCAST })).toThrow(
      /198\.18\.5\.255 is not a host address of 198\.18\.5\.0\/24/,
    );
  });
});
