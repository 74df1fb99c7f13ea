/**
 * Capture files against the real tools: what we write, tshark and tcpdump read the same (timestamps to
 * the ns where the format has them, lengths, bytes); what tcpdump, dumpcap, editcap and mergecap write
 * (from real kernel traffic between two network namespaces) we read the same as tshark and tcpdump do.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseCaptureBuffer, readCapture, writeCapture } from '../../src/io/capture-file.js';
import { clonePacket, LinkType, type Packet } from '../../src/packet.js';
import { NetnsLab, waitForOutput } from '../helpers/netns.js';
import { describeSystem } from '../helpers/system.js';
import { tsharkFields } from '../helpers/tshark.js';
import { block, epb, idb, shb, spb } from './capture-bytes.js';

const run = promisify(execFile);
const EXAMPLE = new URL('../../examples/kernel-mix.pcap', import.meta.url);

interface ToolFrame {
  /** ns since the epoch; null when the tool shows no timestamp (a simple packet block). */
  ts: bigint | null;
  len: number;
  caplen: number;
  ifIndex: number;
  /** First dissector of frame.protocols: eth, raw, sll … */
  linkDissector: string;
}

/** "1795319758.841003253" → ns. */
function epochToNs(text: string): bigint {
  const [sec, frac = ''] = text.split('.');
  return BigInt(sec!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9));
}

async function tsharkFrames(path: string): Promise<ToolFrame[]> {
  const fields = ['frame.time_epoch', 'frame.len', 'frame.cap_len', 'frame.interface_id', 'frame.protocols'];
  // tshark's own preferences: these frame fields are what it reads from the file, not a dissection.
  const frames = await tsharkFields(path, { fields, prefs: [] });
  return frames.map((frame) => {
    const [time, len, caplen, ifIndex, protocols] = fields.map((f) => (frame.get(f) ?? []).join(','));
    return {
      ts: time ? epochToNs(time) : null,
      len: Number(len),
      caplen: Number(caplen),
      ifIndex: ifIndex ? Number(ifIndex) : 0,
      linkDissector: protocols!.split(':')[0]!,
    };
  });
}

/** tcpdump -r F --nano -tt -xx: each packet's timestamp and every captured byte. */
async function tcpdumpFrames(path: string): Promise<{ ts: bigint; bytes: Buffer }[]> {
  const { stdout } = await run('tcpdump', ['-r', path, '-n', '--nano', '-tt', '-xx'], {
    maxBuffer: 64 << 20,
  });
  const frames: { ts: bigint; hex: string }[] = [];
  for (const line of stdout.split('\n')) {
    const start = /^(\d+\.\d{9}) /.exec(line);
    if (start) frames.push({ ts: epochToNs(start[1]!), hex: '' });
    const dump = /^\s+0x[0-9a-f]{4}:\s+((?:[0-9a-f]{2,4}\s?)+)$/.exec(line);
    if (dump) frames[frames.length - 1]!.hex += dump[1]!.replace(/\s+/g, '');
  }
  return frames.map((f) => ({ ts: f.ts, bytes: Buffer.from(f.hex, 'hex') }));
}

async function ours(path: string): Promise<Packet[]> {
  const packets: Packet[] = [];
  for await (const p of readCapture(path)) packets.push(clonePacket(p));
  return packets;
}

/** Our reading of `path` against tshark's (all files) and tcpdump's (files of one link type). */
async function expectToolsAgree(path: string, options: { tcpdump: boolean }): Promise<Packet[]> {
  const packets = await ours(path);
  const tshark = await tsharkFrames(path);
  expect(tshark.length, path).toBe(packets.length);
  expect(
    packets.map((p) => ({ ts: p.ts, len: p.origLen, caplen: p.data.length, ifIndex: p.ifIndex })),
    `${path}: tshark`,
  ).toEqual(tshark.map((f) => ({ ts: f.ts ?? 0n, len: f.len, caplen: f.caplen, ifIndex: f.ifIndex })));
  if (options.tcpdump) {
    const tcpdump = await tcpdumpFrames(path);
    expect(
      packets.map((p) => ({ ts: p.ts, bytes: p.data })),
      `${path}: tcpdump`,
    ).toEqual(tcpdump);
  }
  return packets;
}

