/**
 * Live capture and injection against the real kernel: two network namespaces joined by a veth pair.
 * Our LiveCapture runs in namespace A, our sinks in namespace B, each in a child process (the addons'
 * sockets live in the namespace of the process that opens them).
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ipv4PseudoHeaderSum } from '../../src/codec/checksum.js';
import { EthernetRepr } from '../../src/codec/ethernet.js';
import { Ipv4Flags, Ipv4Repr, parseIpv4 } from '../../src/codec/ipv4.js';
import { UdpRepr } from '../../src/codec/udp.js';
import { FrameSink, RawIpv4Sink } from '../../src/io/inject.js';
import { LiveCapture } from '../../src/io/live-capture.js';
import { LiveIoError } from '../../src/io/live-io-error.js';
import { LinkType, type Packet } from '../../src/packet.js';
import {
  collect,
  type Endpoint,
  NetnsLab,
  type RunOptions,
  type RunResult,
  tsxCommand,
} from '../helpers/netns.js';
import { describeSystem } from '../helpers/system.js';

const CAPTURE_CHILD = fileURLToPath(new URL('./live-children/capture.ts', import.meta.url));
const INJECT_CHILD = fileURLToPath(new URL('./live-children/inject.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** IEEE 802 "local experimental" EtherType, for frames nothing in the kernel reacts to. */
const ETHERTYPE_EXPERIMENTAL = 0x88b5;

interface CaptureJob {
  interface: string;
  filter?: string;
  snapLength?: number;
  promiscuous?: boolean;
  count: number;
  lingerMs?: number;
  timeoutMs: number;
  mode?: 'iterate' | 'callback';
  queueLimit?: number;
  readAfterSeen?: number;
  closeBeforeRead?: boolean;
}

/** Who a child runs as. */
type As = Pick<RunOptions, 'user' | 'dropCapabilities'>;

interface CapturedPacket {
  hex: string;
  ts: string;
  origLen: number;
}

interface CaptureResult {
  packets: CapturedPacket[];
  stats: Record<string, number>;
  sameObject: boolean;
  wallStart: string;
  wallEnd: string;
}

interface ChildError {
  error: { kind: string; message: string };
}

interface InjectJob {
  sink: 'raw' | 'frame';
  interface?: string;
  link: number;
  packets: string[];
  gapMs?: number;
}

interface InjectResult {
  stats: {
    packetsIn: number;
    packetsOut: number;
    sent: number;
    failed: number;
    dropped: Record<string, number>;
    sendErrors: Record<string, number>;
  };
}

function lastJsonLine<T>(r: RunResult, what: string): T {
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  if (lines.length === 0) {
    throw new Error(
      `${what} printed nothing (exit ${r.code}, timed out: ${r.timedOut}); stderr:\n${r.stderr}`,
    );
  }
  return JSON.parse(lines.at(-1)!) as T;
}

/** Resolves with the child's first stdout line (parsed), or rejects after `timeoutMs` or on exit. */
function firstLine(child: ChildProcess, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let text = '';
    let stderr = '';
    const timer = setTimeout(
      () => reject(new Error(`no first line after ${timeoutMs} ms; stderr: ${stderr}`)),
      timeoutMs,
    );
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.stdout?.on('data', (b: Buffer) => {
      text += b.toString();
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(text.slice(0, nl)) as Record<string, unknown>);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!text.includes('\n'))
        reject(new Error(`capture child exited ${code} before reporting; stderr: ${stderr}`));
    });
  });
}

