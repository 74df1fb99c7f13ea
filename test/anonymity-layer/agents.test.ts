import { describe, expect, it } from 'vitest';
import { AnonHostAgent, type AnonHostAgentOptions } from '../../src/anonymity-layer/host-agent.js';
import { AnonResponderAgent } from '../../src/anonymity-layer/responder-agent.js';
import { checksumVerifies, ipv4PseudoHeaderSum } from '../../src/codec/checksum.js';
import { ipv4String, parseIpv4 } from '../../src/codec/ip-address.js';
import { LinkType, type Packet } from '../../src/packet.js';
import type { Stage } from '../../src/stages/stage.js';
import { icmpPacket, TCP, tcpPacket, UDP, udpPacket } from './ipv4-packets.js';

const SUBNET = '198.18.5.0/24';
const BROADCAST = '198.18.5.255';
const SERVER = '198.18.9.2';
const LISTEN = 0x1122334455667788n;
const secret = (n: number) => Buffer.alloc(32, n);

function hostAgent(address: string, n: number, extra: Partial<AnonHostAgentOptions> = {}): AnonHostAgent {
  return new AnonHostAgent({
    mode: 'advanced',
    subnet: SUBNET,
    hostAddress: parseIpv4(address),
    peers: [{ name: 'server', address: parseIpv4(SERVER), secret: secret(n), listenSid: LISTEN }],
    rotateEveryPackets: 10,
    rotateEveryMs: 0,
    recordSids: true,
    ...extra,
  });
}

function responder(): AnonResponderAgent {
  return new AnonResponderAgent({
    address: parseIpv4(SERVER),
    virtualClients: '198.18.99.0/24',
    listenSid: LISTEN,
    peers: [
      { name: 'h1', secret: secret(1) },
      { name: 'h2', secret: secret(2) },
    ],
    rotateEveryPackets: 10,
    rotateEveryMs: 0,
    recordSids: true,
  });
}

/** Everything a stage emits for one packet, copied. */
function run(stage: Stage, data: Buffer, link: number = LinkType.IPV4, ts = 1_000_000n): Buffer[] {
  const out: Buffer[] = [];
  stage.process({ data, ts, link } satisfies Packet, (p) => out.push(Buffer.from(p.data)));
  return out;
}

/** An IPv4 packet's addresses, protocol, and whether its header and TCP/UDP checksums verify. */
function look(pkt: Buffer) {
  const ihl = (pkt[0]! & 0x0f) * 4;
  const total = pkt.readUInt16BE(2);
  const protocol = pkt[9]!;
  return {
    src: ipv4String(pkt.readUInt32BE(12)),
    dst: ipv4String(pkt.readUInt32BE(16)),
    protocol,
    total,
    headerOk: checksumVerifies(pkt, 0, ihl),
    transportOk: checksumVerifies(pkt, ihl, total - ihl, ipv4PseudoHeaderSum(pkt, 0, protocol, total - ihl)),
    srcPort: pkt.readUInt16BE(ihl),
    dstPort: pkt.readUInt16BE(ihl + 2),
    payload: pkt.subarray(ihl + (protocol === UDP ? 8 : 20), total).toString(),
  };
}

