/**
 * Field-by-field comparison of `pktveil inspect --json` with tshark's dissection of the same file.
 * tshark is the independent peer: every contract field tshark also reports is compared, checksum
 * verdicts included (tshark's checksum.status: 1 good → true, 0 bad → false, else → null).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectJson } from './cli.js';

type Json = Record<string, unknown>;
type Layer = { layer: string } & Json;

/** Contract field → tshark field, per layer, with how to turn tshark's text into our value. */
type Conv = (s: string) => unknown;
const int: Conv = (s) => Number(s); // tshark prints decimal or 0x-hex; Number() reads both
const str: Conv = (s) => s;
const status: Conv = (s) => (s === '1' ? true : s === '0' ? false : null);

/**
 * tshark's TCP checksum verdict as a receiver's. A checksum that computes to 0 may be sent as 0xffff:
 * both are zero in one's complement, receivers (Linux among them) accept both, and Linux's own software
 * checksum path writes 0xffff (CSUM_MANGLED_0). tshark marks that "bad" with tcp.checksum.ffff
 * ("0xffff instead of 0x0000, see RFC 1624"); the segment is valid, so the expected verdict is true.
 */
export function tcpChecksumVerdict(
  statusField: string | undefined,
  ffffFlag: string | undefined,
): boolean | null {
  if (ffffFlag !== undefined) return true;
  return statusField === undefined ? null : (status(statusField) as boolean | null);
}

const fieldMap: Record<string, [string, string, Conv][]> = {
  eth: [
    ['src', 'eth.src', str],
    ['dst', 'eth.dst', str],
  ],
  ipv4: [
    ['ihl', 'ip.hdr_len', (s) => Number(s) / 4],
    ['dscp', 'ip.dsfield.dscp', int],
    ['ecn', 'ip.dsfield.ecn', int],
    ['totalLength', 'ip.len', int],
    ['id', 'ip.id', int],
    ['flags', 'ip.flags', int],
    ['fragOffset', 'ip.frag_offset', int],
    ['ttl', 'ip.ttl', int],
    ['protocol', 'ip.proto', int],
    ['checksum', 'ip.checksum', int],
    ['checksumOk', 'ip.checksum.status', status],
    ['src', 'ip.src', str],
    ['dst', 'ip.dst', str],
  ],
  ipv6: [
    ['payloadLength', 'ipv6.plen', int],
    ['nextHeader', 'ipv6.nxt', int],
    ['hopLimit', 'ipv6.hlim', int],
    ['trafficClass', 'ipv6.tclass', int],
    ['flowLabel', 'ipv6.flow', int],
    ['src', 'ipv6.src', str],
    ['dst', 'ipv6.dst', str],
  ],
  tcp: [
    ['srcPort', 'tcp.srcport', int],
    ['dstPort', 'tcp.dstport', int],
    ['seq', 'tcp.seq_raw', int],
    ['ack', 'tcp.ack_raw', int],
    ['dataOffset', 'tcp.hdr_len', (s) => Number(s) / 4],
    ['flags', 'tcp.flags', int],
    ['window', 'tcp.window_size_value', int],
    ['checksum', 'tcp.checksum', int],
    ['checksumOk', 'tcp.checksum.status', status],
    ['urgent', 'tcp.urgent_pointer', int],
    ['options', 'tcp.options', (s) => s.replace(/:/g, '')],
    ['payloadLength', 'tcp.len', int],
  ],
  udp: [
    ['srcPort', 'udp.srcport', int],
    ['dstPort', 'udp.dstport', int],
    ['length', 'udp.length', int],
    ['checksum', 'udp.checksum', int],
    ['checksumOk', 'udp.checksum.status', status],
  ],
  icmp: [
    ['type', 'icmp.type', int],
    ['code', 'icmp.code', int],
    ['checksum', 'icmp.checksum', int],
    ['checksumOk', 'icmp.checksum.status', status],
  ],
  icmpv6: [
    ['type', 'icmpv6.type', int],
    ['code', 'icmpv6.code', int],
    ['checksum', 'icmpv6.checksum', int],
    ['checksumOk', 'icmpv6.checksum.status', status],
  ],
  arp: [
    ['oper', 'arp.opcode', int],
    ['htype', 'arp.hw.type', int],
    ['ptype', 'arp.proto.type', int],
  ],
  esp: [
    ['spi', 'esp.spi', int],
    ['seq', 'esp.sequence', int],
  ],
};

/** Frame-level fields, and VLAN fields compared against our eth layer's tag list. */
const frameFields = [
  'frame.time_epoch',
  'frame.cap_len',
  'frame.len',
  'ieee8021ad.id',
  'vlan.id',
  'vlan.etype',
  'eth.type',
  'tcp.checksum.ffff',
];
const allFields = [...frameFields, ...Object.values(fieldMap).flatMap((m) => m.map(([, t]) => t))];

const tsharkPrefs = [
  'ip.defragment:FALSE',
  'ipv6.defragment:FALSE',
  'ip.check_checksum:TRUE',
  'tcp.check_checksum:TRUE',
  'udp.check_checksum:TRUE',
  'tcp.desegment_tcp_streams:FALSE',
  'tcp.analyze_sequence_numbers:FALSE',
];

