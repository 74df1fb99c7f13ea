/**
 * `pktveil iptfs encap|decap` (contracts/cli.md, "iptfs"): with --rate every outer packet has the same size
 * and leaves exactly on the rate's schedule in virtual time (checked to the nanosecond); decap returns the
 * inner packets unchanged and in order; a lost outer packet loses only what it carried; on-demand and
 * don't-fragment; usage and configuration errors.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { networkOffset } from '../../src/codec/network-offset.js';
import { openCaptureWriter, parseCaptureBuffer } from '../../src/io/capture-file.js';
import { clonePacket, type Packet } from '../../src/packet.js';
import { udpPacket } from '../esp/engine-fixtures.js';
import { type CliResult, runCli } from '../helpers/cli.js';

/** Two namespaces talking: IPv6 ND/MLD, ARP, ICMP, TCP with 1514-byte segments, a fragmented UDP datagram. */
const KERNEL_MIX = fileURLToPath(new URL('../../examples/kernel-mix.pcap', import.meta.url));
const ARP_FRAMES = 2;

const SA = {
  spi: '0x00009347',
  mode: 'iptfs',
  suite: 'chacha20-poly1305',
  encKey: '1f'.repeat(36),
  tunnel: { src: '198.18.0.1', dst: '198.18.0.2' },
};

let dir: string;
let saFile: string;
/** 400 UDP packets of 0–1400 payload bytes, 100 µs apart: more than a 20 Mbit/s tunnel of 1000-byte packets carries at once. */
let burst: string;

function packets(file: string): Packet[] {
  return [...parseCaptureBuffer(readFileSync(file))].map(clonePacket);
}

/** The IP packets of a capture (link header cut off), as hex, in file order. */
function ipPackets(file: string): string[] {
  const version = { ip: 4 as 4 | 6 };
  const out: string[] = [];
  for (const p of packets(file)) {
    const off = networkOffset(p.data, p.link, version);
    if (off >= 0) out.push(p.data.subarray(off).toString('hex'));
  }
  return out;
}

/** `pktveil iptfs ACTION --sa <the test's SA> ARGS…`. */
function iptfs(action: 'encap' | 'decap', ...args: string[]): Promise<CliResult> {
  return runCli(['iptfs', action, '--sa', saFile, ...args]);
}

function stats(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pktveil-iptfs-cli-'));
  saFile = join(dir, 'sa.json');
  writeFileSync(saFile, JSON.stringify(SA));
  burst = join(dir, 'burst.pcap');
  const writer = await openCaptureWriter(burst, { format: 'pcap', link: 228 });
  for (let i = 0; i < 400; i++) {
    const payload = Buffer.alloc((i * 337) % 1401, i & 0xff);
    await writer.writePacket({
      data: udpPacket({ payload, id: i }),
      ts: 1_700_000_000_000_000_000n + BigInt(i) * 100_000n,
      link: 228,
    });
  }
  await writer.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pktveil iptfs encap --rate', () => {
  it('sends packets of exactly --packet-size bytes, spaced exactly at the rate from the first input timestamp', async () => {
    const out = join(dir, 'rate.pcap');
    const r = await iptfs(
      'encap',
      '--packet-size',
      '1000',
      '--rate',
      '3000000',
      KERNEL_MIX,
      out,
      '--stats',
      'json',
    );
    expect([r.code, r.stderr]).toEqual([0, '']);
    const input = packets(KERNEL_MIX);
    const outer = packets(out).filter((p) => p.data.readUInt16BE(12) === 0x0800 && p.data[14 + 9] === 50);
    const t0 = input[0]!.ts;
    // 1000 bytes at 3 Mbit/s: slot k at t0 + ⌊k · 8000 · 10^9 / (3 · 10^6)⌋ ns = t0 + ⌊k · 8 000 000 / 3⌋.
    for (const [k, p] of outer.entries()) {
      expect(p.ts).toBe(t0 + (BigInt(k) * 8_000_000n) / 3n);
      expect(p.data.readUInt16BE(14 + 2)).toBe(1000);
      expect(p.data.length).toBe(14 + 1000);
      expect(p.data.readUInt32BE(14 + 20 + 4)).toBe(k + 1); // ESP sequence numbers 1, 2, 3, …
    }
    // Until every inner packet has left, and not a slot longer.
    expect(outer.at(-1)!.ts).toBeGreaterThanOrEqual(input.at(-1)!.ts);
    const s = stats(r.stdout);
    expect(s).toMatchObject({
      packetsIn: input.length,
      passedThrough: ARP_FRAMES,
      outerPackets: outer.length,
      slots: outer.length,
    });
    expect(s.innerPackets).toBe(input.length - ARP_FRAMES);
    expect(s.allPadPackets as number).toBeGreaterThan(outer.length / 2);
    expect(s.gapErrorMaxNs as number).toBeLessThanOrEqual(1);
  });

  it('decap returns every inner packet unchanged and in order, stamped no earlier than it was sent', async () => {
    for (const [input, rate] of [
      [KERNEL_MIX, '3000000'],
      [burst, '20000000'],
    ] as const) {
      const sealed = join(dir, 'sealed.pcap');
      const opened = join(dir, 'opened.pcap');
      const enc = await iptfs(
        'encap',
        '--packet-size',
        '1000',
        '--rate',
        rate,
        input,
        sealed,
        '--stats',
        'json',
      );
      expect(enc.code).toBe(0);
      const dec = await iptfs('decap', sealed, opened, '--stats', 'json');
      expect([dec.code, dec.stderr]).toEqual([0, '']);
      expect(stats(dec.stdout)).toMatchObject({ dropped: {}, lostPayloads: 0 });
      expect(ipPackets(opened)).toEqual(ipPackets(input));
      const sent = packets(input).filter((p) => p.data.length > 60 || p.link === 228);
      const got = packets(opened).filter((p) => p.data.length > 60 || p.link === 228);
      for (let i = 0; i < Math.min(sent.length, got.length); i++)
        expect(got[i]!.ts).toBeGreaterThanOrEqual(sent[i]!.ts);
    }
    // The burst outruns the tunnel: packets were split across outer packets and waited in the queue.
    const enc = await iptfs(
      'encap',
      '--packet-size',
      '1000',
      '--rate',
      '20000000',
      burst,
      join(dir, 'b.pcap'),
      '--stats',
      'json',
    );
    expect(stats(enc.stdout).fragmentedPackets as number).toBeGreaterThan(100);
  });

  it('decap of a stream with one outer packet missing loses only inner packets, keeps the rest in order', async () => {
    const sealed = join(dir, 'lossy-sealed.pcap');
    expect((await iptfs('encap', '--packet-size', '1000', '--rate', '20000000', burst, sealed)).code).toBe(0);
    const outer = packets(sealed);
    const lossy = join(dir, 'lossy.pcap');
    const writer = await openCaptureWriter(lossy, { format: 'pcap', link: 228 });
    for (const [i, p] of outer.entries()) if (i !== 100) await writer.writePacket(p);
    await writer.close();
    const opened = join(dir, 'lossy-opened.pcap');
    const dec = await iptfs('decap', lossy, opened, '--stats', 'json');
    expect(dec.code).toBe(0);
    expect(stats(dec.stdout)).toMatchObject({ lostPayloads: 1 });
    const all = ipPackets(burst);
    const got = ipPackets(opened);
    // A 1000-byte outer packet carries parts of at most a few inner packets: those, and only those, are gone.
    expect(all.length - got.length).toBeGreaterThanOrEqual(1);
    expect(all.length - got.length).toBeLessThanOrEqual(3);
    let j = 0;
    for (const p of got) {
      while (j < all.length && all[j] !== p) j++;
      expect(j).toBeLessThan(all.length); // every packet delivered is an original, in the original order
      j++;
    }
  });
});