const dissectorOf: Record<number, string> = {
  [LinkType.ETHERNET]: 'eth',
  [LinkType.RAW]: 'raw',
  [LinkType.LINUX_SLL]: 'sll',
};

describeSystem('capture files we write, read by tshark and tcpdump', ['tshark', 'tcpdump'], () => {
  const dir = mkdtempSync(join(tmpdir(), `pktveil-interop-${process.pid}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Real frames from the bundled kernel capture, re-stamped so every ns digit matters.
  const frames = [...parseCaptureBuffer(readFileSync(EXAMPLE), { copy: true })];
  const ethernet: Packet[] = frames.map((p, i) => ({
    ...p,
    ts: 1_700_000_000_000_000_000n + BigInt(i) * 123_456_789n + BigInt(i),
  }));

  const configs = [
    { name: 'pcap-le-us', format: 'pcap', byteOrder: 'le', nanosecond: false },
    { name: 'pcap-le-ns', format: 'pcap', byteOrder: 'le', nanosecond: true },
    { name: 'pcap-be-us', format: 'pcap', byteOrder: 'be', nanosecond: false },
    { name: 'pcap-be-ns', format: 'pcap', byteOrder: 'be', nanosecond: true },
    { name: 'pcap-be-ns-snap64', format: 'pcap', byteOrder: 'be', nanosecond: true, snaplen: 64 },
    { name: 'pcapng-le-ns', format: 'pcapng', byteOrder: 'le', nanosecond: true },
    { name: 'pcapng-be-ns', format: 'pcapng', byteOrder: 'be', nanosecond: true },
    { name: 'pcapng-le-us-snap64', format: 'pcapng', byteOrder: 'le', nanosecond: false, snaplen: 64 },
  ] as const;

  for (const config of configs) {
    it(`${config.name}: tshark and tcpdump see our timestamps, lengths and bytes`, async () => {
      const path = join(dir, `${config.name}.${config.format}`);
      await writeCapture(path, ethernet, { link: LinkType.ETHERNET, ...config });
      const packets = await expectToolsAgree(path, { tcpdump: true });
      const snaplen = 'snaplen' in config ? config.snaplen : Number.POSITIVE_INFINITY;
      expect(packets).toEqual(
        ethernet.map((p) => ({
          ...p,
          ts: config.nanosecond ? p.ts : p.ts - (p.ts % 1000n),
          data: p.data.subarray(0, Math.min(p.data.length, snaplen)),
        })),
      );
    });
  }

  it('pcapng with several link types: tshark sees each interface and its link type', async () => {
    const raw = ethernet.map((p) => ({
      ...p,
      data: p.data.subarray(14),
      origLen: p.data.length - 14,
      link: LinkType.RAW,
    }));
    const sll = ethernet.map((p) => {
      const header = Buffer.alloc(16);
      header.writeUInt16BE(0, 0); // sent to us
      header.writeUInt16BE(1, 2); // ARPHRD_ETHER
      header.writeUInt16BE(6, 4);
      p.data.copy(header, 6, 6, 12);
      p.data.copy(header, 14, 12, 14);
      return {
        ...p,
        data: Buffer.concat([header, p.data.subarray(14)]),
        origLen: p.data.length + 2,
        link: LinkType.LINUX_SLL,
      };
    });
    const mixed = ethernet.flatMap((p, i) => [
      p,
      { ...raw[i]!, ts: p.ts + 1n },
      { ...sll[i]!, ts: p.ts + 2n },
    ]);
    const path = join(dir, 'mixed.pcapng');
    await writeCapture(path, mixed, { format: 'pcapng' });
    const packets = await expectToolsAgree(path, { tcpdump: false });
    expect(packets.map((p) => [p.ifIndex, p.link])).toEqual(
      mixed.map((p) => [[1, 101, 113].indexOf(p.link), p.link]),
    );
    const tshark = await tsharkFrames(path);
    expect(tshark.map((f) => f.linkDissector)).toEqual(mixed.map((p) => dissectorOf[p.link]));
  });

  it('hand-laid pcapng with 2^-n and 10^-n resolutions, offsets, unknown and simple packet blocks: tshark agrees', async () => {
    const d = frames[0]!.data;
    const bytes = Buffer.concat([
      shb('be'),
      idb('be', { link: 1, snaplen: 40, tsresol: 0x80 | 20, tsoffset: 1000n }),
      idb('be', { link: 1, tsresol: 3 }),
      idb('be', { link: 1, tsresol: 10 }),
      block('be', 0x00000099, Buffer.from('a block type nobody assigned')),
      epb('be', 0, 1795320823089014116n, d.subarray(0, 40), d.length),
      epb('be', 1, 1795320823089n, d),
      epb('be', 2, 17953208230890141161n, d),
      spb('be', d.length, d.subarray(0, 40)),
    ]);
    const path = join(dir, 'hand-laid.pcapng');
    writeFileSync(path, bytes);
    const packets = await expectToolsAgree(path, { tcpdump: false });
    expect(packets.map((p) => p.ts)).toEqual([
      (1795320823089014116n * 1_000_000_000n) / 2n ** 20n + 1000n * 1_000_000_000n,
      1795320823089000000n,
      1795320823089014116n,
      0n,
    ]);
    // tshark shows no time for the simple packet block, which carries none (we say 0).
    expect((await tsharkFrames(path))[3]!.ts).toBeNull();
  });
});

/** SIGINT (the tools flush and close their files), then waits for the exit, at most 10 s. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGINT');
  });
}

describeSystem(
  'capture files the tools write, read by us',
  ['root', 'netns', 'tshark', 'tcpdump', 'ethtool'],
  () => {
    const lab = new NetnsLab();
    const dir = mkdtempSync(join(tmpdir(), `pktveil-interop-${process.pid}-`));
    const files = {
      micro: join(dir, 'tcpdump-us.pcap'),
      nano: join(dir, 'tcpdump-ns.pcap'),
      snap: join(dir, 'tcpdump-s64.pcap'),
      dumpcap: join(dir, 'dumpcap-two-links.pcapng'),
    };

    beforeAll(async () => {
      const { a, b } = lab.addVethPair(lab.addNamespace('a'), lab.addNamespace('b'), {
        addresses: ['198.18.42.1', '198.18.42.2'],
      });
      const start = (cmd: string, args: string[], ready: RegExp) => {
        const child = lab.spawn(b.ns, cmd, args);
        return waitForOutput(child, ready, cmd).then(() => child);
      };
      const listening = /listening on/;
      const captures = await Promise.all([
        start('tcpdump', ['-Z', 'root', '-U', '-i', b.ifname, '-w', files.micro], listening),
        start(
          'tcpdump',
          ['-Z', 'root', '-U', '-i', b.ifname, '--time-stamp-precision', 'nano', '-w', files.nano],
          listening,
        ),
        start('tcpdump', ['-Z', 'root', '-U', '-i', b.ifname, '-s', '64', '-w', files.snap], listening),
        // dumpcap on the veth (Ethernet) and on "any" (Linux cooked): one pcapng, two link types.
        start('dumpcap', ['-q', '-i', b.ifname, '-i', 'any', '-w', files.dumpcap], /Capturing on/),
      ]);
      try {
        await new Promise((r) => setTimeout(r, 500));
        const ping = await lab.run(
          a.ns,
          'ping',
          ['-c', '10', '-i', '0.05', '-s', '600', '-W', '1', b.address],
          { timeoutMs: 20_000 },
        );
        expect(ping.code, `ping: ${ping.stderr}`).toBe(0);
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        await Promise.all(captures.map(stop));
      }
    });

    afterAll(() => {
      lab.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('tcpdump -w (µs), --time-stamp-precision nano and -s 64: we read what tshark and tcpdump read', async () => {
      const micro = await expectToolsAgree(files.micro, { tcpdump: true });
      const nano = await expectToolsAgree(files.nano, { tcpdump: true });
      const snap = await expectToolsAgree(files.snap, { tcpdump: true });
      expect(nano.length).toBeGreaterThanOrEqual(10);
      expect(micro.every((p) => p.ts % 1000n === 0n)).toBe(true);
      expect(nano.some((p) => p.ts % 1000n !== 0n)).toBe(true);
      const pings = snap.filter((p) => (p.origLen ?? 0) > 600);
      expect(pings.length).toBeGreaterThanOrEqual(10); // echo requests and replies (some may be lost to ARP)
      expect(pings.every((p) => p.data.length === 64)).toBe(true);
    });

    it('dumpcap pcapng with two interfaces of different link types (and statistics blocks)', async () => {
      const packets = await expectToolsAgree(files.dumpcap, { tcpdump: false });
      const tshark = await tsharkFrames(files.dumpcap);
      expect(new Set(packets.map((p) => p.link))).toEqual(new Set([LinkType.ETHERNET, LinkType.LINUX_SLL]));
      expect(packets.map((p) => dissectorOf[p.link])).toEqual(tshark.map((f) => f.linkDissector));
      expect(packets.filter((p) => p.ifIndex === 0).every((p) => p.link === LinkType.ETHERNET)).toBe(true);
    });

    it('editcap -F pcapng / pcap / nsecpcap and -s 64: same packets, timestamps as tshark shows them', async () => {
      const source = await ours(files.nano);
      const out = (name: string) => join(dir, name);
      await run('editcap', ['-F', 'pcapng', files.nano, out('ng.pcapng')]);
      await run('editcap', ['-F', 'pcap', files.nano, out('us.pcap')]);
      await run('editcap', ['-F', 'nsecpcap', out('us.pcap'), out('ns-from-us.pcap')]);
      await run('editcap', ['-s', '64', files.nano, out('s64.pcap')]);
      await run('editcap', ['-F', 'pcapng', '-s', '64', files.nano, out('s64.pcapng')]);

      const ng = await expectToolsAgree(out('ng.pcapng'), { tcpdump: true });
      expect(ng).toEqual(source);
      const us = await expectToolsAgree(out('us.pcap'), { tcpdump: true });
      expect(us.map((p) => p.ts)).toEqual(source.map((p) => p.ts - (p.ts % 1000n)));
      expect(us.map((p) => p.data)).toEqual(source.map((p) => p.data));
      const nsFromUs = await expectToolsAgree(out('ns-from-us.pcap'), { tcpdump: true });
      expect(nsFromUs).toEqual(us);
      for (const cut of ['s64.pcap', 's64.pcapng']) {
        const snapped = await expectToolsAgree(out(cut), { tcpdump: true });
        expect(snapped).toEqual(source.map((p) => ({ ...p, data: p.data.subarray(0, 64) })));
      }
    });

    it('mergecap of an Ethernet and a raw-IP capture: one pcapng, interface per input, as tshark numbers them', async () => {
      const eth = await ours(files.nano);
      const raw = eth.map((p) => ({
        ...p,
        data: p.data.subarray(14),
        origLen: (p.origLen ?? p.data.length) - 14,
        link: LinkType.RAW,
        ts: p.ts + 1000n,
      }));
      const rawPath = join(dir, 'raw.pcap');
      await writeCapture(rawPath, raw, { format: 'pcap', link: LinkType.RAW });
      const merged = join(dir, 'merged.pcapng');
      await run('mergecap', ['-F', 'pcapng', '-w', merged, files.nano, rawPath]);
      const packets = await expectToolsAgree(merged, { tcpdump: false });
      expect(packets.filter((p) => p.ifIndex === 0)).toEqual(eth);
      expect(packets.filter((p) => p.ifIndex === 1)).toEqual(raw.map((p) => ({ ...p, ifIndex: 1 })));
      const tshark = await tsharkFrames(merged);
      expect(tshark.map((f) => f.linkDissector)).toEqual(packets.map((p) => dissectorOf[p.link]));
    });
  },
);
