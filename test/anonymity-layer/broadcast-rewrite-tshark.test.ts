/**
 * tshark, an independent implementation, judges the checksums of what the broadcast stages write: the
 * kernel's own traffic from examples/kernel-mix.pcap made to leave the subnet (and its replies come back to
 * the broadcast address), plus random packets, fragments and ICMP errors from a seeded generator. tshark
 * checks IP, TCP, UDP and ICMP checksums and reassembles the fragments to check the UDP checksum whole.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import {
  BroadcastReplyStage,
  BroadcastSourceStage,
  rewriteIpv4Destination,
  rewriteIpv4Source,
} from '../../src/anonymity-layer/broadcast-rewrite.js';
import { parseIpv4 } from '../../src/codec/ipv4.js';
import { parseCaptureBuffer, writeCapture } from '../../src/io/capture-file.js';
import { LinkType, type Packet } from '../../src/packet.js';
import { describeSystem } from '../helpers/system.js';
import { tsharkFields } from '../helpers/tshark.js';
import { ethernet, fragment, icmpPacket, tcpPacket, udpPacket } from './ipv4-packets.js';

const HOST = parseIpv4('198.18.0.1');
const PEER = parseIpv4('198.18.0.2');
const BROADCAST = parseIpv4('198.18.0.255');
const REMOTE = parseIpv4('203.0.113.80');
const SUBNET = '198.18.0.0/24';

/** kernel-mix as if 198.18.0.2 were a remote server: the host's packets leave the subnet, replies come back. */
function kernelMixAcrossTheRouter(): Packet[] {
  const file = readFileSync(new URL('../../examples/kernel-mix.pcap', import.meta.url));
  const frames: Packet[] = [];
  for (const p of parseCaptureBuffer(file)) {
    const data = Buffer.from(p.data);
    if (data.readUInt16BE(12) === 0x0800) {
      const ip = data.subarray(14);
      if (ip.readUInt32BE(12) === HOST) expect(rewriteIpv4Destination(ip, 0, REMOTE)).toBe('ok');
      if (ip.readUInt32BE(12) === PEER) {
        expect(rewriteIpv4Source(ip, 0, REMOTE)).toBe('ok');
        expect(rewriteIpv4Destination(ip, 0, BROADCAST)).toBe('ok'); // as the router sends it into the subnet
      }
    }
    frames.push({ ...p, data });
  }
  return frames;
}

/** Seeded random packets from the host: TCP, UDP (some without checksum), fragments, ICMP errors. */
function generatedFromHost(): Packet[] {
  const port = fc.integer({ min: 1, max: 0xffff });
  const payload = fc.uint8Array({ minLength: 1, maxLength: 1400 }).map((a) => Buffer.from(a));
  const packet = fc.oneof(
    fc
      .record({ s: port, d: port, payload })
      .map(({ s, d, payload }) => [
        tcpPacket({ src: HOST, dst: REMOTE }, { srcPort: s, dstPort: d, payload }),
      ]),
    fc
      .record({ s: port, d: port, payload, none: fc.boolean() })
      .map(({ s, d, payload, none }) => [
        udpPacket({ src: HOST, dst: REMOTE }, { srcPort: s, dstPort: d, payload, noChecksum: none }),
      ]),
    fc
      .record({
        s: port,
        d: port,
        payload: fc.uint8Array({ minLength: 700, maxLength: 1400 }).map((a) => Buffer.from(a)),
        id: fc.integer({ min: 0, max: 0xffff }),
      })
      .map(({ s, d, payload, id }) =>
        fragment(udpPacket({ src: HOST, dst: REMOTE, id, flags: 0 }, { srcPort: s, dstPort: d, payload }), [
          8 * 30,
          8 * 50,
        ]),
      ),
    fc.record({ s: port, d: port, payload }).map(({ s, d, payload }) => {
      const offending = udpPacket({ src: REMOTE, dst: HOST }, { srcPort: s, dstPort: d, payload });
      return [icmpPacket({ src: HOST, dst: REMOTE }, { type: 3, code: 3, body: offending.subarray(0, 548) })];
    }),
  );
  return fc
    .sample(packet, { numRuns: 120, seed: 20240607 })
    .flat()
    .map((p, i) => ({
      data: ethernet(p),
      ts: 1_700_000_000_000_000_000n + BigInt(i) * 1000n,
      link: LinkType.ETHERNET,
    }));
}

