/**
 * `pktveil capture` on a live link: the CLI runs inside one namespace, the kernel of another sends it
 * pings, and tshark reads the file it wrote.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { collect, NetnsLab, type VethPair, waitForOutput } from '../helpers/netns.js';
import { describeSystem } from '../helpers/system.js';
import { tsharkFields } from '../helpers/tshark.js';

const cliMain = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** tshark's reading of each frame: captured and wire length, IP protocol ('' when none). */
async function tsharkFrames(file: string): Promise<{ capLen: number; len: number; proto: string }[]> {
  const fields = ['frame.cap_len', 'frame.len', 'ip.proto'];
  const frames = await tsharkFields(file, { fields, prefs: [] });
  return frames.map((frame) => {
    const [capLen, len, proto] = fields.map((f) => (frame.get(f) ?? []).join(','));
    return { capLen: Number(capLen), len: Number(len), proto: proto ?? '' };
  });
}

describeSystem('pktveil capture on a live interface', ['netns', 'cap', 'tshark'], () => {
  const lab = new NetnsLab();
  let dir: string;
  let link: VethPair;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pktveil-capture-cli-'));
    link = lab.addVethPair(lab.addNamespace('pinger'), lab.addNamespace('capturer'), { disableIpv6: true });
  });
  afterAll(() => {
    lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the CLI in the capturing namespace, waits until it listens, pings from the other side. */
  async function captureWhilePinging(args: string[], pings: number) {
    const child = lab.spawn(link.b.ns, process.execPath, [
      '--import',
      'tsx',
      cliMain,
      'capture',
      '-i',
      link.b.ifname,
      ...args,
    ]);
    const done = collect(child, 30_000);
    await waitForOutput(child, /listening on /, 'pktveil capture', 20_000);
    await lab.run(link.a.ns, 'ping', [
      '-c',
      String(pings),
      '-i',
      '0.05',
      '-W',
      '1',
      '-s',
      '200',
      link.b.address,
    ]);
    return done;
  }

  it('stops after --count packets and writes them as tshark reads them, filter applied', async () => {
    const file = join(dir, 'count.pcapng');
    const r = await captureWhilePinging(['-w', file, '-c', '6', '--filter', 'icmp'], 10);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`6 packets captured on ${link.b.ifname}`);
    const frames = await tsharkFrames(file);
    expect(frames).toHaveLength(6);
    for (const f of frames) expect(f).toEqual({ capLen: 242, len: 242, proto: '1' });
  });

  it('cuts packets to --snaplen but records their wire length, in pcap when the name says so', async () => {
    const file = join(dir, 'snap.pcap');
    const r = await captureWhilePinging(['-w', file, '-c', '4', '--filter', 'icmp', '--snaplen', '60'], 6);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(file).readUInt32LE(0)).toBe(0xa1b23c4d); // classic pcap, nanosecond, host order
    const frames = await tsharkFrames(file);
    expect(frames).toHaveLength(4);
    for (const f of frames) expect(f).toMatchObject({ capLen: 60, len: 242 });
  });

  it('stops at --duration even when nothing arrives', async () => {
    const file = join(dir, 'quiet.pcapng');
    const started = Date.now();
    const child = lab.spawn(link.b.ns, process.execPath, [
      '--import',
      'tsx',
      cliMain,
      'capture',
      '-i',
      link.b.ifname,
      '-w',
      file,
      '--filter',
      'udp port 9',
      '--duration',
      '1',
    ]);
    const r = await collect(child, 20_000);
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stderr).toContain('0 packets captured');
    expect(await tsharkFrames(file)).toHaveLength(0);
  });

  it('says what is wrong with a bad interface or filter, exiting non-zero', async () => {
    const noIf = await runCli(['capture', '-i', 'pktveil-none0', '-w', join(dir, 'x.pcap')]);
    expect(noIf.code).toBe(1);
    expect(noIf.stderr).toMatch(/no interface 'pktveil-none0'; available: .*\(see 'ip link'\)/);
    const usage = await runCli(['capture', '-w', join(dir, 'x.pcap')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('missing -i IFACE');
  });
});