export interface TsharkFieldsOptions {
  /** Fields to print (-e); default: every field compareWithTshark uses. */
  fields?: readonly string[];
  /** Display filter (-Y): only matching frames get a row. Default: every frame. */
  filter?: string;
  /**
   * Preferences (-o name:value), instead of the default set that makes tshark read as pktveil does
   * (no reassembly or defragmentation, checksums checked). Pass [] for tshark's own defaults.
   */
  prefs?: readonly string[];
  /** Kill tshark after this long; default 120 s. */
  timeoutMs?: number;
  /** "Decode As" rules (-d layer==selector,protocol), e.g. 'udp.port==1-65535,data'. */
  decodeAs?: readonly string[];
  /**
   * `file` is a LINKTYPE_RAW pcap of IPv4 packets: hand it to tshark as LINKTYPE_IPV4 (same records), so
   * each frame goes straight to the IPv4 dissector. See rawPcapAsIpv4 for why this matters.
   */
  rawAsIpv4?: boolean;
}

const LINKTYPE_RAW = 101;
const LINKTYPE_IPV4 = 228;
const PCAP_HEADER = 24;
const PCAP_RECORD_HEADER = 16;

/**
 * A copy of a LINKTYPE_RAW (101) pcap relabelled LINKTYPE_IPV4 (228), every record unchanged; throws when
 * `pcap` is not a pcap, not LINKTYPE_RAW, or holds a packet that is not IPv4.
 *
 * Why: tshark's raw-IP dissector (epan/dissectors/packet-raw.c, still in 4.0) first looks for leftovers
 * of old Linux PPP/ISDN drivers: bytes 0–1, 6–7 or 1–2 equal to ff 03 make it dissect the frame as PPP
 * in HDLC-like framing, not IP. An IPv4 header has ff 03 at bytes 1–2 whenever its TOS is 0xff and its
 * total length is 768–1023 (and at bytes 6–7 for flags 0b111 with fragment offset 0x1f03), so such a valid
 * packet shows "raw:ppp:data" and none of its IP fields. LINKTYPE_IPV4 has no such guess.
 */
export function rawPcapAsIpv4(pcap: Buffer): Buffer {
  if (pcap.length < PCAP_HEADER) throw new Error(`not a pcap: ${pcap.length} bytes, the header needs 24`);
  const magics = [0xa1b2c3d4, 0xa1b23c4d];
  const le = magics.includes(pcap.readUInt32LE(0));
  if (!le && !magics.includes(pcap.readUInt32BE(0)))
    throw new Error(`not a pcap: magic 0x${pcap.readUInt32BE(0).toString(16)}`);
  const u32 = (o: number) => (le ? pcap.readUInt32LE(o) : pcap.readUInt32BE(o));
  const link = u32(20);
  if (link !== LINKTYPE_RAW) throw new Error(`pcap link type is ${link}, not LINKTYPE_RAW (101)`);
  for (let o = PCAP_HEADER, n = 0; o < pcap.length; n++) {
    if (o + PCAP_RECORD_HEADER > pcap.length) throw new Error(`pcap record ${n}: header truncated`);
    const data = o + PCAP_RECORD_HEADER;
    const length = u32(o + 8);
    if (length === 0 || data + length > pcap.length)
      throw new Error(`pcap record ${n}: ${length} bytes, ${pcap.length - data} left in the file`);
    if (pcap[data]! >> 4 !== 4) throw new Error(`pcap record ${n} is not IPv4 (version ${pcap[data]! >> 4})`);
    o = data + length;
  }
  const copy = Buffer.from(pcap);
  if (le) copy.writeUInt32LE(LINKTYPE_IPV4, 20);
  else copy.writeUInt32BE(LINKTYPE_IPV4, 20);
  return copy;
}

/**
 * tshark's reading of `file`, one map per frame (per matching frame with a filter): field → its
 * occurrences in the frame, in order. A field the frame lacks is absent from its map.
 */
export function tsharkFields(
  file: string,
  options: TsharkFieldsOptions = {},
): Promise<Map<string, string[]>[]> {
  const fields = options.fields ?? allFields;
  // A relabelled copy in a file of its own (tshark refuses a pcap on stdin when stdin is a socket, as
  // Node's pipes are), removed once tshark is done.
  const copy = options.rawAsIpv4 ? rawPcapAsIpv4(readFileSync(file)) : null;
  const copyDir = copy ? mkdtempSync(join(tmpdir(), 'pktveil-tshark-')) : null;
  const input = copyDir ? join(copyDir, 'ipv4.pcap') : file;
  if (copy) writeFileSync(input, copy);
  const args = [
    '-r',
    input,
    '-n',
    '-T',
    'fields',
    '-E',
    'occurrence=a',
    '-E',
    'aggregator=;',
    '-E',
    'separator=\t',
  ];
  if (options.filter !== undefined) args.push('-Y', options.filter);
  for (const rule of options.decodeAs ?? []) args.push('-d', rule);
  for (const p of options.prefs ?? tsharkPrefs) args.push('-o', p);
  for (const f of fields) args.push('-e', f);
  const timeout = options.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    execFile(
      'tshark',
      args,
      { maxBuffer: 1 << 28, timeout, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (copyDir) rmSync(copyDir, { recursive: true, force: true });
        if (err) return reject(new Error(`tshark ${args.join(' ')} failed: ${stderr || err.message}`));
        // One line per frame, even a frame whose fields are all empty; the output ends with a newline.
        const lines = stdout.split('\n');
        if (lines.at(-1) === '') lines.pop();
        resolve(
          lines.map((line) => {
            const cols = line.split('\t');
            const m = new Map<string, string[]>();
            fields.forEach((f, i) => {
              const v = cols[i] ?? '';
              if (v !== '') m.set(f, v.split(';'));
            });
            return m;
          }),
        );
      },
    );
  });
}

