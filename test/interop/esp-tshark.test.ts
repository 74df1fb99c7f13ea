/**
 * tshark (4.0) decrypts what `pktveil esp encap` writes: given the keys in its esp_sa table, with the ICV
 * check on, it must decrypt every packet, call every ICV good, find the padding 1, 2, 3 …, the next header
 * and sequence numbers pktveil meant, and dissect inner packets equal to the originals (the decrypted bytes
 * themselves, and ip.src, ip.dst, ip.proto, ports and payload lengths field by field).
 *
 * tshark 4.0's ESP dissector has AES-GCM (ICV 8/12/16), AES-CBC, NULL and HMAC-SHA-1-96/SHA-256-128, but
 * neither ChaCha20-Poly1305 (its esp_sa table rejects "ChaCha20 with Poly1305 [RFC7634]"; the case runs
 * where a newer tshark accepts it) nor ESN (its AAD and ICV input are SPI ‖ 32-bit sequence only), so
 * every SA here has ESN off.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seededRandom } from '../../bench/lib/corpus.js';
import { ipv4PseudoHeaderSum } from '../../src/codec/checksum.js';
import { echoRest, Icmpv4Repr } from '../../src/codec/icmp.js';
import { parseIpv4 } from '../../src/codec/ip-address.js';
import { Ipv4Repr } from '../../src/codec/ipv4.js';
import { TcpFlags, TcpRepr } from '../../src/codec/tcp.js';
import { UdpRepr } from '../../src/codec/udp.js';
import type { SuiteName as EspSuiteName } from '../../src/esp/suites.js';
import { parseCaptureBuffer, writeCapture } from '../../src/io/capture-file.js';
import { LinkType } from '../../src/packet.js';
import { type CliResult, runCli } from '../helpers/cli.js';
import { describeSystem } from '../helpers/system.js';
import { tsharkFields } from '../helpers/tshark.js';

/** Random packets per run, then one fixed packet (PPP_LOOKALIKE). */
const RANDOM_PACKETS = 150;
/**
 * The last packet, UDP with TOS 0xff and total length 800 (0x0320): its bytes 1–2 are ff 03, and so are
 * those of its ESP packet (same header in transport mode, TOS copied and length 768–1023 in tunnel mode).
 * tshark reads ff 03 there in a LINKTYPE_RAW frame as a PPP header and shows no IP or ESP field at all
 * (see rawPcapAsIpv4 in test/helpers/tshark.ts). Random packets hit this in roughly one seed in 14 (seed
 * 609097616, packet 10); this packet hits it in every run.
 */
const PPP_LOOKALIKE = { index: RANDOM_PACKETS, dataLength: 800 - 20 - 8 };
const PACKETS = RANDOM_PACKETS + 1;
const TRANSPORT = { src: '198.18.0.1', dst: '198.18.0.2' };
const TUNNEL = { src: '198.18.255.1', dst: '198.18.255.2' };

/** tshark 4.0's esp_sa table has no entry for encryption without integrity. */
type SuiteName = Exclude<EspSuiteName, 'aes-cbc' | 'null'>;
type Mode = 'tunnel' | 'transport';

/** The SA's keys and tshark's names for its algorithms (value strings of packet-ipsec.c's esp_sa table). */
const SUITES: Record<SuiteName, { enc: string; auth: string; keyBytes: number; authBytes: number }> = {
  'aes-gcm-16': { enc: 'AES-GCM with 16 octet ICV [RFC4106]', auth: 'NULL', keyBytes: 16 + 4, authBytes: 0 },
  'aes-gcm-12': { enc: 'AES-GCM with 12 octet ICV [RFC4106]', auth: 'NULL', keyBytes: 24 + 4, authBytes: 0 },
  'aes-gcm-8': { enc: 'AES-GCM with 8 octet ICV [RFC4106]', auth: 'NULL', keyBytes: 32 + 4, authBytes: 0 },
  'chacha20-poly1305': {
    enc: 'ChaCha20 with Poly1305 [RFC7634]',
    auth: 'NULL',
    keyBytes: 32 + 4,
    authBytes: 0,
  },
  'aes-cbc-hmac-sha1-96': {
    enc: 'AES-CBC [RFC3602]',
    auth: 'HMAC-SHA-1-96 [RFC2404]',
    keyBytes: 16,
    authBytes: 20,
  },
  'aes-cbc-hmac-sha256-128': {
    enc: 'AES-CBC [RFC3602]',
    auth: 'HMAC-SHA-256-128 [RFC4868]',
    keyBytes: 32,
    authBytes: 32,
  },
  'null-hmac-sha256-128': { enc: 'NULL', auth: 'HMAC-SHA-256-128 [RFC4868]', keyBytes: 0, authBytes: 32 },
};