describe('pktveil iptfs encap modes', () => {
  it('--on-demand sends no padding-only packets; --dont-fragment splits no inner packet', async () => {
    const out = join(dir, 'od.pcap');
    const r = await iptfs(
      'encap',
      '--packet-size',
      '1500',
      '--on-demand',
      '--dont-fragment',
      burst,
      out,
      '--stats',
      'json',
    );
    expect([r.code, r.stderr]).toEqual([0, '']);
    const s = stats(r.stdout);
    expect(s).toMatchObject({ allPadPackets: 0, fragmentedPackets: 0, innerPackets: 400, dropped: {} });
    for (const p of packets(out)) expect(p.data.length).toBe(1500);
    const opened = join(dir, 'od-opened.pcap');
    expect((await iptfs('decap', out, opened)).code).toBe(0);
    expect(ipPackets(opened)).toEqual(ipPackets(burst));
  });
});

describe('pktveil iptfs errors', () => {
  it('names packet sizes the suite cannot reach, and the nearest that work (exit 1)', async () => {
    const r = await iptfs(
      'encap',
      '--packet-size',
      '1001',
      '--rate',
      '1000000',
      KERNEL_MIX,
      join(dir, 'x.pcap'),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('IP-TFS packet size 1001 cannot be reached exactly with chacha20-poly1305');
    expect(r.stderr).toContain('use 1000 or 1004');
  });

  it('refuses an SA that is not in iptfs mode (exit 1)', async () => {
    const tunnel = join(dir, 'tunnel.json');
    writeFileSync(tunnel, JSON.stringify({ ...SA, mode: 'tunnel' }));
    const r = await runCli(['iptfs', 'decap', '--sa', tunnel, KERNEL_MIX, join(dir, 'x.pcap')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('mode is "tunnel"; IP-TFS needs "iptfs"');
  });

  it.each([
    [['encap', '--sa', 'S', '--packet-size', '1000', 'IN', 'OUT'], 'give exactly one of --rate'],
    [['encap', '--sa', 'S', '--rate', '1000', 'IN', 'OUT'], 'give --packet-size BYTES'],
    [['decap', '--sa', 'S', '--rate', '1000', 'IN', 'OUT'], '--rate is not an option of iptfs decap'],
    [['encap', '--packet-size', '1000', '--on-demand', 'IN', 'OUT'], 'give --sa FILE'],
    [['wrap', 'IN', 'OUT'], "unknown action 'wrap'"],
  ])('usage errors exit 2: %j', async (args, message) => {
    const r = await runCli(['iptfs', ...args.map((a) => (a === 'S' ? saFile : a))]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });
});