/**
 * tshark's reading as rows: one per frame (per matching frame with a filter), one column per field,
 * a field's occurrences joined by ','.
 */
export async function tsharkRows(
  file: string,
  options: TsharkFieldsOptions & { fields: readonly string[] },
): Promise<string[][]> {
  const frames = await tsharkFields(file, options);
  return frames.map((m) => options.fields.map((f) => (m.get(f) ?? []).join(',')));
}

export interface Comparison {
  frames: number;
  /** Number of field values compared, per layer: shows the comparison was not vacuous. */
  compared: Record<string, number>;
  mismatches: string[];
}

/** Compares `pktveil inspect --json FILE` with tshark, field by field; returns every disagreement. */
export async function compareWithTshark(file: string): Promise<Comparison> {
  const [ours, theirs] = await Promise.all([inspectJson(file), tsharkFields(file)]);
  const result: Comparison = { frames: ours.length, compared: {}, mismatches: [] };
  const bump = (layer: string) => {
    result.compared[layer] = (result.compared[layer] ?? 0) + 1;
  };
  if (ours.length !== theirs.length)
    result.mismatches.push(`frame count: pktveil ${ours.length}, tshark ${theirs.length}`);
  for (let i = 0; i < Math.min(ours.length, theirs.length); i++) {
    const pkt = ours[i]!;
    const t = theirs[i]!;
    const where = `frame ${i}`;
    const same = (what: string, a: unknown, b: unknown) => {
      if (a !== b)
        result.mismatches.push(`${where} ${what}: pktveil ${JSON.stringify(a)}, tshark ${JSON.stringify(b)}`);
    };
    same('ts', pkt.ts, t.get('frame.time_epoch')?.[0]);
    same('caplen', pkt.caplen, Number(t.get('frame.cap_len')?.[0]));
    same('len', pkt.len, Number(t.get('frame.len')?.[0]));
    bump('frame');
    const layers = pkt.layers as Layer[];
    for (const l of layers) {
      if (l.layer === 'eth') {
        const vlanIds = (l.vlan as { id: number }[]).map((v) => v.id);
        // tshark names an 802.1ad tag ieee8021ad.* and 802.1Q tags vlan.*; in QinQ the 802.1ad tag is outer.
        const tsharkIds = [...(t.get('ieee8021ad.id') ?? []), ...(t.get('vlan.id') ?? [])].map(Number);
        same('eth.vlan ids', vlanIds.join(','), tsharkIds.join(','));
        const etypes = t.get('vlan.etype') ?? t.get('eth.type') ?? [];
        same('eth.type', l.type, Number(etypes[etypes.length - 1]));
      }
      const map = fieldMap[l.layer];
      if (!map) continue;
      for (const [ours, tField, conv] of map) {
        const raw = t.get(tField)?.[0];
        if (raw === undefined) {
          // tshark omits a checksum status it did not compute, and TCP options when there are none.
          if (ours === 'checksumOk') same(`${l.layer}.${ours}`, l[ours], null);
          else if (ours === 'options') same(`${l.layer}.${ours}`, l[ours], '');
          else
            result.mismatches.push(
              `${where} ${l.layer}.${ours}: pktveil ${JSON.stringify(l[ours])}, tshark absent`,
            );
          continue;
        }
        const theirs =
          l.layer === 'tcp' && ours === 'checksumOk'
            ? tcpChecksumVerdict(raw, t.get('tcp.checksum.ffff')?.[0])
            : conv(raw);
        same(`${l.layer}.${ours}`, l[ours], theirs);
        bump(l.layer);
      }
      if (l.layer === 'udp') same('udp.payloadLength', l.payloadLength, (l.length as number) - 8);
    }
    // Layers tshark decoded that we did not (ICMP quotes an inner IP header: tshark dissects it, we stop).
    const ourNames = new Set(layers.map((l) => l.layer));
    const stopsAtQuote = ourNames.has('icmp') || ourNames.has('icmpv6');
    for (const [layer, map] of Object.entries(fieldMap)) {
      if (ourNames.has(layer) || stopsAtQuote || pkt.error) continue;
      if (t.has(map[0]![1])) result.mismatches.push(`${where}: tshark decodes ${layer}, pktveil does not`);
    }
  }
  return result;
}
