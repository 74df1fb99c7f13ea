/**
 * pktveil end to end on a live link: IPv4 packets built by our encoders are sent by our raw-socket sink
 * (RawIpv4Sink) in one namespace, captured by our LiveCapture on the peer interface in another, written
 * by our capture writer (pcap and pcapng), and `pktveil inspect --json` on those files must agree with
 * tshark field by field. The namespace children are live.test.ts's (test/io/live-children/).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ipv4PseudoHeaderSum } from '../../src/codec/checksum.js';
import { EspRepr } from '../../src/codec/esp.js';
import { echoRest, Icmpv4Repr } from '../../src/codec/icmp.js';
import { parseIpv4 } from '../../src/codec/ip-address.js';
import { type Ipv4Fields, Ipv4Flags, Ipv4Repr } from '../../src/codec/ipv4.js';
import { TcpFlags, TcpRepr } from '../../src/codec/tcp.js';
import { UdpRepr } from '../../src/codec/udp.js';
import { openCaptureWriter } from '../../src/io/capture-file.js';
import { LinkType, type Packet } from '../../src/packet.js';
import { inspectJson } from '../helpers/cli.js';
import { collect, NetnsLab, tsxCommand } from '../helpers/netns.js';
import { describeSystem } from '../helpers/system.js';
import { compareWithTshark } from '../helpers/tshark.js';

const captureChild = fileURLToPath(new URL('../io/live-children/capture.ts', import.meta.url));
const injectChild = fileURLToPath(new URL('../io/live-children/inject.ts', import.meta.url));
const ETHERTYPE_IPV4 = 0x0800;

/** A named IPv4 packet, exactly as it must appear on the wire after the Ethernet header. */
interface Case {
  name: string;
  bytes: Buffer;
}

/**
 * IPv4 packets of every kind inspect decodes, built by our encoders with every checksum computed
 * (raw(7): with IP_HDRINCL the kernel rewrites total length and header checksum, so they must already
 * be right for the bytes to arrive unchanged), a few with checksums deliberately wrong or absent.
 */
