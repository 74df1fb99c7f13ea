/**
 * `pktveil esp encap|decap` (contracts/cli.md, "esp"): round trips of a real capture in pcap and pcapng,
 * --stats json, telescopes of three --sa, usage errors (exit 2) and file errors (exit 1) that name what
 * is wrong.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecurityAssociation } from '../../src/esp/sa.js';
import { readSaFile } from '../../src/esp/sa-file.js';
import { openCaptureWriter, parseCaptureBuffer } from '../../src/io/capture-file.js';
import { clonePacket, type Packet } from '../../src/packet.js';
import { ipv6Packet, mustSeal, udpPacket } from '../esp/engine-fixtures.js';
import { runCli } from '../helpers/cli.js';

/**
 * Two veth namespaces talking (tshark reading): 12 IPv6 frames (ICMPv6 ND, MLD, RS), 2 ARP, and 20 IPv4
 * frames: ICMP echo, a TCP/HTTP exchange with 1514-byte segments, UDP, and one UDP datagram in two
 * fragments (frames 27–29: MF at offset 0 and 1480, the last at 2960).
 */
const KERNEL_MIX = fileURLToPath(new URL('../../examples/kernel-mix.pcap', import.meta.url));
const IPV4_FRAMES = 20;
const OTHER_FRAMES = 14;
const FRAGMENTS = 3;

const SAS = {
  tunnel: {
    spi: '0x0000a5f8',
    mode: 'tunnel',
    suite: 'aes-gcm-16',
    encKey: 'feffe9928665731c6d6a8f9467308308cafebabe',
    authKey: '',
    esn: false,
    seq: 1,
    iv: 'facedbaddecaf888',
    replayWindow: 64,
    tunnel: { src: '198.18.0.1', dst: '198.18.0.2' },
    tfcPadTo: 0,
    natt: null,
  },
  transport: {
    spi: 4096,
    mode: 'transport',
    suite: 'aes-cbc-hmac-sha256-128',
    encKey: '000102030405060708090a0b0c0d0e0f',
    authKey: '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
  },
  // A telescope S → A → B → C: the source holds S-C, S-B, S-A; each node the one ending at it.
  sc: {
    spi: '0x000000c0',
    mode: 'tunnel',
    suite: 'chacha20-poly1305',
    encKey: 'c0'.repeat(36),
    tunnel: { src: '198.18.0.1', dst: '198.18.0.30' },
  },
  sb: {
    spi: '0x000000b0',
    mode: 'tunnel',
    suite: 'aes-cbc-hmac-sha1-96',
    encKey: 'b0'.repeat(16),
    authKey: 'b1'.repeat(20),
    tunnel: { src: '198.18.0.1', dst: '198.18.0.20' },
  },
  sa: {
    spi: '0x000000a0',
    mode: 'tunnel',
    suite: 'aes-gcm-16',
    encKey: 'a0'.repeat(20),
    esn: true,
    // 2^32 − 64: ESN sequence numbers as a decimal string, as far as a new receiver (window 64) can follow.
    seq: '4294967232',
    tunnel: { src: '198.18.0.1', dst: '198.18.0.10' },
    natt: { srcPort: 4500, dstPort: 4500 },
  },
} as const;

let dir: string;
const sa: Record<keyof typeof SAS, string> = {} as Record<keyof typeof SAS, string>;
let kernelMixPcapng: string;

function packets(file: string): Packet[] {
  return [...parseCaptureBuffer(readFileSync(file))].map(clonePacket);
}

/** Packet data, timestamps and link types, for comparing files. */
function summary(file: string) {
  return packets(file).map((p) => ({ ts: p.ts, link: p.link, data: p.data.toString('hex') }));
}

function isIpv4OverEthernet(p: Packet): boolean {
  return p.data.readUInt16BE(12) === 0x0800;
}