describe('host agent ↔ responder agent (advanced mode, in memory)', () => {
  it('carries UDP both ways: broadcast source on the wire, virtual client at the server, host address back', () => {
    const h1 = hostAgent('198.18.5.7', 1);
    const srv = responder();
    const request = udpPacket(
      { src: '198.18.5.7', dst: SERVER },
      { srcPort: 40000, dstPort: 7000, payload: Buffer.from('h1 hello') },
    );
    const [outer] = run(h1.outbound, request);
    expect(outer).toBeDefined();
    const wire = look(outer!);
    expect(wire).toMatchObject({ src: BROADCAST, dst: SERVER, protocol: 253, headerOk: true });
    expect(outer!.includes(Buffer.from('h1 hello'))).toBe(false);

    const [inner] = run(srv.fromClients, outer!);
    expect(look(inner!)).toMatchObject({
      src: '198.18.99.1',
      dst: SERVER,
      protocol: UDP,
      headerOk: true,
      transportOk: true,
      srcPort: 40000,
      dstPort: 7000,
      payload: 'h1 hello',
    });

    const reply = udpPacket(
      { src: SERVER, dst: '198.18.99.1' },
      { srcPort: 7000, dstPort: 40000, payload: Buffer.from('echo h1 hello') },
    );
    const [sealed] = run(srv.fromServer, reply);
    expect(look(sealed!)).toMatchObject({ src: SERVER, dst: BROADCAST, protocol: 253, headerOk: true });
    const [delivered] = run(h1.inbound, sealed!);
    expect(look(delivered!)).toMatchObject({
      src: SERVER,
      dst: '198.18.5.7',
      protocol: UDP,
      headerOk: true,
      transportOk: true,
      srcPort: 7000,
      dstPort: 40000,
      payload: 'echo h1 hello',
    });
  });

  it('gives two hosts on the same ports their own virtual clients, and each host only its own replies', () => {
    const hosts = [hostAgent('198.18.5.7', 1), hostAgent('198.18.5.8', 2)];
    const srv = responder();
    const virtual: string[] = [];
    hosts.forEach((h, i) => {
      const req = tcpPacket(
        { src: i === 0 ? '198.18.5.7' : '198.18.5.8', dst: SERVER },
        { srcPort: 40001, dstPort: 7001, payload: Buffer.from(`h${i + 1}`) },
      );
      const [inner] = run(srv.fromClients, run(h.outbound, req)[0]!);
      const seen = look(inner!);
      expect(seen).toMatchObject({ protocol: TCP, transportOk: true, srcPort: 40001, payload: `h${i + 1}` });
      virtual.push(seen.src);
    });
    expect(new Set(virtual).size).toBe(2);
    // The server answers each virtual client; the sealed replies are broadcast to both hosts.
    virtual.forEach((v, i) => {
      const reply = tcpPacket(
        { src: SERVER, dst: v },
        { srcPort: 7001, dstPort: 40001, payload: Buffer.from(`to h${i + 1}`) },
      );
      const [sealed] = run(srv.fromServer, reply);
      const got = hosts.map((h) => run(h.inbound, sealed!).map((p) => look(p).payload));
      expect(got[i]).toEqual([`to h${i + 1}`]);
      expect(got[1 - i]).toEqual([]);
    });
    expect(hosts[1]!.inbound.stats().dropped['unknown-sid']).toBe(1);
  });

  it('rotates SIDs every 10 packets both ways, and the log lists each SID once in order of use', () => {
    const h1 = hostAgent('198.18.5.7', 1);
    const srv = responder();
    let now = 1_000_000n;
    for (let k = 0; k < 60; k++) {
      now += 1_000_000n;
      const req = udpPacket(
        { src: '198.18.5.7', dst: SERVER },
        { srcPort: 40000, dstPort: 7000, payload: Buffer.from(`m${k}`) },
      );
      const [inner] = run(srv.fromClients, run(h1.outbound, req, LinkType.IPV4, now)[0]!, LinkType.IPV4, now);
      const { src } = look(inner!);
      const reply = udpPacket(
        { src: SERVER, dst: src },
        { srcPort: 7000, dstPort: 40000, payload: Buffer.from(`r${k}`) },
      );
      const delivered = run(
        h1.inbound,
        run(srv.fromServer, reply, LinkType.IPV4, now)[0]!,
        LinkType.IPV4,
        now,
      );
      expect(delivered.map((p) => look(p).payload)).toEqual([`r${k}`]);
    }
    const log = h1.sidLog();
    const out = log.find((e) => e.direction === 'out')!.sids;
    const inn = log.find((e) => e.direction === 'in')!.sids;
    expect(out[0]).toBe(LISTEN.toString(16));
    expect(out.length).toBeGreaterThanOrEqual(5);
    expect(inn.length).toBeGreaterThanOrEqual(5);
    expect(new Set(out).size).toBe(out.length);
    // The responder saw the host's chain in the same order, and sent the chain the host received.
    const srvLog = srv.sidLog();
    expect(srvLog.find((e) => e.direction === 'in')!.sids).toEqual(out);
    expect(srvLog.find((e) => e.direction === 'out')!.sids).toEqual(inn);
    expect(h1.stats().rotations).toBeGreaterThanOrEqual(5);
  });
});