function buildCases(srcText: string, dstText: string): Case[] {
  const src = parseIpv4(srcText);
  const dst = parseIpv4(dstText);
  let id = 0x7000;
  const cases: Case[] = [];
  const pattern = (n: number, seed: number) =>
    Buffer.from(Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff));

  /** An IPv4 packet with its header encoded and `upperLength` zero bytes after it. */
  const ipv4 = (protocol: number, upperLength: number, extra: Partial<Ipv4Fields> = {}) => {
    const ip = new Ipv4Repr({ id: id++, ttl: 64, protocol, src, dst, payloadLength: upperLength, ...extra });
    const pkt = Buffer.alloc(ip.encodedLength + upperLength);
    ip.encodeInto(pkt, 0);
    return { pkt, off: ip.encodedLength };
  };
  const udpPacket = (
    data: Buffer,
    ports = [40000, 47002],
    extra: Partial<Ipv4Fields> = {},
    checksum?: number,
  ) => {
    const { pkt, off } = ipv4(17, 8 + data.length, extra);
    data.copy(pkt, off + 8);
    const repr = new UdpRepr({
      srcPort: ports[0]!,
      dstPort: ports[1]!,
      payloadLength: data.length,
      checksum,
    });
    repr.encodeInto(pkt, off, ipv4PseudoHeaderSum(pkt, 0, 17, 8 + data.length));
    return pkt;
  };
  const udp = (name: string, ...args: Parameters<typeof udpPacket>) => {
    const pkt = udpPacket(...args);
    cases.push({ name, bytes: pkt });
    return pkt;
  };
  const tcp = (name: string, repr: TcpRepr, data: Buffer) => {
    const length = repr.encodedLength + data.length;
    const { pkt, off } = ipv4(6, length);
    data.copy(pkt, off + repr.encodedLength);
    repr.encodeInto(pkt, off, ipv4PseudoHeaderSum(pkt, 0, 6, length));
    cases.push({ name, bytes: pkt });
    return pkt;
  };

  for (const n of [0, 1, 100, 1000, 1472]) udp(`udp-${n}`, pattern(n, n));
  udp('udp-zero-checksum', pattern(33, 1), undefined, undefined, 0);
  const badUdp = udp('udp-bad-checksum', pattern(40, 2));
  badUdp.writeUInt16BE(badUdp.readUInt16BE(26) ^ 0x0101, 26);
  udp('udp-dscp-ecn-ttl-df', pattern(20, 3), undefined, { dscp: 46, ecn: 1, ttl: 3, flags: Ipv4Flags.DF });
  // Record Route (type 7, length 11, pointer 4, two empty slots) and End of Options: 12 bytes.
  const recordRoute = Buffer.from([7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  udp('udp-ip-options', pattern(24, 4), undefined, { options: recordRoute });

  const base = { srcPort: 40001, dstPort: 47001, window: 64240, urgent: 0 };
  tcp(
    'tcp-syn-options',
    new TcpRepr({
      ...base,
      seq: 0xfffffff0,
      ack: 0,
      flags: TcpFlags.SYN,
      options: [
        { type: 'mss', mss: 1460 },
        { type: 'sackPermitted' },
        { type: 'timestamps', tsval: 4000000000, tsecr: 0 },
        { type: 'nop' },
        { type: 'windowScale', shift: 7 },
      ],
      payloadLength: 0,
    }),
    Buffer.alloc(0),
  );
  const data = pattern(500, 5);
  const segment = (checksum?: number) =>
    new TcpRepr({
      ...base,
      seq: 0xfffffff1,
      ack: 123456789,
      flags: TcpFlags.ACK | TcpFlags.PSH,
      options: [{ type: 'nop' }, { type: 'nop' }, { type: 'timestamps', tsval: 4000000001, tsecr: 99 }],
      payloadLength: data.length,
      checksum,
    });
  tcp('tcp-data', segment(), data);
  const badTcp = tcp('tcp-bad-checksum', segment(), data);
  badTcp.writeUInt16BE(badTcp.readUInt16BE(36) ^ 0x0101, 36);

  const echoBody = Buffer.from('pktveil-echo');
  const icmp = ipv4(1, 8 + echoBody.length);
  echoBody.copy(icmp.pkt, icmp.off + 8);
  new Icmpv4Repr({ type: 8, code: 0, rest: echoRest(0xbeef, 1), payloadLength: echoBody.length }).encodeInto(
    icmp.pkt,
    icmp.off,
  );
  cases.push({ name: 'icmp-echo', bytes: icmp.pkt });

  const opaque = pattern(48, 6);
  const espPayload = Buffer.alloc(8 + opaque.length);
  new EspRepr({ spi: 0xc0ffee01, seq: 7, payloadLength: opaque.length }).encodeInto(espPayload, 0);
  opaque.copy(espPayload, 8);
  const esp = ipv4(50, espPayload.length);
  espPayload.copy(esp.pkt, esp.off);
  cases.push({ name: 'esp', bytes: esp.pkt });
  udp('natt-esp', espPayload, [4500, 4500]);

  // A 2000-byte UDP datagram in two fragments, cut by hand at 1480 bytes of IP payload (185 units).
  const datagram = udpPacket(pattern(2000, 7)).subarray(20);
  const fragmentId = id++;
  for (const [name, start, end, flags] of [
    ['fragment-first', 0, 1480, Ipv4Flags.MF],
    ['fragment-last', 1480, datagram.length, 0],
  ] as const) {
    const frag = ipv4(17, end - start, { id: fragmentId, flags, fragOffset: start / 8 });
    datagram.copy(frag.pkt, frag.off, start, end);
    cases.push({ name, bytes: frag.pkt });
  }
  return cases;
}

/** Resolves once the child prints a line matching `ready`; rejects when it exits first or after 15 s. */
function waitForLine(child: ChildProcess, ready: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const finish = (line: string | null, err?: Error) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (line !== null) resolve(line);
      else reject(err);
    };
    const onData = (d: Buffer) => {
      seen += d.toString();
      const line = seen.split('\n').find((l) => ready.test(l));
      if (line !== undefined) finish(line);
    };
    const onExit = (code: number | null) => finish(null, new Error(`${what} exited (${code}): ${seen}`));
    const timer = setTimeout(() => finish(null, new Error(`${what} not ready within 15 s: ${seen}`)), 15_000);
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

describeSystem(
  'frames our raw-socket sink injects, our LiveCapture captures and our writer stores read as tshark reads them',
  ['netns', 'tshark', 'ethtool', 'cap', 'raw-socket'],
  () => {
    const lab = new NetnsLab();
    const dir = mkdtempSync(join(tmpdir(), 'pktveil-inject-capture-'));
    const files = { pcap: join(dir, 'live.pcap'), pcapng: join(dir, 'live.pcapng') };
    let cases: Case[];
    let captured: Packet[];
    let injectStats: { sent: number; failed: number };
    let macs: { src: string; dst: string };

    beforeAll(async () => {
      const sender = lab.addNamespace('inject');
      const receiver = lab.addNamespace('capture');
      const { a, b } = lab.addVethPair(sender, receiver, { disableIpv6: true });
      macs = { src: a.mac, dst: b.mac };
      cases = buildCases(a.address, b.address);
      // Resolve the peer's MAC first, so no injected packet waits in the neighbour queue.
      lab.exec(sender, 'ping', ['-c', '1', '-W', '2', b.address]);

      const [node, captureArgs] = tsxCommand(captureChild, [
        JSON.stringify({
          interface: b.ifname,
          filter: `ip src host ${a.address}`,
          count: cases.length,
          lingerMs: 300, // to see packets that should not be there
          timeoutMs: 20_000,
        }),
      ]);
      const capture = lab.spawn(receiver, node, captureArgs);
      const captureDone = collect(capture, 30_000);
      const ready = JSON.parse(await waitForLine(capture, /"ready":true|"error"/, 'capture child')) as {
        link?: number;
        error?: unknown;
      };
      expect(ready.error).toBeUndefined();
      expect(ready.link).toBe(LinkType.ETHERNET);

      const [, injectArgs] = tsxCommand(injectChild);
      const job = {
        sink: 'raw',
        interface: a.ifname,
        link: LinkType.RAW,
        packets: cases.map((c) => c.bytes.toString('hex')),
      };
      const injected = await lab.run(sender, node, injectArgs, {
        input: JSON.stringify(job),
        timeoutMs: 20_000,
      });
      expect(injected.code, injected.stderr).toBe(0);
      injectStats = (JSON.parse(injected.stdout.trim().split('\n').pop()!) as { stats: typeof injectStats })
        .stats;

      const result = await captureDone;
      expect(result.code, result.stderr).toBe(0);
      const out = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
        packets: { hex: string; ts: string; origLen: number }[];
      };
      captured = out.packets.map((p) => ({
        data: Buffer.from(p.hex, 'hex'),
        ts: BigInt(p.ts),
        link: ready.link!,
        origLen: p.origLen,
      }));
      for (const format of ['pcap', 'pcapng'] as const) {
        const writer = await openCaptureWriter(files[format], { format, link: ready.link! });
        for (const pkt of captured) if (!writer.write(pkt)) await writer.drain();
        await writer.close();
      }
    });

    afterAll(() => {
      lab.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('every packet was sent, captured once, in order, byte for byte behind an Ethernet header', () => {
      expect(injectStats.sent).toBe(cases.length);
      expect(injectStats.failed).toBe(0);
      expect(captured.map((p) => p.data.length)).toEqual(cases.map((c) => 14 + c.bytes.length));
      for (const [i, c] of cases.entries()) {
        const frame = captured[i]!.data;
        expect(frame.subarray(14).equals(c.bytes), c.name).toBe(true);
        expect(frame.readUInt16BE(12), c.name).toBe(ETHERTYPE_IPV4);
        expect(frame.subarray(0, 6).toString('hex'), c.name).toBe(macs.dst.replace(/:/g, ''));
        expect(frame.subarray(6, 12).toString('hex'), c.name).toBe(macs.src.replace(/:/g, ''));
        expect(captured[i]!.origLen).toBe(frame.length);
      }
    });

    for (const format of ['pcap', 'pcapng'] as const) {
      it(`${format}: pktveil and tshark agree field by field`, async () => {
        const cmp = await compareWithTshark(files[format]);
        expect(cmp.mismatches).toEqual([]);
        expect(cmp.frames).toBe(cases.length);
        for (const layer of ['frame', 'eth', 'ipv4', 'tcp', 'udp', 'icmp', 'esp'])
          expect(cmp.compared[layer], `fields compared for ${layer}`).toBeGreaterThan(0);
      });
    }

    it('inspect gives the verdicts each packet was built to show', async () => {
      const frames = await inspectJson(files.pcap);
      const layer = (name: string, l: string) => {
        const frame = frames[cases.findIndex((c) => c.name === name)]!;
        expect(frame.error, name).toBeUndefined();
        return (frame.layers as { layer: string }[]).find((x) => x.layer === l) as Record<string, unknown>;
      };
      for (const frame of frames) expect(frame.error).toBeUndefined();
      for (const n of [0, 1, 100, 1000, 1472]) expect(layer(`udp-${n}`, 'udp').checksumOk).toBe(true);
      expect(layer('udp-zero-checksum', 'udp').checksumOk).toBeNull();
      expect(layer('udp-bad-checksum', 'udp').checksumOk).toBe(false);
      expect(layer('tcp-data', 'tcp').checksumOk).toBe(true);
      expect(layer('tcp-bad-checksum', 'tcp').checksumOk).toBe(false);
      expect(layer('icmp-echo', 'icmp').checksumOk).toBe(true);
      expect(layer('udp-ip-options', 'ipv4').options).toBe('070b04000000000000000000');
      expect(layer('udp-dscp-ecn-ttl-df', 'ipv4')).toMatchObject({ dscp: 46, ecn: 1, ttl: 3, flags: 2 });
      expect(layer('esp', 'esp')).toMatchObject({ spi: 0xc0ffee01, seq: 7, payloadLength: 48 });
      expect(layer('natt-esp', 'esp')).toMatchObject({ spi: 0xc0ffee01, seq: 7 });
      expect(layer('fragment-first', 'udp')).toMatchObject({ length: 2008, checksumOk: null });
      expect(layer('fragment-last', 'ipv4')).toMatchObject({ flags: 0, fragOffset: 185 });
      expect(layer('fragment-last', 'udp')).toBeUndefined();
      for (const frame of frames)
        expect((frame.layers as Record<string, unknown>[])[1]!.checksumOk, 'IPv4 header checksum').toBe(true);
    });
  },
);
