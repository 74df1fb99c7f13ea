/**
 * The router's broadcast guard: each rule of its policy (module doc) on a packet built for it, fragments
 * following their first fragment's verdict, and a real conversation (examples/kernel-mix.pcap) aimed at the
 * broadcast address: the kernel's replies go in, its requests do not.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rewriteIpv4Destination, rewriteIpv4Source } from '../../src/anonymity-layer/broadcast-rewrite.js';
import { parseIpv4 } from '../../src/codec/ipv4.js';
import { BroadcastGuardStage } from '../../src/filter/broadcast-guard.js';
import { parseCaptureBuffer } from '../../src/io/capture-file.js';
import { LinkType, type Packet } from '../../src/packet.js';
import {
  anonPacket,
  ethernet,
  fragment,
  icmpPacket,
  ipv4Packet,
  tcpPacket,
  udpPacket,
} from '../anonymity-layer/ipv4-packets.js';
import { hex } from '../helpers/bytes.js';

const SUBNET = '198.18.5.0/24';
const BROADCAST = parseIpv4('198.18.5.255');
const REMOTE = parseIpv4('203.0.113.80');
const TO_BCAST = { src: REMOTE, dst: BROADCAST };

const SYN = 0x002;
const RST = 0x004;
const ACK = 0x010;
const FIN = 0x001;
const PSH = 0x008;

function raw(data: Buffer, ts = 1_000_000_000n): Packet {
  return { data, ts, link: LinkType.IPV4 };
}

/** The verdict of a fresh guard on one packet: 'allowed', 'passed' or the drop reason. */
function verdict(data: Buffer, guard = new BroadcastGuardStage({ subnets: [SUBNET] })): string {
  const before = guard.stats();
  let out = false;
  guard.process(raw(data), () => (out = true));
  const after = guard.stats();
  if (out) return (after.allowed as number) > (before.allowed as number) ? 'allowed' : 'passed';
  const reasons = Object.keys(after.dropped).filter((r) => after.dropped[r] !== before.dropped[r]);
  return reasons.join(',');
}