function toBroadcast(p: Packet): boolean {
  return p.data.readUInt16BE(12) === 0x0800 && p.data.readUInt32BE(30) === BROADCAST;
}

describeSystem('broadcast rewrite checksums judged by tshark', ['tshark'], () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktveil-broadcast-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes packets whose IP, TCP, UDP and ICMP checksums tshark finds good, fragments reassembled', async () => {
    const source = new BroadcastSourceStage({ subnet: SUBNET });
    const reply = new BroadcastReplyStage({ subnet: SUBNET, hostAddress: HOST });
    const out: Packet[] = [];
    const keep = (p: Packet) => out.push({ ...p, data: Buffer.from(p.data) });
    const generated = generatedFromHost();
    const input = [...kernelMixAcrossTheRouter(), ...generated];
    // The replies to the broadcast address go to the reply stage (turned back for the host's stack), the
    // rest to the source stage; both outputs go into the same file.
    for (const p of input) (toBroadcast(p) ? reply : source).process(p, keep);
    const stats = source.stats();
    expect(stats.dropped).toEqual({ ipv6: 12 }); // kernel-mix's ICMPv6 chatter
    expect(stats.rewritten).toBe(12 + generated.length); // the host's 12 IPv4 packets in kernel-mix
    expect(stats.quotesRewritten).toBeGreaterThan(10);
    expect(reply.stats().rewritten).toBe(8);
    const fragments = out.filter(
      (p) => p.data.readUInt16BE(12) === 0x0800 && (p.data.readUInt16BE(20) & 0x3fff) !== 0,
    );
    expect(fragments.length).toBeGreaterThan(60);

    const file = join(dir, 'rewritten.pcap');
    await writeCapture(file, out, { format: 'pcap', link: LinkType.ETHERNET });
    const fields = [
      'ip.src',
      'ip.checksum.status',
      'tcp.checksum.status',
      'udp.checksum.status',
      'icmp.checksum.status',
    ];
    const frames = await tsharkFields(file, {
      fields,
      prefs: [
        'ip.defragment:TRUE',
        'ip.check_checksum:TRUE',
        'tcp.check_checksum:TRUE',
        'udp.check_checksum:TRUE',
        'tcp.desegment_tcp_streams:FALSE',
      ],
      decodeAs: ['udp.port==1-65535,data', 'tcp.port==1-65535,data'],
    });
    expect(frames).toHaveLength(out.length);
    const good: Record<string, number> = {};
    const bad: string[] = [];
    frames.forEach((frame, i) => {
      for (const f of fields.slice(1)) {
        for (const status of frame.get(f) ?? []) {
          // 1 good, 0 bad, 2 unverified (a quote cut short), 3 not present (UDP checksum 0).
          if (status === '0') bad.push(`frame ${i + 1} ${f}`);
          if (status === '1') good[f] = (good[f] ?? 0) + 1;
        }
      }
    });
    expect(bad).toEqual([]);
    const fromHost = frames.filter((f) => f.get('ip.src')?.[0] === '198.18.0.255').length;
    expect(fromHost).toBe(stats.rewritten);
    expect(good['ip.checksum.status']).toBeGreaterThanOrEqual(out.length - 13);
    expect(good['tcp.checksum.status']).toBeGreaterThan(40);
    expect(good['udp.checksum.status']).toBeGreaterThan(40);
    expect(good['icmp.checksum.status']).toBeGreaterThan(10);
  });
});