describe('ICMP through the agents', () => {
  it('carries a ping, and an ICMP error quoting the virtual client reaches the host quoting the host', () => {
    const h1 = hostAgent('198.18.5.7', 1);
    const srv = responder();
    const ping = icmpPacket(
      { src: '198.18.5.7', dst: SERVER },
      { type: 8, code: 0, body: Buffer.from('ping') },
    );
    const [inner] = run(srv.fromClients, run(h1.outbound, ping)[0]!);
    expect(look(inner!)).toMatchObject({ src: '198.18.99.1', dst: SERVER, protocol: 1, headerOk: true });
    expect(inner!.subarray(20).equals(ping.subarray(20))).toBe(true);
    // The server's stack answers a datagram to a closed port: port unreachable, quoting what it got.
    const quoted = udpPacket({ src: '198.18.99.1', dst: SERVER }, { srcPort: 40000, dstPort: 9 });
    const error = icmpPacket({ src: SERVER, dst: '198.18.99.1' }, { type: 3, code: 3, body: quoted });
    const [delivered] = run(h1.inbound, run(srv.fromServer, error)[0]!);
    const d = delivered!;
    expect(look(d)).toMatchObject({ src: SERVER, dst: '198.18.5.7', protocol: 1, headerOk: true });
    expect(checksumVerifies(d, 20, d.length - 20)).toBe(true); // ICMP checksum after the quote changed
    const quote = d.subarray(28);
    expect(ipv4String(quote.readUInt32BE(12))).toBe('198.18.5.7');
    expect(checksumVerifies(quote, 0, 20)).toBe(true);
    expect(h1.inbound.stats().quotesRewritten).toBe(1);
  });
});

describe('responder agent: first contact', () => {
  it('keeps a host one client when several packets arrive on the listen SID before the first reply', () => {
    const h1 = hostAgent('198.18.5.7', 1);
    const srv = responder();
    const sources = ['udp', 'tcp', 'udp'].map((kind, k) => {
      const req =
        kind === 'udp'
          ? udpPacket(
              { src: '198.18.5.7', dst: SERVER },
              { srcPort: 40000, dstPort: 7000, payload: Buffer.from(`u${k}`) },
            )
          : tcpPacket({ src: '198.18.5.7', dst: SERVER }, { srcPort: 40001, dstPort: 7001, flags: 0x002 });
      const outer = run(h1.outbound, req)[0]!;
      expect(outer.readBigUInt64BE(20)).toBe(LISTEN); // still first contact: no reply yet
      return look(run(srv.fromClients, outer)[0]!).src;
    });
    expect(sources).toEqual(['198.18.99.1', '198.18.99.1', '198.18.99.1']);
    expect(srv.stats().sessionsEstablished).toBe(1);
  });

  it('drops what it cannot place, by reason', () => {
    const srv = responder();
    const stranger = new AnonHostAgent({
      mode: 'advanced',
      subnet: SUBNET,
      hostAddress: parseIpv4('198.18.5.9'),
      peers: [{ name: 'server', address: parseIpv4(SERVER), secret: secret(9), listenSid: LISTEN }],
    });
    const req = udpPacket({ src: '198.18.5.9', dst: SERVER }, { srcPort: 1, dstPort: 7000 });
    expect(run(srv.fromClients, run(stranger.outbound, req)[0]!)).toEqual([]);
    const reply = udpPacket({ src: SERVER, dst: '198.18.99.1' }, { srcPort: 7000, dstPort: 1 });
    expect(run(srv.fromServer, reply)).toEqual([]);
    expect(run(srv.fromClients, Buffer.from([0x60, 0, 0, 0]))).toEqual([]);
    expect(srv.fromClients.stats().dropped).toEqual({ tag: 1, 'not-ipv4': 1 });
    expect(srv.fromServer.stats().dropped).toEqual({ 'no-session-for-address': 1 });
  });
});