interface Case {
  name: string;
  suite: SuiteName;
  mode: Mode;
  natt: { srcPort: number; dstPort: number } | null;
  spi: number;
  encKey: string;
  authKey: string;
}

const CASES: Case[] = [];
{
  let spi = 0x7100;
  const add = (suite: SuiteName, mode: Mode, natt: Case['natt'] = null) =>
    CASES.push({
      name: `${suite} ${mode}${natt ? ' NAT-T' : ''}`,
      suite,
      mode,
      natt,
      spi: spi++,
      encKey: randomBytes(SUITES[suite].keyBytes).toString('hex'),
      authKey: randomBytes(SUITES[suite].authBytes).toString('hex'),
    });
  for (const suite of Object.keys(SUITES) as SuiteName[])
    for (const mode of ['tunnel', 'transport'] as Mode[]) add(suite, mode);
  add('aes-gcm-16', 'tunnel', { srcPort: 4500, dstPort: 4500 });
  add('aes-cbc-hmac-sha256-128', 'transport', { srcPort: 4500, dstPort: 4500 });
}

function saJson(c: Case): string {
  return JSON.stringify({
    spi: c.spi,
    mode: c.mode,
    suite: c.suite,
    encKey: c.encKey,
    authKey: c.authKey,
    esn: false,
    seq: 1,
    replayWindow: 64,
    tunnel: c.mode === 'tunnel' ? TUNNEL : null,
    tfcPadTo: 0,
    natt: c.natt,
  });
}

function espSaUat(c: Case): string {
  const ends = c.mode === 'tunnel' ? TUNNEL : TRANSPORT;
  const s = SUITES[c.suite];
  const hexKey = (k: string) => (k ? `0x${k}` : '');
  const spi = `0x${c.spi.toString(16).padStart(8, '0')}`;
  return `uat:esp_sa:"IPv4","${ends.src}","${ends.dst}","${spi}","${s.enc}","${hexKey(c.encKey)}","${s.auth}","${hexKey(c.authKey)}"`;
}

/** Random UDP, TCP and ICMP echo packets between the transport endpoints, 0–1400 bytes of data, then PPP_LOOKALIKE. */
function innerPackets(seed: number): Buffer[] {
  const r = seededRandom(seed);
  const int = (n: number) => Math.floor(r() * n);
  // Ports away from the ones tshark would dissect as tunnels (4789, 2152, 3544 …) or NAT-T (500, 4500).
  const port = () => 40000 + int(7000);
  const packets: Buffer[] = [];
  for (let i = 0; i < PACKETS; i++) {
    const lookalike = i === PPP_LOOKALIKE.index;
    const dataLength = lookalike ? PPP_LOOKALIKE.dataLength : r() < 0.3 ? int(40) : int(1401);
    const data = Buffer.from(Array.from({ length: dataLength }, () => int(256)));
    const protocol = [17, 6, 1][i % 3]!;
    const l4Header = protocol === 6 ? 20 : 8;
    const l4Length = l4Header + dataLength;
    const ip = new Ipv4Repr({
      dscp: lookalike ? 63 : int(64),
      ecn: lookalike ? 3 : int(4),
      id: int(65536),
      flags: r() < 0.5 ? 0b010 : 0,
      ttl: 1 + int(255),
      protocol,
      src: parseIpv4(TRANSPORT.src),
      dst: parseIpv4(TRANSPORT.dst),
      payloadLength: l4Length,
    });
    const buf = Buffer.alloc(ip.encodedLength + l4Length);
    const off = ip.encodeInto(buf, 0);
    data.copy(buf, off + l4Header);
    const pseudo = ipv4PseudoHeaderSum(buf, 0, protocol, l4Length);
    if (protocol === 17)
      new UdpRepr({ srcPort: port(), dstPort: port(), payloadLength: dataLength }).encodeInto(
        buf,
        off,
        pseudo,
      );
    else if (protocol === 6)
      new TcpRepr({
        srcPort: port(),
        dstPort: port(),
        seq: int(2 ** 32),
        ack: int(2 ** 32),
        flags: TcpFlags.ACK | TcpFlags.PSH,
        window: int(65536),
        urgent: 0,
        payloadLength: dataLength,
      }).encodeInto(buf, off, pseudo);
    else
      new Icmpv4Repr({
        type: 8,
        code: 0,
        rest: echoRest(int(65536), i),
        payloadLength: dataLength,
      }).encodeInto(buf, off);
    packets.push(buf);
  }
  return packets;
}

const FIELDS = [
  'ip.src',
  'ip.dst',
  'ip.proto',
  'ip.len',
  'ip.checksum.status',
  'udp.srcport',
  'udp.dstport',
  'udp.length',
  'tcp.srcport',
  'tcp.dstport',
  'tcp.len',
  'icmp.type',
  'icmp.data_time',
  'data.len',
  'esp.spi',
  'esp.sequence',
  'esp.protocol',
  'esp.pad',
  'esp.pad_len',
  'esp.icv_good',
  'esp.icv_bad',
  'esp.contained_data',
] as const;