describe('BroadcastGuardStage policy', () => {
  it('lets in the anonymity layer, whatever it carries', () => {
    expect(verdict(anonPacket(TO_BCAST, 1, 2))).toBe('allowed');
    const guard254 = new BroadcastGuardStage({ subnets: [SUBNET], anonProtocol: 254 });
    expect(verdict(anonPacket(TO_BCAST, 1, 2, 41, 254), guard254)).toBe('allowed');
    expect(verdict(anonPacket(TO_BCAST, 1, 2), guard254)).toBe('protocol');
  });

  it('lets in TCP with ACK set and resets; drops connection requests and scans', () => {
    const tcp = (flags: number) => tcpPacket(TO_BCAST, { srcPort: 443, dstPort: 40000, flags });
    expect(verdict(tcp(SYN | ACK))).toBe('allowed');
    expect(verdict(tcp(ACK))).toBe('allowed');
    expect(verdict(tcp(PSH | ACK))).toBe('allowed');
    expect(verdict(tcp(FIN | ACK))).toBe('allowed');
    expect(verdict(tcp(RST | ACK))).toBe('allowed');
    expect(verdict(tcp(RST))).toBe('allowed');
    expect(verdict(tcp(SYN))).toBe('tcp-syn');
    expect(verdict(tcp(FIN))).toBe('tcp-no-ack');
    expect(verdict(tcp(0))).toBe('tcp-no-ack'); // NULL scan
    expect(verdict(tcp(FIN | PSH | 0x020))).toBe('tcp-no-ack'); // Xmas scan
  });

  it('lets in UDP to the hosts’ ephemeral ports only (configurable)', () => {
    const udp = (dstPort: number) => udpPacket(TO_BCAST, { srcPort: 53, dstPort });
    expect(verdict(udp(32768))).toBe('allowed');
    expect(verdict(udp(60999))).toBe('allowed');
    for (const port of [7, 19, 53, 123, 1900, 32767, 61000])
      expect(verdict(udp(port)), `port ${port}`).toBe('udp-port');
    const bsd = new BroadcastGuardStage({ subnets: [SUBNET], ephemeralPorts: [49152, 65535] });
    expect(verdict(udp(65535), bsd)).toBe('allowed');
    expect(verdict(udp(40000), bsd)).toBe('udp-port');
  });

  it('lets in ICMP replies and errors; drops echo and other requests and other types', () => {
    const icmp = (type: number, code = 0) => icmpPacket(TO_BCAST, { type, code, body: hex('4500001c') });
    for (const type of [0, 3, 11, 12]) expect(verdict(icmp(type)), `type ${type}`).toBe('allowed');
    expect(verdict(icmp(8))).toBe('icmp-echo-request');
    for (const type of [10, 13, 15, 17]) expect(verdict(icmp(type)), `type ${type}`).toBe('icmp-request');
    for (const type of [4, 5, 9, 14, 18, 42]) expect(verdict(icmp(type)), `type ${type}`).toBe('icmp-type');
  });

  it('drops other protocols and sources inside the subnet', () => {
    expect(verdict(ipv4Packet(TO_BCAST, 47, hex('00000800')))).toBe('protocol'); // GRE
    expect(verdict(ipv4Packet(TO_BCAST, 50, hex('0000a5f800000001')))).toBe('protocol'); // ESP
    const spoofed = udpPacket(
      { src: parseIpv4('198.18.5.9'), dst: BROADCAST },
      { srcPort: 53, dstPort: 40000 },
    );
    expect(verdict(spoofed)).toBe('source-inside-subnet');
    const fromBroadcast = anonPacket({ src: BROADCAST, dst: BROADCAST }, 1, 2);
    expect(verdict(fromBroadcast)).toBe('source-inside-subnet');
  });

  it('passes what is not a directed broadcast into a guarded subnet, and drops what it cannot read', () => {
    expect(
      verdict(
        tcpPacket({ src: REMOTE, dst: parseIpv4('198.18.5.7') }, { srcPort: 1, dstPort: 2, flags: SYN }),
      ),
    ).toBe('passed');
    expect(
      verdict(
        icmpPacket({ src: REMOTE, dst: parseIpv4('198.18.6.255') }, { type: 8, code: 0, body: hex('00') }),
      ),
    ).toBe('passed');
    expect(verdict(hex('6000000000083a40'))).toBe('passed'); // IPv6
    expect(verdict(tcpPacket(TO_BCAST, { srcPort: 1, dstPort: 2, flags: SYN }).subarray(0, 33))).toBe(
      'truncated',
    );
    expect(verdict(udpPacket(TO_BCAST, { srcPort: 1, dstPort: 40000 }).subarray(0, 23))).toBe('truncated');
    const lying = udpPacket(TO_BCAST, { srcPort: 1, dstPort: 40000 });
    lying.writeUInt16BE(19, 2);
    expect(verdict(lying)).toBe('malformed');
  });

  it('guards several subnets, over Ethernet too', () => {
    const guard = new BroadcastGuardStage({ subnets: [SUBNET, '198.18.8.0/22'] });
    const out: Packet[] = [];
    const echo = (dst: string) =>
      ethernet(icmpPacket({ src: REMOTE, dst: parseIpv4(dst) }, { type: 8, code: 0, body: hex('00') }));
    for (const dst of ['198.18.5.255', '198.18.11.255', '198.18.8.255'])
      guard.process({ data: echo(dst), ts: 1n, link: LinkType.ETHERNET }, (p) => out.push(p));
    expect(out).toHaveLength(1); // 198.18.8.255 is a host address of the /22
    expect(guard.stats()).toMatchObject({
      packetsIn: 3,
      packetsOut: 1,
      allowed: 0,
      passedThrough: 1,
      dropped: { 'icmp-echo-request': 2 },
    });
  });

  it('refuses configurations that cannot work, saying what to change', () => {
    expect(() => new BroadcastGuardStage({ subnets: [] })).toThrow(/at least one subnet/);
    expect(() => new BroadcastGuardStage({ subnets: ['198.18.5.0/32'] })).toThrow(/no broadcast address/);
    expect(() => new BroadcastGuardStage({ subnets: [SUBNET], ephemeralPorts: [60000, 1000] })).toThrow(
      /low ≤ high/,
    );
    expect(() => new BroadcastGuardStage({ subnets: [SUBNET], anonProtocol: 256 })).toThrow(
      /anonProtocol 256/,
    );
  });
});