describe('host agent: outbound checks and the prefilter', () => {
  it("seals only the host's own unfragmented packets to its peers, counting the rest", () => {
    const h1 = hostAgent('198.18.5.7', 1);
    const ok = { srcPort: 1, dstPort: 2 };
    expect(run(h1.outbound, udpPacket({ src: '198.18.5.7', dst: '198.18.9.3' }, ok))).toEqual([]);
    expect(run(h1.outbound, udpPacket({ src: '198.18.5.8', dst: SERVER }, ok))).toEqual([]);
    expect(run(h1.outbound, udpPacket({ src: '198.18.5.7', dst: SERVER, flags: 0b001 }, ok))).toEqual([]);
    expect(h1.outbound.stats().dropped).toEqual({ 'not-to-peer': 1, 'source-not-host': 1, fragment: 1 });
  });

  it('builds the prefilter from the SIDs the host accepts, and says when they change', () => {
    let changes = 0;
    const h1 = hostAgent('198.18.5.7', 1, { onFilterChange: () => changes++ });
    const before = h1.prefilter();
    expect(before.exact).toBe(true);
    expect(before.expression).toMatch(/^ip dst host 198\.18\.5\.255 and \(ip proto 253 and /);
    const accepted = h1.receiver.table.entries();
    expect(accepted).toHaveLength(1); // A, where the first reply arrives
    const [hi, lo] = accepted[0]!;
    expect(before.expression).toContain(`ip[20:4] = 0x${hi.toString(16).padStart(8, '0')}`);
    expect(before.expression).toContain(`ip[24:4] = 0x${lo.toString(16).padStart(8, '0')}`);
    const srv = responder();
    const req = udpPacket({ src: '198.18.5.7', dst: SERVER }, { srcPort: 40000, dstPort: 7000 });
    const { src } = look(run(srv.fromClients, run(h1.outbound, req)[0]!)[0]!);
    const reply = udpPacket({ src: SERVER, dst: src }, { srcPort: 7000, dstPort: 40000 });
    const seen = changes;
    run(h1.inbound, run(srv.fromServer, reply)[0]!);
    expect(changes).toBeGreaterThan(seen); // the reply announced the server's next SID
    expect(h1.prefilter().expression).not.toBe(before.expression);
    const protocolOnly = hostAgent('198.18.5.7', 1, { prefilter: 'protocol' }).prefilter();
    expect(protocolOnly.expression).toBe('ip dst host 198.18.5.255 and ip proto 253');
  });
});

describe('host agent, basic mode', () => {
  const basic = (address: string) =>
    new AnonHostAgent({
      mode: 'basic',
      subnet: SUBNET,
      hostAddress: parseIpv4(address),
      peers: [{ name: 'server', address: parseIpv4(SERVER) }],
    });

  it('sends from the broadcast address, keeps its own replies by tuple, and gives them its address', () => {
    const h1 = basic('198.18.5.7');
    const h2 = basic('198.18.5.8');
    const req = tcpPacket(
      { src: '198.18.5.7', dst: SERVER },
      { srcPort: 40001, dstPort: 7001, payload: Buffer.from('q') },
    );
    const [out] = run(h1.outbound, req);
    expect(look(out!)).toMatchObject({
      src: BROADCAST,
      dst: SERVER,
      protocol: TCP,
      transportOk: true,
      payload: 'q',
    });
    expect(h1.prefilter().expression).toContain('ip src host 198.18.9.2');
    const reply = tcpPacket(
      { src: SERVER, dst: BROADCAST },
      { srcPort: 7001, dstPort: 40001, payload: Buffer.from('a') },
    );
    const [mine] = run(h1.inbound, reply);
    expect(look(mine!)).toMatchObject({
      src: SERVER,
      dst: '198.18.5.7',
      transportOk: true,
      headerOk: true,
      payload: 'a',
    });
    expect(run(h2.inbound, reply)).toEqual([]);
    expect(h2.inbound.stats().dropped).toEqual({ 'unknown-tuple': 1 });
  });

  it('delivers a tuple another host was seen using to nobody', () => {
    const h1 = basic('198.18.5.7');
    const req = udpPacket({ src: '198.18.5.7', dst: SERVER }, { srcPort: 40999, dstPort: 7002 });
    run(h1.outbound, req);
    const tuple = { remoteAddress: parseIpv4(SERVER), remotePort: 7002, localPort: 40999, protocol: UDP };
    expect(h1.reportOtherHostUse(tuple)).toBe('contested');
    const reply = udpPacket({ src: SERVER, dst: BROADCAST }, { srcPort: 7002, dstPort: 40999 });
    expect(run(h1.inbound, reply)).toEqual([]);
    expect(h1.inbound.stats().dropped).toEqual({ 'tuple-contested': 1 });
  });

  it('carries only protocols with ports', () => {
    const h1 = basic('198.18.5.7');
    const ping = icmpPacket({ src: '198.18.5.7', dst: SERVER }, { type: 8, code: 0, body: Buffer.from('x') });
    expect(run(h1.outbound, ping)).toEqual([]);
    expect(h1.outbound.stats().dropped).toEqual({ 'no-ports': 1 });
  });
});
