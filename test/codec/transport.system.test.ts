/**
 * The transport and tunnel codecs against independent peers: live kernel traffic in network namespaces
 * (TCP with SACK and timestamps, ICMP and ICMPv6 echo) decoded frame by frame and compared with tshark's
 * reading of the same capture, and headers pktveil encodes read back by tshark.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ipv4PseudoHeaderSum, ipv6PseudoHeaderSum } from '../../src/codec/checksum.js';
import { classifyNattPayload, EspRepr, EspView, type NattPayloadKind } from '../../src/codec/esp.js';
import { echoRest, Icmpv4Repr, Icmpv4View, Icmpv6Repr, Icmpv6View } from '../../src/codec/icmp.js';
import { Ipv4Flags, Ipv4Repr, parseIpv4 } from '../../src/codec/ipv4.js';
import { Ipv6Repr } from '../../src/codec/ipv6.js';
import { TCP_OPTION_END, TcpFlags, TcpOptionKind, TcpRepr, TcpView } from '../../src/codec/tcp.js';
import { UdpRepr } from '../../src/codec/udp.js';
import { detectCaptureFormat, parseCaptureBuffer, writeCapture } from '../../src/io/capture-file.js';
import { LinkType } from '../../src/packet.js';
import { collect, NetnsLab, waitForOutput } from '../helpers/netns.js';
import { describeSystem } from '../helpers/system.js';
import { tcpChecksumVerdict, tsharkRows } from '../helpers/tshark.js';

const PY = '/usr/bin/python3';

/**
 * tshark's rows for `filter` (a field's occurrences joined by ','), with only the given preferences:
 * the expectations below are tshark's defaults otherwise.
 */
function tsharkRowsWhere(
  file: string,
  filter: string,
  fields: string[],
  prefs: string[] = [],
): Promise<string[][]> {
  return tsharkRows(file, { filter, fields, prefs });
}

/** An IPv4 packet 198.18.0.1 → 198.18.0.2 (DF, TTL 64) carrying `payload`; the header checksum filled in. */
function ipv4Packet(protocol: number, payload: Buffer): Buffer {
  const ip = new Ipv4Repr({
    id: 0,
    flags: Ipv4Flags.DF,
    ttl: 64,
    protocol,
    src: parseIpv4('198.18.0.1'),
    dst: parseIpv4('198.18.0.2'),
    payloadLength: payload.length,
  });
  const pkt = Buffer.alloc(ip.encodedLength + payload.length);
  payload.copy(pkt, ip.encodeInto(pkt, 0));
  return pkt;
}

/** An IPv6 packet 2001:db8::1 → 2001:db8::2 (documentation prefix, hop limit 64) carrying `payload`. */
function ipv6Packet(nextHeader: number, payload: Buffer): Buffer {
  const ip = new Ipv6Repr({
    payloadLength: payload.length,
    nextHeader,
    hopLimit: 64,
    src: '2001:db8::1',
    dst: '2001:db8::2',
  });
  const pkt = Buffer.alloc(ip.encodedLength + payload.length);
  payload.copy(pkt, ip.encodeInto(pkt, 0));
  return pkt;
}

/** Sender A — router R — receiver B, with IPv4 and IPv6 routes through R. */
interface RoutedNet {
  a: string;
  r: string;
  b: string;
  /** B's interface, where the capture runs. */
  captureIf: string;
}

/**
 * A (198.18.1.1, 2001:db8:1::1) — R — B (198.18.2.1, 2001:db8:2::1), R forwarding both families,
 * A allowed ICMP ping sockets. The lab turns tx checksum offload off (real checksums on the wire);
 * segmentation and receive offloads go too, so B captures segments as TCP sent them (no GSO/GRO merging).
 */