describeSystem(
  'live capture and injection (network namespaces)',
  ['netns', 'ethtool', 'cap', 'raw-socket'],
  () => {
    const lab = new NetnsLab();
    let nsA: string;
    let nsB: string;
    let a: Endpoint;
    let b: Endpoint;

    beforeAll(() => {
      nsA = lab.addNamespace('a');
      nsB = lab.addNamespace('b');
      ({ a, b } = lab.addVethPair(nsA, nsB, { disableIpv6: true }));
      // Resolve A's MAC in B now, so no injected packet waits in (or overflows) the ARP queue.
      lab.exec(nsB, 'ping', ['-c', '1', '-W', '5', a.address], { timeoutMs: 10_000 });
    });
    afterAll(() => lab.cleanup());

    /** Starts a capture child in `ns` and waits until it is capturing. */
    async function startCapture(job: CaptureJob, ns = nsA, as: As = {}) {
      const [cmd, args] = tsxCommand(CAPTURE_CHILD, [JSON.stringify(job)]);
      const child = lab.spawn(ns, cmd, args, { cwd: REPO, ...as });
      const done = collect(child, job.timeoutMs + 20_000);
      const first = await firstLine(child, 20_000);
      return { first, done: done.then((r) => lastJsonLine<CaptureResult & ChildError>(r, 'capture child')) };
    }

    async function inject(job: InjectJob, ns = nsB, as: As = {}): Promise<InjectResult & ChildError> {
      const [cmd, args] = tsxCommand(INJECT_CHILD);
      const r = await lab.run(ns, cmd, args, {
        input: JSON.stringify(job),
        cwd: REPO,
        ...as,
        timeoutMs: 40_000,
      });
      return lastJsonLine<InjectResult & ChildError>(r, 'inject child');
    }

    /** IPv4/UDP from B to A (or `dst`), built with our codecs; the payload names the packet. */
    function udp(i: number, dstPort = 40000, payloadLength = 20 + (i % 37), dst = a.address): Buffer {
      const payload = Buffer.alloc(payloadLength, 0x2e);
      payload.write(`pktveil ${i} `, 'latin1');
      const ip = new Ipv4Repr({
        id: 0x1000 + i,
        flags: Ipv4Flags.DF,
        ttl: 64,
        protocol: 17,
        src: parseIpv4(b.address),
        dst: parseIpv4(dst),
        payloadLength: 8 + payloadLength,
      });
      const buf = Buffer.alloc(20 + 8 + payloadLength);
      payload.copy(buf, 28);
      ip.encodeInto(buf, 0);
      new UdpRepr({ srcPort: 39000, dstPort, payloadLength }).encodeInto(
        buf,
        20,
        ipv4PseudoHeaderSum(buf, 0, 17, 8 + payloadLength),
      );
      return buf;
    }

    /** The Ethernet frame A receives for an IPv4 packet B sent it. */
    function frameFromB(ip: Buffer): Buffer {
      const eth = Buffer.alloc(14);
      new EthernetRepr({ dst: a.mac, src: b.mac, vlan: [], etherType: 0x0800 }).encodeInto(eth, 0);
      return Buffer.concat([eth, ip]);
    }

    function experimentalFrame(dst: string, tag: string): Buffer {
      const frame = Buffer.alloc(60, 0);
      new EthernetRepr({ dst, src: b.mac, vlan: [], etherType: ETHERTYPE_EXPERIMENTAL }).encodeInto(frame, 0);
      frame.write(tag, 14, 'latin1');
      return frame;
    }

    it('delivers every injected IPv4/UDP packet with its exact bytes and increasing timestamps', async () => {
      const N = 200;
      const packets = Array.from({ length: N }, (_, i) => udp(i));
      const cap = await startCapture({ interface: a.ifname, filter: 'udp', count: N, timeoutMs: 20_000 });
      expect(cap.first).toMatchObject({
        ready: true,
        link: LinkType.ETHERNET,
        linkName: 'ETHERNET',
        filter: 'udp',
      });

      const sent = await inject({
        sink: 'raw',
        link: LinkType.IPV4,
        packets: packets.map((p) => p.toString('hex')),
      });
      expect(sent.error).toBeUndefined();
      expect(sent.stats).toMatchObject({ packetsIn: N, packetsOut: N, sent: N, failed: 0, dropped: {} });

      const got = await cap.done;
      expect(got.error).toBeUndefined();
      expect(got.packets).toHaveLength(N);
      for (let i = 0; i < N; i++) {
        const expected = frameFromB(packets[i]!);
        expect(got.packets[i]!.hex).toBe(expected.toString('hex'));
        expect(got.packets[i]!.origLen).toBe(expected.length);
      }
      const ts = got.packets.map((p) => BigInt(p.ts));
      for (let i = 1; i < N; i++) expect(ts[i]! > ts[i - 1]!).toBe(true);
      // Stamped by the RealClock (anchored to Date.now, ms resolution) between the child's start and end.
      expect(ts[0]! >= BigInt(got.wallStart) - 2_000_000n).toBe(true);
      expect(ts[N - 1]! <= BigInt(got.wallEnd) + 2_000_000n).toBe(true);
      expect(got.stats).toMatchObject({ packetsSeen: N, truncatedBySnapLength: 0, queueDrops: 0, queued: 0 });
    });

    it('hands onPacket listeners one borrowed packet object, reused for every packet', async () => {
      const N = 30;
      const packets = Array.from({ length: N }, (_, i) => udp(i, 40002));
      const cap = await startCapture({
        interface: a.ifname,
        filter: 'udp dst port 40002',
        count: N,
        timeoutMs: 20_000,
        mode: 'callback',
      });
      await inject({ sink: 'raw', link: LinkType.IPV4, packets: packets.map((p) => p.toString('hex')) });
      const got = await cap.done;
      expect(got.packets.map((p) => p.hex)).toEqual(packets.map((p) => frameFromB(p).toString('hex')));
      expect(got.sameObject).toBe(true);
    });

    it('queues packets from the moment it opens, up to queueLimit, and counts the rest as dropped', async () => {
      const packets = Array.from({ length: 120 }, (_, i) => udp(i, 40008));
      // The consumer starts late and closes first: the iterator must hand over exactly what was queued.
      const cap = await startCapture({
        interface: a.ifname,
        filter: 'udp dst port 40008',
        queueLimit: 50,
        readAfterSeen: 120,
        closeBeforeRead: true,
        count: 1_000,
        timeoutMs: 20_000,
      });
      const sent = await inject({
        sink: 'raw',
        link: LinkType.IPV4,
        packets: packets.map((p) => p.toString('hex')),
      });
      expect(sent.stats.sent).toBe(120);
      const got = await cap.done;
      expect(got.packets.map((p) => p.hex)).toEqual(
        packets.slice(0, 50).map((p) => frameFromB(p).toString('hex')),
      );
      expect(got.stats).toMatchObject({ packetsSeen: 120, queueDrops: 70, queued: 0 });
    });

    it('cuts packets to snapLength and keeps their wire length in origLen', async () => {
      const sizes = [0, 10, 22, 23, 100, 1000, 1400];
      const packets = sizes.map((n, i) => udp(i, 40003, n + 12));
      const cap = await startCapture({
        interface: a.ifname,
        filter: 'udp dst port 40003',
        snapLength: 64,
        count: sizes.length,
        timeoutMs: 20_000,
      });
      await inject({ sink: 'raw', link: LinkType.IPV4, packets: packets.map((p) => p.toString('hex')) });
      const got = await cap.done;
      expect(got.packets).toHaveLength(sizes.length);
      let cut = 0;
      for (let i = 0; i < sizes.length; i++) {
        const frame = frameFromB(packets[i]!);
        const kept = Math.min(64, frame.length);
        if (frame.length > 64) cut++;
        expect(got.packets[i]!.hex).toBe(frame.subarray(0, kept).toString('hex'));
        expect(got.packets[i]!.origLen).toBe(frame.length);
      }
      expect(cut).toBeGreaterThan(0);
      expect(got.stats.truncatedBySnapLength).toBe(cut);
    });

    it('passes only what the BPF filter selects', async () => {
      const packets = Array.from({ length: 40 }, (_, i) => udp(i, i % 2 ? 40005 : 40004));
      const wanted = packets.filter((_, i) => i % 2 === 1);
      const cap = await startCapture({
        interface: a.ifname,
        filter: 'udp dst port 40005',
        count: wanted.length,
        lingerMs: 300,
        timeoutMs: 20_000,
      });
      await inject({ sink: 'raw', link: LinkType.IPV4, packets: packets.map((p) => p.toString('hex')) });
      const got = await cap.done;
      expect(got.packets.map((p) => p.hex)).toEqual(wanted.map((p) => frameFromB(p).toString('hex')));
    });

    it('without promiscuous mode keeps frames to its own MAC, broadcast and multicast, not to other MACs', async () => {
      const K = 10;
      const dsts = {
        own: a.mac,
        foreign: '02:00:00:aa:bb:cc',
        broadcast: 'ff:ff:ff:ff:ff:ff',
        multicast: '01:00:5e:00:00:fb',
      };
      const frames: { kind: keyof typeof dsts; frame: Buffer }[] = [];
      for (let i = 0; i < K; i++) {
        for (const kind of Object.keys(dsts) as (keyof typeof dsts)[]) {
          frames.push({ kind, frame: experimentalFrame(dsts[kind], `${kind} ${i}`) });
        }
      }
      const filter = `ether proto 0x${ETHERTYPE_EXPERIMENTAL.toString(16)}`;
      const notPromisc = await startCapture({
        interface: a.ifname,
        filter,
        promiscuous: false,
        count: 3 * K,
        lingerMs: 300,
        timeoutMs: 20_000,
      });
      expect(notPromisc.first.mac).toBe(a.mac);
      expect(notPromisc.first.filter).toBe(`(ether host ${a.mac} or ether multicast) and (${filter})`);
      // Control: a promiscuous capture at the same time sees the foreign frames, so they did reach A.
      const promisc = await startCapture({
        interface: a.ifname,
        filter,
        count: 4 * K,
        lingerMs: 300,
        timeoutMs: 20_000,
      });

      const sent = await inject({
        sink: 'frame',
        interface: b.ifname,
        link: LinkType.ETHERNET,
        packets: frames.map((f) => f.frame.toString('hex')),
      });
      expect(sent.error).toBeUndefined();
      expect(sent.stats).toMatchObject({ sent: 4 * K, failed: 0 });

      const kept = await notPromisc.done;
      expect(kept.packets.map((p) => p.hex)).toEqual(
        frames.filter((f) => f.kind !== 'foreign').map((f) => f.frame.toString('hex')),
      );
      const all = await promisc.done;
      expect(all.packets.map((p) => p.hex)).toEqual(frames.map((f) => f.frame.toString('hex')));
    });

    it('counts what RawIpv4Sink cannot send instead of throwing', async () => {
      const tooBig = udp(1, 40006, 3000); // DF set, larger than the 1500-byte MTU
      const unroutable = udp(2, 40006, 10, '203.0.113.9'); // B has no route beyond its /24
      const ok = udp(3, 40006);
      const arp = Buffer.alloc(42); // an Ethernet frame that is not IPv4
      new EthernetRepr({ dst: 'ff:ff:ff:ff:ff:ff', src: b.mac, vlan: [], etherType: 0x0806 }).encodeInto(
        arp,
        0,
      );
      const cap = await startCapture({
        interface: a.ifname,
        filter: 'udp dst port 40006',
        count: 1,
        lingerMs: 300,
        timeoutMs: 20_000,
      });
      const asIpv4 = await inject({
        sink: 'raw',
        link: LinkType.IPV4,
        packets: [tooBig, unroutable, ok].map((p) => p.toString('hex')),
      });
      expect(asIpv4.stats).toEqual({
        packetsIn: 3,
        packetsOut: 3,
        sent: 1,
        failed: 2,
        bytesSent: ok.length,
        dropped: {},
        sendErrors: { 'Message too long': 1, 'Network is unreachable': 1 },
      });
      const asFrames = await inject({ sink: 'raw', link: LinkType.ETHERNET, packets: [arp.toString('hex')] });
      expect(asFrames.stats).toMatchObject({
        packetsIn: 1,
        packetsOut: 0,
        sent: 0,
        dropped: { 'not-ipv4': 1 },
      });
      const got = await cap.done;
      expect(got.packets.map((p) => p.hex)).toEqual([frameFromB(ok).toString('hex')]);
    });

    it('drops and counts what RawIpv4Sink cannot find a whole IPv4 packet in', async () => {
      // Runs in the test's own namespace: every packet here is refused before it reaches the socket, and
      // the socket is bound to loopback so that a packet let through by mistake could not leave the host.
      const sink = new RawIpv4Sink({ interface: 'lo' });
      const ok = udp(4, 40007);
      const eth = (type: number, payload: Buffer) => {
        const head = Buffer.alloc(14);
        new EthernetRepr({ dst: a.mac, src: b.mac, vlan: [], etherType: type }).encodeInto(head, 0);
        return Buffer.concat([head, payload]);
      };
      const cases: [string, Packet][] = [
        ['not-ipv4', { data: eth(0x0806, Buffer.alloc(28)), ts: 0n, link: LinkType.ETHERNET }],
        ['not-ipv4', { data: eth(0x86dd, Buffer.alloc(40)), ts: 0n, link: LinkType.ETHERNET }],
        ['not-ipv4', { data: Buffer.from([0x60, 0, 0, 0]), ts: 0n, link: LinkType.RAW }],
        ['link-type', { data: ok, ts: 0n, link: 147 }],
        ['truncated', { data: Buffer.alloc(10), ts: 0n, link: LinkType.ETHERNET }],
        ['truncated', { data: ok.subarray(0, 12), ts: 0n, link: LinkType.IPV4 }],
        // Cut by a snaplen (origLen says so): the rest of the packet is missing, not wrong.
        ['truncated', { data: ok.subarray(0, 25), ts: 0n, link: LinkType.IPV4, origLen: ok.length }],
        // No origLen: the header claims bytes that are not there.
        ['malformed', { data: ok.subarray(0, 25), ts: 0n, link: LinkType.IPV4 }],
        ['malformed', { data: Buffer.from(ok).fill(0x55, 0, 1), ts: 0n, link: LinkType.IPV4 }], // version 5
      ];
      const emitted: Packet[] = [];
      for (const [, pkt] of cases) sink.process(pkt, (p) => emitted.push(p));
      await sink.close();
      const expected: Record<string, number> = {};
      for (const [reason] of cases) expected[reason] = (expected[reason] ?? 0) + 1;
      expect(sink.stats()).toEqual({
        packetsIn: cases.length,
        packetsOut: 0,
        sent: 0,
        failed: 0,
        bytesSent: 0,
        dropped: expected,
        sendErrors: {},
      });
      expect(emitted).toEqual([]);
    });

    it('says which interfaces exist when the one asked for does not', () => {
      const name = `nx${lab.tag}`.slice(0, 15);
      let thrown: unknown;
      try {
        new LiveCapture({ interface: name });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(LiveIoError);
      expect((thrown as LiveIoError).kind).toBe('no-such-interface');
      expect((thrown as LiveIoError).message).toMatch(
        new RegExp(`^live capture: no interface '${name}'; available: .*\\blo\\b.* \\(see 'ip link'\\)$`),
      );
      expect(() => new FrameSink({ interface: name })).toThrow(`frame injection: no interface '${name}'`);
    });

    it('says how to fix a filter that does not compile', async () => {
      const cap = await startCapture({ interface: a.ifname, filter: 'udp port', count: 1, timeoutMs: 5_000 });
      expect(cap.first).toEqual({
        error: {
          kind: 'bad-filter',
          message: `live capture on ${a.ifname}: the filter "udp port" does not compile (can't parse filter expression: syntax error); it takes tcpdump/pcap-filter(7) syntax`,
        },
      });
    });

    it('says how to grant the privileges a process lacks', async () => {
      // Root without CAP_NET_RAW and CAP_NET_ADMIN: refused exactly as an ordinary user is, while still
      // able to read the repository wherever it is checked out (an ordinary user may not be).
      const unprivileged: As = { dropCapabilities: ['net_raw', 'net_admin'] };
      const cap = await startCapture({ interface: a.ifname, count: 1, timeoutMs: 5_000 }, nsA, unprivileged);
      expect(cap.first).toEqual({
        error: {
          kind: 'permission',
          message: `live capture on ${a.ifname} is not permitted (socket: Operation not permitted): run as root or grant CAP_NET_RAW,CAP_NET_ADMIN: setcap cap_net_raw,cap_net_admin=eip $(readlink -f $(which node))`,
        },
      });
      const raw = await inject({ sink: 'raw', link: LinkType.IPV4, packets: [] }, nsB, unprivileged);
      expect(raw.error).toEqual({
        kind: 'permission',
        message:
          'raw IPv4 socket is not permitted (Operation not permitted): run as root or grant CAP_NET_RAW,CAP_NET_ADMIN: setcap cap_net_raw,cap_net_admin=eip $(readlink -f $(which node))',
      });
      const frame = await inject(
        { sink: 'frame', interface: b.ifname, link: LinkType.ETHERNET, packets: [] },
        nsB,
        unprivileged,
      );
      expect(frame.error?.kind).toBe('permission');
      expect(frame.error?.message).toContain(`frame injection on ${b.ifname} is not permitted`);
    });
  },
);
