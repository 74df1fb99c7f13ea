import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inspectJson } from '../helpers/cli.js';
import { describeSystem } from '../helpers/system.js';
import { compareWithTshark } from '../helpers/tshark.js';

// scapy crafts the corner cases (independent of our encoders); tshark reads them; pktveil must agree
// with tshark on every contract field, in pcap and in pcapng.
describeSystem('inspect agrees with tshark on scapy-crafted corner cases', ['scapy', 'tshark'], () => {
  let dir: string;
  let names: string[];
  const files: Record<string, string> = {};

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pktveil-corner-'));
    files.pcap = join(dir, 'corner.pcap');
    files.pcapng = join(dir, 'corner.pcapng');
    const script = new URL('./make-corner-cases.py', import.meta.url).pathname;
    names = execFileSync('/usr/bin/python3', [script, files.pcap], { encoding: 'utf8' }).trim().split('\n');
    execFileSync('editcap', ['-F', 'pcapng', files.pcap, files.pcapng]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const format of ['pcap', 'pcapng']) {
    it(`agrees field by field (${format})`, async () => {
      const cmp = await compareWithTshark(files[format]!);
      expect(cmp.mismatches).toEqual([]);
      expect(cmp.frames).toBe(names.length);
      for (const layer of ['frame', 'ipv4', 'ipv6', 'tcp', 'udp', 'icmp', 'esp', 'arp'])
        expect(cmp.compared[layer], `fields compared for ${layer}`).toBeGreaterThan(0);
    });
  }

  it('gives the checksum verdicts and layers each case was built to show', async () => {
    const frames = await inspectJson(files.pcap!);
    const byName = new Map(names.map((n, i) => [n, frames[i]!]));
    const layer = (name: string, l: string) =>
      (byName.get(name)!.layers as { layer: string }[]).find((x) => x.layer === l) as Record<string, unknown>;
    expect(layer('bad-ip-checksum', 'ipv4').checksumOk).toBe(false);
    expect(layer('bad-tcp-checksum', 'tcp').checksumOk).toBe(false);
    expect(layer('bad-udp-checksum', 'udp').checksumOk).toBe(false);
    expect(layer('zero-udp-checksum', 'udp').checksumOk).toBeNull();
    expect(layer('tcp-sack-timestamps', 'tcp').checksumOk).toBe(true);
    expect(layer('ipv4-options-udp', 'ipv4').options).toMatch(/^07/); // record route first
    expect(layer('stacked-vlan-tcp', 'eth').vlan).toEqual([
      { tpid: 0x88a8, pcp: 3, dei: 0, id: 100 },
      { tpid: 0x8100, pcp: 0, dei: 1, id: 200 },
    ]);
    expect(layer('esp', 'esp')).toMatchObject({ spi: 0xa5f8, seq: 1, payloadLength: 96 });
    expect(layer('natt-esp', 'esp')).toMatchObject({ spi: 0x1234, seq: 7 });
    expect(layer('natt-ike', 'natt')).toEqual({ layer: 'natt', kind: 'ike' });
    expect(layer('natt-keepalive', 'natt')).toEqual({ layer: 'natt', kind: 'keepalive' });
    expect(layer('ipv4-fragment-0', 'udp').checksumOk).toBeNull();
    expect(layer('ipv4-fragment-1', 'udp')).toBeUndefined();
    expect(layer('anon-layer', 'anon')).toEqual({
      layer: 'anon',
      currentSid: '0011223344556677',
      sequence: '1',
      payloadLength: 64,
    });
    for (const [name, frame] of byName) expect(frame.error, name).toBeUndefined();
  });
});