function routedNet(lab: NetnsLab): RoutedNet {
  const a = lab.addNamespace('sender');
  const r = lab.addNamespace('router');
  const b = lab.addNamespace('receiver');
  const left = lab.addVethPair(a, r, { addresses: ['198.18.1.1', '198.18.1.254'] });
  const right = lab.addVethPair(r, b, { addresses: ['198.18.2.254', '198.18.2.1'] });
  const ipv6 = [
    [left.a, '2001:db8:1::1'],
    [left.b, '2001:db8:1::fe'],
    [right.a, '2001:db8:2::fe'],
    [right.b, '2001:db8:2::1'],
  ] as const;
  for (const [end, address] of ipv6) {
    lab.ipIn(end.ns, ['addr', 'add', `${address}/64`, 'dev', end.ifname, 'nodad']);
    try {
      lab.exec(end.ns, 'ethtool', ['-K', end.ifname, 'tso', 'off', 'gso', 'off', 'gro', 'off']);
    } catch {
      // A kernel whose veths cannot change these: tx checksum offload off (done by the lab) still holds.
    }
  }
  lab.ipIn(a, ['route', 'add', 'default', 'via', '198.18.1.254']);
  lab.ipIn(b, ['route', 'add', 'default', 'via', '198.18.2.254']);
  lab.ipIn(a, ['-6', 'route', 'add', 'default', 'via', '2001:db8:1::fe']);
  lab.ipIn(b, ['-6', 'route', 'add', 'default', 'via', '2001:db8:2::fe']);
  lab.exec(r, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  lab.exec(a, 'sysctl', ['-qw', 'net.ipv4.ping_group_range=0 0']);
  return { a, r, b, captureIf: right.b.ifname };
}

/** In B: accepts one TCP connection on 198.18.2.1:5001 and reads it to the end. */
const TCP_SINK = `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("198.18.2.1", 5001)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
while c.recv(65536): pass
c.close()
`;

/** In R: stops forwarding for half a millisecond, five times, while A's segments are in flight. */
const FORWARDING_BLIPS = `
import time
time.sleep(0.15)
for i in range(5):
    open("/proc/sys/net/ipv4/ip_forward", "w").write("0"); time.sleep(0.0005)
    open("/proc/sys/net/ipv4/ip_forward", "w").write("1"); time.sleep(0.05)
`;

/** In A: a 2.4 MB TCP transfer to B, then three ICMP and three ICMPv6 echoes from ping sockets. */
const SENDER = `
import socket, time
s = socket.create_connection(("198.18.2.1", 5001))
for i in range(300):
    s.sendall(b"pktveil!" * 1000); time.sleep(0.001)
s.close()
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP); s4.settimeout(2)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6); s6.settimeout(2)
for i in range(1, 4):
    s4.sendto(b"\\x08\\x00\\x00\\x00\\x00\\x00\\x00" + bytes([i]) + b"pktveil-echo", ("198.18.2.1", 0)); s4.recvfrom(100)
    s6.sendto(b"\\x80\\x00\\x00\\x00\\x00\\x00\\x00" + bytes([i]) + b"pktveil-echo6", ("2001:db8:2::1", 0)); s6.recvfrom(100)
`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits (at most 10 s) until no IPv6 address in the net is tentative. Until duplicate address detection
 * of the link-local addresses ends (about 1.5 s after the links come up), ICMPv6 echo through R goes
 * unanswered.
 */
async function ipv6Settled(lab: NetnsLab, net: RoutedNet): Promise<void> {
  const tentative = () =>
    [net.a, net.r, net.b].some((ns) => lab.ipIn(ns, ['-6', 'addr', 'show', 'tentative']).trim());
  for (let i = 0; i < 100 && tentative(); i++) await sleep(100);
  expect(tentative(), 'IPv6 addresses still tentative after 10 s').toBe(false);
}

/**
 * Kernel traffic A → R → B, captured on B's veth into `pcap`: a TCP transfer during which R briefly
 * stops forwarding (so B sees a hole and answers with SACK), then ICMP and ICMPv6 echo. Every process
 * is bounded by `timeout` and a collect() limit; the lab kills what is left in afterAll.
 */
async function captureKernelTraffic(lab: NetnsLab, net: RoutedNet, pcap: string): Promise<void> {
  const tcpdump = lab.spawn(net.b, 'timeout', [
    '30',
    'tcpdump',
    '-Z',
    'root',
    '-i',
    net.captureIf,
    '-w',
    pcap,
    '-s',
    '0',
    '-U',
    'tcp or icmp or (icmp6 and ip6[6] == 58)',
  ]);
  const tcpdumpDone = collect(tcpdump, 40_000);
  await waitForOutput(tcpdump, /listening on/, 'tcpdump');
  const sink = lab.spawn(net.b, 'timeout', ['20', PY, '-c', TCP_SINK]);
  const sinkDone = collect(sink, 25_000);
  await waitForOutput(sink, /ready/, 'TCP sink');
  const blips = lab.run(net.r, 'timeout', ['10', PY, '-c', FORWARDING_BLIPS], { timeoutMs: 15_000 });
  const sent = await lab.run(net.a, 'timeout', ['15', PY, '-c', SENDER], { timeoutMs: 20_000 });
  expect(sent.code, `sender: ${sent.stderr}`).toBe(0);
  const sunk = await sinkDone;
  expect(sunk.code, `TCP sink: ${sunk.stderr}`).toBe(0);
  await blips;
  // tcpdump may lag behind under load and drops what it has not read when stopped: wait (bounded) until
  // the last echo reply (ICMPv6 type 129, sequence 3) is in the file.
  for (let i = 0; i < 80; i++) {
    const found = spawnSync(
      'tcpdump',
      ['-r', pcap, '-c', '1', 'icmp6 and ip6[40] == 129 and ip6[46:2] == 3'],
      {
        encoding: 'utf8',
        timeout: 10_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    if (found.stdout) break;
    await sleep(250);
  }
  tcpdump.kill('SIGTERM');
  await tcpdumpDone;
}

// 'scapy' stands for /usr/bin/python3, which runs the socket programs inside the namespaces.
describeSystem(
  'transport codecs against the kernel and tshark',
  ['netns', 'tcpdump', 'tshark', 'ethtool', 'scapy'],
  () => {
    const lab = new NetnsLab();
    let dir = '';
    let kernelPcap = '';
    let frames: Buffer[] = [];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pktveil-transport-'));
      kernelPcap = join(dir, 'kernel.pcap');
      const net = routedNet(lab);
      await ipv6Settled(lab, net);
      // The SACK depends on the forwarding blip landing while segments are in flight: up to 3 attempts.
      for (let attempt = 0; attempt < 3; attempt++) {
        await captureKernelTraffic(lab, net, kernelPcap);
        if ((await tsharkRowsWhere(kernelPcap, 'tcp.options.sack_le', ['frame.number'])).length > 0) break;
      }
      const bytes = readFileSync(kernelPcap);
      expect(detectCaptureFormat(bytes)).toBe('pcap');
      const packets = [...parseCaptureBuffer(bytes, { copy: true })];
      expect(new Set(packets.map((p) => p.link))).toEqual(new Set([LinkType.ETHERNET]));
      frames = packets.map((p) => p.data);
    }, 200_000);

    afterAll(() => {
      lab.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('decodes every kernel TCP segment as tshark does, SACK and timestamps included', async () => {
      const fields = [
        'tcp.srcport',
        'tcp.dstport',
        'tcp.seq',
        'tcp.ack',
        'tcp.hdr_len',
        'tcp.flags',
        'tcp.window_size_value',
        'tcp.checksum',
        'tcp.checksum.status',
        'tcp.len',
        'tcp.options',
        'tcp.options.mss_val',
        'tcp.options.wscale.shift',
        'tcp.options.timestamp.tsval',
        'tcp.options.timestamp.tsecr',
        'tcp.options.sack_le',
        'tcp.options.sack_re',
        'tcp.checksum.ffff',
      ];
      const ffff = fields.length - 1;
      const expected = (
        await tsharkRowsWhere(kernelPcap, 'tcp', fields, [
          'tcp.check_checksum:TRUE',
          'tcp.relative_sequence_numbers:FALSE',
        ])
      ).map((row) => [
        ...row.slice(0, 5),
        String(Number.parseInt(row[5]!, 16)),
        row[6],
        String(Number.parseInt(row[7]!, 16)),
        tcpChecksumVerdict(row[8] || undefined, row[ffff] || undefined) ? 'good' : `status ${row[8]}`,
        ...row.slice(9, ffff),
      ]);
      const v = new TcpView();
      const ours: string[][] = [];
      for (const frame of frames) {
        if (frame.readUInt16BE(12) !== 0x0800 || frame[23] !== 6) continue;
        const ihl = (frame[14]! & 0xf) * 4;
        const wire = frame.readUInt16BE(16) - ihl;
        expect(v.bind(frame, 14 + ihl, frame.length, wire)).toBeNull();
        expect(v.checkOptions()).toBeNull();
        const opt: Record<string, string[]> = { mss: [], shift: [], tsval: [], tsecr: [], le: [], re: [] };
        for (let k = v.firstOption(); k !== TCP_OPTION_END; k = v.nextOption()) {
          if (k === TcpOptionKind.MSS) opt.mss!.push(String(v.optMss));
          if (k === TcpOptionKind.WINDOW_SCALE) opt.shift!.push(String(v.optWindowShift));
          if (k === TcpOptionKind.TIMESTAMPS) {
            opt.tsval!.push(String(v.optTsval));
            opt.tsecr!.push(String(v.optTsecr));
          }
          for (let i = 0; k === TcpOptionKind.SACK && i < v.optSackBlocks; i++) {
            opt.le!.push(String(v.optSackLeft(i)));
            opt.re!.push(String(v.optSackRight(i)));
          }
        }
        const pseudo = ipv4PseudoHeaderSum(frame, 14, 6, wire);
        ours.push([
          String(v.srcPort),
          String(v.dstPort),
          String(v.seq),
          String(v.ack),
          String(v.headerLength),
          String(v.flags),
          String(v.window),
          String(v.checksum),
          v.checksumOk(pseudo) ? 'good' : 'bad',
          String(v.payloadLength),
          frame.toString('hex', v.optionsOffset, v.optionsOffset + v.optionsLength),
          ...[opt.mss, opt.shift, opt.tsval, opt.tsecr, opt.le, opt.re].map((list) => list!.join(',')),
        ]);
      }
      expect(ours.length).toBeGreaterThan(500);
      expect(ours.some((row) => row[15] !== '')).toBe(true); // the capture holds SACK blocks
      expect(ours.some((row) => (Number(row[5]) & TcpFlags.SYN) !== 0 && row[11] !== '')).toBe(true);
      expect(ours).toEqual(expected);
    });

    it('decodes kernel ICMP and ICMPv6 echo as tshark does', async () => {
      const v4 = await tsharkRowsWhere(kernelPcap, 'icmp', [
        'icmp.type',
        'icmp.code',
        'icmp.checksum',
        'icmp.checksum.status',
        'icmp.ident',
        'icmp.seq',
      ]);
      const v6 = await tsharkRowsWhere(kernelPcap, 'icmpv6', [
        'icmpv6.type',
        'icmpv6.code',
        'icmpv6.checksum',
        'icmpv6.checksum.status',
      ]);
      const ours4: string[][] = [];
      const ours6: string[][] = [];
      const icmp4 = new Icmpv4View();
      const icmp6 = new Icmpv6View();
      for (const frame of frames) {
        if (frame.readUInt16BE(12) === 0x0800 && frame[23] === 1) {
          const ihl = (frame[14]! & 0xf) * 4;
          expect(icmp4.bind(frame, 14 + ihl, frame.length, frame.readUInt16BE(16) - ihl)).toBeNull();
          ours4.push(
            [
              icmp4.type,
              icmp4.code,
              `0x${icmp4.checksum.toString(16).padStart(4, '0')}`,
              icmp4.checksumOk() ? 1 : 0,
              icmp4.identifier,
              icmp4.sequence,
            ].map(String),
          );
        } else if (frame.readUInt16BE(12) === 0x86dd && frame[20] === 58) {
          const length = frame.readUInt16BE(18);
          expect(icmp6.bind(frame, 54, frame.length, length)).toBeNull();
          const ok = icmp6.checksumOk(ipv6PseudoHeaderSum(frame, 14, 58, length));
          ours6.push(
            [icmp6.type, icmp6.code, `0x${icmp6.checksum.toString(16).padStart(4, '0')}`, ok ? 1 : 0].map(
              String,
            ),
          );
        }
      }
      expect(ours4.filter((r) => r[0] === '8')).toHaveLength(3);
      expect(ours6.filter((r) => r[0] === '129')).toHaveLength(3);
      expect(ours4).toEqual(v4);
      expect(ours6).toEqual(v6);
    });

    it('writes TCP, ICMP, ESP and NAT-T packets that tshark reads back with good checksums', async () => {
      const packets: Buffer[] = [];

      // TCP: an ACK with three SACK blocks and timestamps, a SYN with an option kind tshark does not parse.
      const payload = Buffer.from('pktveil');
      const tcpOver = (repr: TcpRepr, data: Buffer) => {
        const length = repr.encodedLength + data.length;
        const pkt = ipv4Packet(6, Buffer.alloc(length));
        data.copy(pkt, 20 + repr.encodedLength);
        repr.encodeInto(pkt, 20, ipv4PseudoHeaderSum(pkt, 0, 6, length));
        return pkt;
      };
      const base = { srcPort: 40000, dstPort: 443, window: 501, urgent: 0 };
      const sack = [
        { left: 1000, right: 2000 },
        { left: 3000, right: 4000 },
        { left: 4294967000, right: 100 },
      ];
      packets.push(
        tcpOver(
          new TcpRepr({
            ...base,
            seq: 0xfffffff0,
            ack: 123456789,
            flags: TcpFlags.ACK | TcpFlags.PSH | TcpFlags.ECE,
            options: [
              { type: 'nop' },
              { type: 'nop' },
              { type: 'timestamps', tsval: 4000000000, tsecr: 7 },
              { type: 'sack', blocks: sack },
            ],
            payloadLength: payload.length,
          }),
          payload,
        ),
        tcpOver(
          new TcpRepr({
            ...base,
            seq: 1,
            ack: 0,
            flags: TcpFlags.SYN | TcpFlags.CWR | TcpFlags.ECE | TcpFlags.NS,
            options: [
              { type: 'mss', mss: 1380 },
              { type: 'nop' },
              { type: 'windowScale', shift: 14 },
              { type: 'sackPermitted' },
              { type: 'unknown', kind: 253, data: Buffer.from('beef', 'hex') },
            ],
            payloadLength: 0,
          }),
          Buffer.alloc(0),
        ),
      );

      // ICMPv4 echo request and ICMPv6 echo reply.
      const body = Buffer.from('pktveil-echo');
      const icmp = ipv4Packet(1, Buffer.concat([Buffer.alloc(8), body]));
      new Icmpv4Repr({ type: 8, code: 0, rest: echoRest(0xbeef, 42), payloadLength: body.length }).encodeInto(
        icmp,
        20,
      );
      packets.push(icmp);
      const icmp6 = ipv6Packet(58, Buffer.concat([Buffer.alloc(8), body]));
      new Icmpv6Repr({
        type: 129,
        code: 0,
        rest: echoRest(0xbeef, 43),
        payloadLength: body.length,
      }).encodeInto(icmp6, 40, ipv6PseudoHeaderSum(icmp6, 0, 58, 8 + body.length));
      packets.push(icmp6);

      // ESP directly over IP, ESP under NAT-T, an IKE message behind the non-ESP marker, a keepalive.
      const opaque = Buffer.alloc(40, 0x5a);
      const esp = ipv4Packet(50, Buffer.concat([Buffer.alloc(8), opaque]));
      new EspRepr({ spi: 0xc0ffee01, seq: 77, payloadLength: opaque.length }).encodeInto(esp, 20);
      packets.push(esp);
      const udpOver = (data: Buffer) => {
        const pkt = ipv4Packet(17, Buffer.concat([Buffer.alloc(8), data]));
        new UdpRepr({ srcPort: 4500, dstPort: 4500, payloadLength: data.length }).encodeInto(
          pkt,
          20,
          ipv4PseudoHeaderSum(pkt, 0, 17, 8 + data.length),
        );
        return pkt;
      };
      packets.push(udpOver(esp.subarray(20)));
      const ike = Buffer.concat([
        Buffer.alloc(4),
        Buffer.from('0011223344556677000000000000000021202208000000000000001c', 'hex'),
      ]);
      packets.push(udpOver(ike));
      packets.push(udpOver(Buffer.from([0xff])));

      const file = join(dir, 'encoded.pcap');
      const ts = (i: number) => BigInt(1_700_000_000 + i) * 1_000_000_000n;
      await writeCapture(
        file,
        packets.map((data, i) => ({ data, ts: ts(i), link: LinkType.RAW })),
        { format: 'pcap', link: LinkType.RAW },
      );

      const tcpRows = await tsharkRowsWhere(
        file,
        'tcp',
        [
          'tcp.seq',
          'tcp.ack',
          'tcp.flags',
          'tcp.hdr_len',
          'tcp.window_size_value',
          'tcp.checksum.status',
          'tcp.len',
          'tcp.options.mss_val',
          'tcp.options.wscale.shift',
          'tcp.options.timestamp.tsval',
          'tcp.options.sack_le',
          'tcp.options.sack_re',
          'tcp.option_kind',
        ],
        ['tcp.check_checksum:TRUE', 'tcp.relative_sequence_numbers:FALSE'],
      );
      // tshark lists each zero padding byte as an EOL (kind 0).
      expect(tcpRows).toEqual([
        [
          String(0xfffffff0),
          '123456789',
          '0x0058',
          '60',
          '501',
          '1',
          '7',
          '',
          '',
          '4000000000',
          '1000,3000,4294967000',
          '2000,4000,100',
          '1,1,8,5,0,0',
        ],
        ['1', '0', '0x01c2', '36', '501', '1', '0', '1380', '14', '', '', '', '2,1,3,4,253,0,0'],
      ]);
      // Frame numbers below: 1-2 TCP, 3 ICMP, 4 ICMPv6, 5 ESP, 6-8 UDP 4500.
      expect(
        await tsharkRowsWhere(file, 'icmp', ['icmp.type', 'icmp.checksum.status', 'icmp.ident', 'icmp.seq']),
      ).toEqual([['8', '1', '48879', '42']]);
      expect(
        await tsharkRowsWhere(file, 'icmpv6', [
          'icmpv6.type',
          'icmpv6.checksum.status',
          'icmpv6.echo.identifier',
          'icmpv6.echo.sequence_number',
        ]),
      ).toEqual([['129', '1', '0xbeef', '43']]);
      expect(await tsharkRowsWhere(file, 'esp', ['frame.number', 'esp.spi', 'esp.sequence'])).toEqual([
        ['5', '0xc0ffee01', '77'],
        ['6', '0xc0ffee01', '77'],
      ]);
      expect(
        await tsharkRowsWhere(
          file,
          'udp',
          ['frame.number', 'udp.checksum.status'],
          ['udp.check_checksum:TRUE'],
        ),
      ).toEqual([
        ['6', '1'],
        ['7', '1'],
        ['8', '1'],
      ]);

      // Our classification of each UDP 4500 payload agrees with tshark's.
      const tsharkKind = new Map<string, NattPayloadKind>();
      for (const [n] of await tsharkRowsWhere(file, 'udp && esp', ['frame.number']))
        tsharkKind.set(n!, 'esp');
      for (const [n] of await tsharkRowsWhere(file, 'udpencap.non_esp_marker', ['frame.number']))
        tsharkKind.set(n!, 'ike');
      for (const [n] of await tsharkRowsWhere(file, 'udpencap.nat_keepalive', ['frame.number']))
        tsharkKind.set(n!, 'keepalive');
      const ourKind = new Map<string, NattPayloadKind>();
      packets.forEach((pkt, i) => {
        if (pkt[9] === 17) ourKind.set(String(i + 1), classifyNattPayload(pkt, 28, pkt.readUInt16BE(24) - 8));
      });
      expect(ourKind).toEqual(tsharkKind);
      expect([...ourKind.values()]).toEqual(['esp', 'ike', 'keepalive']);

      // And our own views read back what we wrote.
      const ev = new EspView();
      expect(ev.bind(packets[5]!, 28)).toBeNull();
      expect([ev.spi, ev.seq, ev.payloadLength]).toEqual([0xc0ffee01, 77, 40]);
    });
  },
);