describe('BroadcastGuardStage fragments', () => {
  const datagram = (dstPort: number, id: number) =>
    fragment(
      udpPacket({ ...TO_BCAST, id, flags: 0 }, { srcPort: 53, dstPort, payload: Buffer.alloc(3000, 1) }),
      [1480, 1480],
    );

  function run(guard: BroadcastGuardStage, packets: [Buffer, bigint][]): number {
    let n = 0;
    for (const [data, ts] of packets) guard.process(raw(data, ts), () => n++);
    return n;
  }

  it('lets in the rest of a datagram whose first fragment was allowed, and only that', () => {
    const guard = new BroadcastGuardStage({ subnets: [SUBNET] });
    const reply = datagram(40000, 0x1111);
    const flood = datagram(19, 0x2222); // chargen: the first fragment is refused, so is the rest
    expect(reply).toHaveLength(3);
    const t = 1_700_000_000_000_000_000n;
    expect(
      run(
        guard,
        reply.map((f, i) => [f, t + BigInt(i)]),
      ),
    ).toBe(3);
    expect(
      run(
        guard,
        flood.map((f, i) => [f, t + BigInt(i)]),
      ),
    ).toBe(0);
    expect(guard.stats().dropped).toEqual({ 'udp-port': 1, 'fragment-unmatched': 2 });
  });

  it('drops later fragments that come alone, overtake their first fragment, or come too late', () => {
    const guard = new BroadcastGuardStage({ subnets: [SUBNET], fragmentMemoryMs: 1000 });
    const t = 1_700_000_000_000_000_000n;
    const [first, second, third] = datagram(40000, 0x3333);
    expect(run(guard, [[second!, t]])).toBe(0); // before its first fragment
    expect(run(guard, [[first!, t + 1n]])).toBe(1);
    expect(run(guard, [[third!, t + 999_000_000n]])).toBe(1); // within a second
    expect(run(guard, [[second!, t + 1_001_000_001n]])).toBe(0); // past it
    // Same ID from another source is another datagram.
    const [, other] = fragment(
      udpPacket(
        { src: parseIpv4('203.0.113.81'), dst: BROADCAST, id: 0x3333, flags: 0 },
        {
          srcPort: 53,
          dstPort: 40000,
          payload: Buffer.alloc(3000),
        },
      ),
      [1480],
    );
    expect(run(guard, [[other!, t + 2n]])).toBe(0);
    expect(guard.stats().dropped).toEqual({ 'fragment-unmatched': 3 });
  });
});

describe('BroadcastGuardStage on a real conversation', () => {
  it('lets the kernel’s replies into the subnet and keeps its requests out (examples/kernel-mix.pcap)', () => {
    // 198.18.0.1 is the host, 198.18.0.2 plays the remote server: every IPv4 packet is aimed at the
    // broadcast address of the host's subnet, from outside it.
    const file = readFileSync(new URL('../../examples/kernel-mix.pcap', import.meta.url));
    const guard = new BroadcastGuardStage({ subnets: ['198.18.0.0/24'], ephemeralPorts: [32768, 60999] });
    const verdicts: string[] = [];
    for (const p of parseCaptureBuffer(file)) {
      const data = Buffer.from(p.data);
      if (data.readUInt16BE(12) !== 0x0800) continue;
      const ip = data.subarray(14);
      const fromServer = ip.readUInt32BE(12) === parseIpv4('198.18.0.2');
      rewriteIpv4Source(ip, 0, fromServer ? REMOTE : parseIpv4('192.0.2.1'));
      rewriteIpv4Destination(ip, 0, parseIpv4('198.18.0.255'));
      let allowed = false;
      guard.process({ ...p, data }, () => (allowed = true));
      verdicts.push(`${fromServer ? 'reply' : 'request'} ${allowed ? 'in' : 'out'}`);
    }
    // Replies: echo reply, SYN-ACK and the ACK/data/FIN-ACK segments of the HTTP answer: all 8 in.
    // Requests: echo request, SYN, then ACK-carrying segments (which are allowed: the guard cannot tell
    // them from replies), the UDP datagrams to port 5353 and their later fragments: out.
    const count = (v: string) => verdicts.filter((x) => x === v).length;
    expect(count('reply in')).toBe(8);
    expect(count('reply out')).toBe(0);
    expect(count('request out')).toBe(6); // echo request, SYN, 2 UDP to 5353, 2 later fragments
    expect(guard.stats().dropped).toEqual({
      'icmp-echo-request': 1,
      'tcp-syn': 1,
      'udp-port': 2,
      'fragment-unmatched': 2,
    });
  });
});