/** Whether this tshark's esp_sa table knows ChaCha20-Poly1305 (4.0 does not; it rejects the -o value). */
function tsharkKnowsChacha(file: string): Promise<boolean> {
  const probe = CASES.find((c) => c.suite === 'chacha20-poly1305')!;
  return new Promise((resolve) => {
    execFile('tshark', ['-r', file, '-c', '1', '-o', espSaUat(probe)], { timeout: 60_000 }, (err) =>
      resolve(err === null),
    );
  });
}

describeSystem('tshark decrypts pktveil ESP', ['tshark'], () => {
  // A fixed seed by default, so CI runs the same packets every time; PKTVEIL_TEST_SEED explores others.
  const seed = Number(process.env.PKTVEIL_TEST_SEED ?? 608110984) | 0;
  let dir: string;
  let inner: Buffer[];
  let chachaKnown = false;
  const encap = new Map<Case, CliResult>();
  const frames = new Map<Case, Map<string, string[]>[]>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pktveil-esp-tshark-'));
    inner = innerPackets(seed);
    const innerFile = join(dir, 'inner.pcap');
    await writeCapture(
      innerFile,
      inner.map((data, i) => ({
        data,
        ts: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n,
        link: LinkType.RAW,
      })),
      { format: 'pcap', link: LinkType.RAW },
    );
    chachaKnown = await tsharkKnowsChacha(innerFile);
    const runnable = CASES.filter((c) => c.suite !== 'chacha20-poly1305' || chachaKnown);
    const tasks = runnable.map((c) => async () => {
      const saFile = join(dir, `sa-${c.spi.toString(16)}.json`);
      const out = join(dir, `esp-${c.spi.toString(16)}.pcap`);
      writeFileSync(saFile, saJson(c));
      const r = await runCli(['esp', 'encap', '--sa', saFile, innerFile, out, '--stats', 'json']);
      encap.set(c, r);
      if (r.code !== 0) return;
      const prefs = [
        'esp.enable_encryption_decode:TRUE',
        'esp.enable_authentication_check:TRUE',
        espSaUat(c),
        'ip.check_checksum:TRUE',
        'ip.defragment:FALSE',
        'tcp.analyze_sequence_numbers:FALSE',
        'tcp.desegment_tcp_streams:FALSE',
      ];
      // The inner payloads are random bytes: left to tshark's heuristics one can look like RTCP, throw
      // "Malformed" inside the decrypted packet and take ESP's trailer and ICV verdict with it. Read every
      // UDP and TCP payload as plain data, except on the NAT-T port, which must stay ESP-in-UDP.
      const decodeAs = ['udp.port==1-4499,data', 'udp.port==4501-65535,data', 'tcp.port==1-65535,data'];
      // rawAsIpv4: pktveil writes LINKTYPE_RAW, where tshark takes some valid IPv4 headers for PPP.
      frames.set(c, await tsharkFields(out, { fields: FIELDS, prefs, decodeAs, rawAsIpv4: true }));
    });
    // At most `width` pktveil/tshark pairs at once.
    const width = Math.max(2, availableParallelism());
    let next = 0;
    await Promise.all(
      Array.from({ length: width }, async () => {
        while (next < tasks.length) await tasks[next++]!();
      }),
    );
  }, 170_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const c of CASES)
    it(`${c.name}: every packet decrypts, authenticates and dissects as the original`, (ctx) => {
      if (c.suite === 'chacha20-poly1305' && !chachaKnown)
        return ctx.skip('this tshark has no ChaCha20-Poly1305 in its esp_sa table (4.0 rejects it)');
      const where = `${c.name} (seed ${seed})`;
      const r = encap.get(c)!;
      expect(r.code, `${where}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!), where).toMatchObject({
        packetsIn: PACKETS,
        packetsOut: PACKETS,
        dropped: {},
      });
      const esp = [...parseCaptureBuffer(readFileSync(join(dir, `esp-${c.spi.toString(16)}.pcap`)))];
      const got = frames.get(c)!;
      expect(got.length, where).toBe(PACKETS);
      expect(inner[PPP_LOOKALIKE.index]!.subarray(1, 3).toString('hex'), 'PPP_LOOKALIKE bytes 1–2').toBe(
        'ff03',
      );

      const problems: string[] = [];
      const natt = c.natt !== null;
      const tunnel = c.mode === 'tunnel';
      got.forEach((f, i) => {
        const original = inner[i]!;
        const ihl = (original[0]! & 0x0f) * 4;
        const protocol = original[9]!;
        const field = (name: string, n = 0) => f.get(name)?.[n];
        const outer = tunnel ? TUNNEL : TRANSPORT;
        const expected: Record<string, string | undefined> = {
          'outer ip.src': outer.src,
          'outer ip.dst': outer.dst,
          'outer ip.proto': natt ? '17' : '50',
          'ip.checksum.status (all)': tunnel ? '1,1' : '1',
          'esp.spi': `0x${c.spi.toString(16).padStart(8, '0')}`,
          'esp.sequence': String(i + 1),
          'esp.icv_good': '1',
          'esp.icv_bad': '0',
          'esp.protocol': `0x${(tunnel ? 4 : protocol).toString(16).padStart(2, '0')}`,
          'esp.contained_data': (tunnel ? original : original.subarray(ihl)).toString('hex'),
          'inner ip.src': TRANSPORT.src,
          'inner ip.dst': TRANSPORT.dst,
          'inner ip.proto': String(protocol),
        };
        const padLength = Number(field('esp.pad_len'));
        const actual: Record<string, string | undefined> = {
          'outer ip.src': field('ip.src'),
          'outer ip.dst': field('ip.dst'),
          'outer ip.proto': field('ip.proto'),
          'ip.checksum.status (all)': f
            .get('ip.checksum.status')
            ?.slice(0, tunnel ? 2 : 1)
            .join(','),
          'esp.spi': field('esp.spi'),
          'esp.sequence': field('esp.sequence'),
          'esp.icv_good': field('esp.icv_good'),
          'esp.icv_bad': field('esp.icv_bad'),
          'esp.protocol': field('esp.protocol'),
          'esp.contained_data': field('esp.contained_data'),
          'inner ip.src': field('ip.src', tunnel ? 1 : 0),
          'inner ip.dst': field('ip.dst', tunnel ? 1 : 0),
          'inner ip.proto': tunnel ? field('ip.proto', 1) : String(Number(field('esp.protocol'))),
        };
        // RFC 4303 §2.4: padding bytes 1, 2, 3, …
        expected['esp.pad'] =
          padLength > 0
            ? Buffer.from(Array.from({ length: padLength }, (_, j) => j + 1)).toString('hex')
            : undefined;
        actual['esp.pad'] = field('esp.pad');
        if (tunnel) {
          expected['inner ip.len'] = String(original.length);
          actual['inner ip.len'] = field('ip.len', 1);
        }
        // Upper layer of the inner packet: the first UDP occurrence is NAT-T's when there is one.
        const u = natt ? 1 : 0;
        if (protocol === 17) {
          Object.assign(expected, {
            'udp.srcport': String(original.readUInt16BE(ihl)),
            'udp.dstport': String(original.readUInt16BE(ihl + 2)),
            'udp.length': String(original.length - ihl),
          });
          Object.assign(actual, {
            'udp.srcport': field('udp.srcport', u),
            'udp.dstport': field('udp.dstport', u),
            'udp.length': field('udp.length', u),
          });
        } else if (protocol === 6) {
          Object.assign(expected, {
            'tcp.srcport': String(original.readUInt16BE(ihl)),
            'tcp.dstport': String(original.readUInt16BE(ihl + 2)),
            'tcp.len': String(original.length - ihl - 20),
          });
          Object.assign(actual, {
            'tcp.srcport': field('tcp.srcport'),
            'tcp.dstport': field('tcp.dstport'),
            'tcp.len': field('tcp.len'),
          });
        } else {
          // tshark reads the first 8 data bytes as a timestamp when they happen to look like one near the
          // frame's time (random data sometimes does: seed 608110984, packet 137); the rest is then data.
          const stamp = field('icmp.data_time') === undefined ? 0 : 8;
          const dataLength = original.length - ihl - 8 - stamp;
          expected['icmp.type'] = '8';
          actual['icmp.type'] = field('icmp.type');
          expected['data.len'] = dataLength > 0 ? String(dataLength) : undefined;
          actual['data.len'] = field('data.len');
        }
        if (natt) {
          const wire = esp[i]!.data;
          Object.assign(expected, {
            'nat-t udp.srcport': String(c.natt!.srcPort),
            'nat-t udp.dstport': String(c.natt!.dstPort),
            'nat-t udp.length': String(wire.length - 20),
          });
          Object.assign(actual, {
            'nat-t udp.srcport': field('udp.srcport'),
            'nat-t udp.dstport': field('udp.dstport'),
            'nat-t udp.length': field('udp.length'),
          });
        }
        for (const [name, want] of Object.entries(expected))
          if (actual[name] !== want)
            problems.push(
              `packet ${i} ${name}: tshark ${actual[name]}, expected ${want} (ESP ${esp[i]!.data.toString('hex')})`,
            );
      });
      expect(problems.slice(0, 5), `${where}: ${problems.length} problems`).toEqual([]);
    });
});