async function esp(args: string[]) {
  const r = await runCli(['esp', ...args]);
  return r;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pktveil-esp-cli-'));
  for (const [name, json] of Object.entries(SAS)) {
    sa[name as keyof typeof SAS] = join(dir, `${name}.json`);
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(json, null, 2));
  }
  // The same capture as pcapng, written by the library's own writer.
  kernelMixPcapng = join(dir, 'kernel-mix.pcapng');
  const writer = await openCaptureWriter(kernelMixPcapng, { format: 'pcapng', link: 1 });
  for (const p of parseCaptureBuffer(readFileSync(KERNEL_MIX))) await writer.writePacket(p);
  await writer.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pktveil esp', () => {
  it.each(['pcap', 'pcapng'])(
    'encap then decap of a %s file gives back every packet byte for byte',
    async (format) => {
      const input = format === 'pcap' ? KERNEL_MIX : kernelMixPcapng;
      const sealed = join(dir, `sealed.${format}`);
      const opened = join(dir, `opened.${format}`);
      const enc = await esp(['encap', '--sa', sa.tunnel, input, sealed, '--stats', 'json']);
      expect([enc.code, enc.stderr]).toEqual([0, '']);
      const dec = await esp(['decap', '--sa', sa.tunnel, sealed, opened, '--stats', 'json']);
      expect([dec.code, dec.stderr]).toEqual([0, '']);

      // Same format as the input.
      const magic = (f: string) => readFileSync(f).subarray(0, 4).toString('hex');
      expect(magic(sealed)).toBe(magic(input));
      expect(magic(opened)).toBe(magic(input));

      const original = packets(input);
      const wrapped = packets(sealed);
      expect(wrapped).toHaveLength(original.length);
      let espFrames = 0;
      for (const [i, p] of wrapped.entries()) {
        const o = original[i]!;
        expect([p.ts, p.link]).toEqual([o.ts, o.link]);
        if (isIpv4OverEthernet(o)) {
          espFrames++;
          expect(p.data.subarray(0, 14)).toEqual(o.data.subarray(0, 14));
          expect([p.data[14 + 9], p.data.readUInt32BE(34)]).toEqual([50, 0xa5f8]);
          expect(p.data.readUInt32BE(38)).toBe(espFrames);
        } else {
          expect(p.data).toEqual(o.data);
        }
      }
      expect(espFrames).toBe(IPV4_FRAMES);
      expect(summary(opened)).toEqual(summary(input));
    },
  );

  it('prints exactly one line of --stats json with packetsIn, packetsOut and dropped', async () => {
    const out = join(dir, 'stats.pcap');
    const enc = await esp(['encap', '--sa', sa.transport, KERNEL_MIX, out, '--stats', 'json']);
    expect(enc.code).toBe(0);
    const lines = enc.stdout.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    const stats = JSON.parse(lines[0]!);
    // Transport mode refuses the three fragments (they must be reassembled first).
    expect(stats).toMatchObject({
      packetsIn: 34,
      packetsOut: 34 - FRAGMENTS,
      dropped: { fragment: FRAGMENTS },
      passedThrough: OTHER_FRAMES,
    });
    expect(Object.keys(stats).slice(0, 3)).toEqual(['packetsIn', 'packetsOut', 'dropped']);

    const back = join(dir, 'stats-back.pcap');
    const dec = await esp(['decap', '--sa', sa.transport, out, back, '--stats', 'json']);
    expect(dec.code).toBe(0);
    expect(dec.stdout.split('\n')).toHaveLength(2);
    expect(JSON.parse(dec.stdout)).toMatchObject({
      packetsIn: 34 - FRAGMENTS,
      packetsOut: 34 - FRAGMENTS,
      dropped: {},
      passedThrough: OTHER_FRAMES,
      layersRemoved: IPV4_FRAMES - FRAGMENTS,
    });
    // Transport mode rebuilds each IPv4 header exactly as it was.
    const fragmentTs = new Set([26, 27, 28].map((i) => packets(KERNEL_MIX)[i]!.ts));
    expect(summary(back)).toEqual(summary(KERNEL_MIX).filter((p) => !fragmentTs.has(p.ts)));

    // Without --stats nothing is printed.
    const quiet = await esp(['encap', '--sa', sa.tunnel, KERNEL_MIX, join(dir, 'quiet.pcap')]);
    expect([quiet.code, quiet.stdout, quiet.stderr]).toEqual([0, '', '']);
  });

  it('counts replays in --stats json when a capture holds every ESP packet twice', async () => {
    const sealed = join(dir, 'twice-sealed.pcap');
    expect((await esp(['encap', '--sa', sa.tunnel, KERNEL_MIX, sealed])).code).toBe(0);
    // The sealed packets twice in one file: the second copies are replays.
    const doubled = join(dir, 'twice.pcap');
    const writer = await openCaptureWriter(doubled, { format: 'pcap', link: 1 });
    const once = packets(sealed);
    for (const p of [...once, ...once.map((q) => ({ ...q, ts: q.ts + 10_000_000_000n }))])
      await writer.writePacket(p);
    await writer.close();
    const dec = await esp([
      'decap',
      '--sa',
      sa.tunnel,
      doubled,
      join(dir, 'twice-out.pcap'),
      '--stats',
      'json',
    ]);
    expect(dec.code).toBe(0);
    expect(JSON.parse(dec.stdout)).toMatchObject({
      packetsIn: 68,
      packetsOut: 68 - IPV4_FRAMES,
      dropped: { replayed: IPV4_FRAMES },
    });
  });

  it('wraps a telescope with three --sa and removes it with three, or one node at a time', async () => {
    const onion = join(dir, 'onion.pcapng');
    const enc = await esp(['encap', '--sa', sa.sc, '--sa', sa.sb, '--sa', sa.sa, kernelMixPcapng, onion]);
    expect([enc.code, enc.stderr]).toEqual([0, '']);
    // The outermost layer is S-A's: NAT-T UDP to the first node, ESN sequence numbers from 2^32 − 64.
    const outer = packets(onion).filter(isIpv4OverEthernet);
    expect(outer).toHaveLength(IPV4_FRAMES);
    expect(
      outer.map((p) => [
        p.data[23],
        p.data.readUInt32BE(30),
        p.data.readUInt16BE(36),
        p.data.readUInt32BE(42),
        p.data.readUInt32BE(46),
      ]),
    ).toEqual(outer.map((_, i) => [17, 0xc612000a, 4500, 0xa0, 0xffffffc0 + i]));

    const all = join(dir, 'onion-all.pcapng');
    const dec = await esp([
      'decap',
      '--sa',
      sa.sa,
      '--sa',
      sa.sb,
      '--sa',
      sa.sc,
      onion,
      all,
      '--stats',
      'json',
    ]);
    expect(dec.code).toBe(0);
    expect(JSON.parse(dec.stdout)).toMatchObject({ dropped: {}, layersRemoved: 3 * IPV4_FRAMES });
    expect(summary(all)).toEqual(summary(kernelMixPcapng));

    // Node by node: each file in between is ESP for the next node only.
    const atB = join(dir, 'onion-b.pcapng');
    const atC = join(dir, 'onion-c.pcapng');
    const done = join(dir, 'onion-done.pcapng');
    expect((await esp(['decap', '--sa', sa.sa, onion, atB])).code).toBe(0);
    expect((await esp(['decap', '--sa', sa.sb, atB, atC])).code).toBe(0);
    expect((await esp(['decap', '--sa', sa.sc, atC, done])).code).toBe(0);
    const next = (file: string) =>
      packets(file)
        .filter(isIpv4OverEthernet)
        .map((p) => [p.data[23], p.data.readUInt32BE(30), p.data.readUInt32BE(34)]);
    expect(next(atB)).toEqual(Array(IPV4_FRAMES).fill([50, 0xc6120014, 0xb0]));
    expect(next(atC)).toEqual(Array(IPV4_FRAMES).fill([50, 0xc612001e, 0xc0]));
    expect(summary(done)).toEqual(summary(kernelMixPcapng));
    // B cannot open A's layer: UDP on a port none of its SAs uses is not ESP to it, so it goes on untouched.
    const notMine = join(dir, 'not-mine.pcapng');
    const wrongNode = await esp(['decap', '--sa', sa.sb, onion, notMine, '--stats', 'json']);
    expect(JSON.parse(wrongNode.stdout)).toMatchObject({
      packetsIn: 34,
      packetsOut: 34,
      passedThrough: 34,
      dropped: {},
    });
    expect(summary(notMine)).toEqual(summary(onion));
    // B's packets at A (plain ESP with an SPI A does not know) are dropped as unknown-spi.
    const atA = await esp(['decap', '--sa', sa.sa, atB, join(dir, 'unknown.pcapng'), '--stats', 'json']);
    expect(JSON.parse(atA.stdout)).toMatchObject({
      packetsOut: OTHER_FRAMES,
      dropped: { 'unknown-spi': IPV4_FRAMES },
    });
  });

  it('decap of a raw-IPv4 capture whose tunnels carry IPv6 neither fails nor loses the IPv4 packets', async () => {
    // LINKTYPE_IPV4 (228) cannot hold the IPv6 packet that comes out of the second tunnel.
    const config = readSaFile(sa.tunnel);
    const tx = new SecurityAssociation(config);
    const input = join(dir, 'raw-v6.pcap');
    const writer = await openCaptureWriter(input, { format: 'pcap', link: 228 });
    const inners = [udpPacket({ id: 1 }), ipv6Packet(), udpPacket({ id: 3 })];
    for (const [i, inner] of inners.entries())
      await writer.writePacket({ data: mustSeal(tx, inner), ts: BigInt(i + 1), link: 228 });
    await writer.close();
    const out = join(dir, 'raw-v6-out.pcap');
    const dec = await esp(['decap', '--sa', sa.tunnel, input, out, '--stats', 'json']);
    expect([dec.code, dec.stderr]).toEqual([0, '']);
    const stats = JSON.parse(dec.stdout);
    const dropped = Object.values(stats.dropped as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(stats.packetsIn).toBe(3);
    expect(stats.packetsOut + dropped).toBe(3);
    const got = packets(out).map((p) => p.data);
    expect(got).toContainEqual(inners[0]);
    expect(got).toContainEqual(inners[2]);
  });

  describe('usage errors exit 2 with a message and the usage', () => {
    const cases: [string, string[], string][] = [
      ['no action', [], 'missing encap or decap'],
      ['an unknown action', ['wrap', '--sa', 'x.json', 'in.pcap', 'out.pcap'], "unknown action 'wrap'"],
      ['no files', ['encap', '--sa', 'x.json'], 'missing IN and OUT capture files'],
      ['one file', ['decap', '--sa', 'x.json', 'in.pcap'], 'missing IN and OUT capture files'],
      ['no --sa', ['encap', 'in.pcap', 'out.pcap'], 'give at least one --sa FILE'],
      [
        'a third file',
        ['encap', '--sa', 'x.json', 'a.pcap', 'b.pcap', 'c.pcap'],
        "unexpected argument 'c.pcap'",
      ],
      [
        '--stats xml',
        ['encap', '--sa', 'x.json', 'a.pcap', 'b.pcap', '--stats', 'xml'],
        "--stats takes 'json', got 'xml'",
      ],
      [
        'an unknown flag',
        ['encap', '--sa', 'x.json', '--frobnicate', 'a.pcap', 'b.pcap'],
        "Unknown option '--frobnicate'",
      ],
    ];
    it.each(cases)('%s', async (_name, args, message) => {
      const r = await esp(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`pktveil esp: ${message}`);
      expect(r.stderr).toContain('Usage: pktveil esp encap --sa FILE');
      expect(r.stdout).toBe('');
    });

    it('--help prints the usage on stdout and exits 0', async () => {
      const r = await esp(['--help']);
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toMatch(
        /^Usage: pktveil esp encap --sa FILE \[--sa FILE \.\.\.\] IN OUT \[--stats json\]/,
      );
    });
  });

  describe('file errors exit 1 naming the file', () => {
    it('a missing SA file', async () => {
      const missing = join(dir, 'no-such-sa.json');
      const r = await esp(['encap', '--sa', sa.tunnel, '--sa', missing, KERNEL_MIX, join(dir, 'x.pcap')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`SA file ${missing}: ENOENT`);
    });

    it('a missing input capture', async () => {
      const missing = join(dir, 'no-such.pcap');
      const r = await esp(['decap', '--sa', sa.tunnel, missing, join(dir, 'y.pcap')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(missing);
    });

    it('an SA file with a field of the wrong type', async () => {
      const bad = join(dir, 'bad-type.json');
      writeFileSync(bad, JSON.stringify({ ...SAS.tunnel, replayWindow: 'big' }));
      const r = await esp(['encap', '--sa', bad, KERNEL_MIX, join(dir, 'z.pcap')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${bad}: "replayWindow" must be a non-negative integer`);
    });

    // Fields whose type is right but whose value the SA refuses: the message must still say which file
    // (with several --sa, "key is 16 bytes" alone leaves the user guessing) and which field.
    const semantic: [string, Record<string, unknown>][] = [
      ['encKey', { encKey: '00112233445566778899aabbccddeeff' }],
      ['iv', { iv: '00112233' }],
      ['seq', { seq: 0 }],
      ['replayWindow', { replayWindow: 16 }],
      ['tfcPadTo', { mode: 'transport', tunnel: null, tfcPadTo: 100 }],
      ['natt', { natt: { srcPort: 0, dstPort: 4500 } }],
      ['tunnel', { tunnel: { src: '198.18.0.1', dst: '198.18.0' } }],
      ['esn', { esn: true, replayWindow: 0 }],
    ];
    it.each(semantic)('an SA file whose %s the SA refuses', async (field, change) => {
      const bad = join(dir, `bad-${field}.json`);
      writeFileSync(bad, JSON.stringify({ ...SAS.tunnel, ...change }));
      const r = await esp(['encap', '--sa', sa.tunnel, '--sa', bad, KERNEL_MIX, join(dir, 'w.pcap')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(bad);
      expect(r.stderr).toContain(field);
    });
  });
});
