/**
 * The transport and tunnel codecs against independent peers: live kernel traffic in network namespaces
 * (TCP with SACK and timestamps, ICMP and ICMPv6 echo) decoded frame by frame and compared with tshark's
 * reading of the same capture, and headers pktveil encodes read back by tshark.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { internetChecksum, ipv4PseudoHeaderSum, ipv6PseudoHeaderSum } from '../../src/codec/checksum.js';
import { classifyNattPayload, EspRepr, EspView, type NattPayloadKind } from '../../src/codec/esp.js';
import { echoRest, Icmpv4Repr, Icmpv4View, Icmpv6Repr, Icmpv6View } from '../../src/codec/icmp.js';
import { TCP_OPTION_END, TcpFlags, TcpOptionKind, TcpRepr, TcpView } from '../../src/codec/tcp.js';
import { UdpRepr } from '../../src/codec/udp.js';
import { describeSystem } from '../helpers/system.js';

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;

/** Frames of a classic pcap file (either byte order, µs or ns timestamps). */
function readPcapFrames(file: string): Buffer[] {
  const data = readFileSync(file);
  const magic = data.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && data.readUInt32BE(0) !== 0xa1b2c3d4 && data.readUInt32BE(0) !== 0xa1b23c4d)
    throw new Error(`${file} is not a classic pcap file`);
  const u32 = (at: number) => (le ? data.readUInt32LE(at) : data.readUInt32BE(at));
  const frames: Buffer[] = [];
  for (let at = 24; at + 16 <= data.length; ) {
    const caplen = u32(at + 8);
    frames.push(data.subarray(at + 16, at + 16 + caplen));
    at += 16 + caplen;
  }
  return frames;
}

function writePcap(file: string, linkType: number, frames: Buffer[]): void {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(linkType, 20);
  const records = frames.map((frame, i) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_700_000_000 + i, 0);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    return Buffer.concat([rec, frame]);
  });
  writeFileSync(file, Buffer.concat([header, ...records]));
}

/** tshark's reading of `file`: one row per matching frame, one column per field (repeats joined by ','). */
function tsharkFields(file: string, filter: string, fields: string[], prefs: string[] = []): string[][] {
  const args = ['-r', file, '-Y', filter, '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a'];
  for (const p of prefs) args.push('-o', p);
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return out
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.split('\t'));
}

function ipv4Header(protocol: number, payloadLength: number, src: string, dst: string): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payloadLength, 2);
  h.writeUInt16BE(0x4000, 6);
  h[8] = 64;
  h[9] = protocol;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  h.writeUInt16BE(internetChecksum(h, 0, 20), 10);
  return h;
}

/** IPv6 header for 2001:db8::a → 2001:db8::b (documentation prefix). */
function ipv6Header(nextHeader: number, payloadLength: number, a: number, b: number): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payloadLength, 4);
  h[6] = nextHeader;
  h[7] = 64;
  h.writeUInt32BE(0x20010db8, 8);
  h[23] = a;
  h.writeUInt32BE(0x20010db8, 24);
  h[39] = b;
  return h;
}

const tag = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`.slice(-8);
const ns = { a: `pvta${tag}`, r: `pvtr${tag}`, b: `pvtb${tag}` };

/**
 * Kernel traffic A → router R → B, captured on B's veth: a TCP transfer during which R briefly stops
 * forwarding (so B sees a hole and answers with SACK), then ICMP and ICMPv6 echo from ping sockets.
 * Every command is bounded by `timeout`; namespaces are deleted by the script and again in afterAll.
 */
function captureScript(pcap: string): string {
  const { a, r, b } = ns;
  return `
set -e
trap 'ip netns del ${a} 2>/dev/null; ip netns del ${r} 2>/dev/null; ip netns del ${b} 2>/dev/null; true' EXIT
ip netns add ${a}; ip netns add ${r}; ip netns add ${b}
ip link add pv${tag}a type veth peer name pv${tag}c
ip link add pv${tag}b type veth peer name pv${tag}d
ip link set pv${tag}a netns ${a}; ip link set pv${tag}c netns ${r}
ip link set pv${tag}d netns ${r}; ip link set pv${tag}b netns ${b}
ip -n ${a} addr add 198.18.1.1/24 dev pv${tag}a; ip -n ${r} addr add 198.18.1.254/24 dev pv${tag}c
ip -n ${r} addr add 198.18.2.254/24 dev pv${tag}d; ip -n ${b} addr add 198.18.2.1/24 dev pv${tag}b
ip -n ${a} addr add 2001:db8:1::1/64 dev pv${tag}a nodad; ip -n ${r} addr add 2001:db8:1::fe/64 dev pv${tag}c nodad
ip -n ${r} addr add 2001:db8:2::fe/64 dev pv${tag}d nodad; ip -n ${b} addr add 2001:db8:2::1/64 dev pv${tag}b nodad
for x in "${a} pv${tag}a" "${r} pv${tag}c" "${r} pv${tag}d" "${b} pv${tag}b"; do
  set -- $x
  ip -n $1 link set $2 up
  # Real checksums on the wire, and segments as TCP sent them (no GSO/GRO merging).
  ip netns exec $1 ethtool -K $2 tx off tso off gso off gro off >/dev/null 2>&1 || ip netns exec $1 ethtool -K $2 tx off >/dev/null
done
ip -n ${a} route add default via 198.18.1.254; ip -n ${b} route add default via 198.18.2.254
ip -n ${a} -6 route add default via 2001:db8:1::fe; ip -n ${b} -6 route add default via 2001:db8:2::fe
ip netns exec ${r} sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'
ip netns exec ${a} sh -c 'echo "0 0" > /proc/sys/net/ipv4/ping_group_range'
ip netns exec ${b} timeout 30 tcpdump -Z root -i pv${tag}b -w ${pcap} -s 0 -U 'tcp or icmp or (icmp6 and ip6[6] == 58)' 2>/dev/null &
TD=$!
sleep 1
ip netns exec ${b} timeout 20 /usr/bin/python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("198.18.2.1", 5001)); s.listen(1)
c, _ = s.accept()
while c.recv(65536): pass
c.close()
' &
SV=$!
sleep 0.3
ip netns exec ${r} timeout 10 /usr/bin/python3 -c '
import time
time.sleep(0.15)
for i in range(5):
    open("/proc/sys/net/ipv4/ip_forward", "w").write("0"); time.sleep(0.0005)
    open("/proc/sys/net/ipv4/ip_forward", "w").write("1"); time.sleep(0.05)
' &
ip netns exec ${a} timeout 15 /usr/bin/python3 -c '
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
'
wait $SV
# tcpdump may lag behind under load and drops what it has not read when killed: wait (bounded) until the
# last echo reply (ICMPv6 type 129, sequence 3) is in the file.
for i in $(seq 80); do
  if tcpdump -r ${pcap} -c 1 'icmp6 and ip6[40] == 129 and ip6[46:2] == 3' 2>/dev/null | grep -q .; then break; fi
  sleep 0.25
done
kill $TD; wait $TD || true
`;
}

// 'scapy' stands for /usr/bin/python3, which runs the socket programs inside the namespaces.
describeSystem(
  'transport codecs against the kernel and tshark',
  ['netns', 'tcpdump', 'tshark', 'ethtool', 'scapy'],
  () => {
    let dir = '';
    let kernelPcap = '';
    let frames: Buffer[] = [];

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'pktveil-transport-'));
      kernelPcap = join(dir, 'kernel.pcap');
      // The SACK depends on the forwarding blip landing while segments are in flight: up to 3 attempts.
      for (let attempt = 0; attempt < 3; attempt++) {
        execFileSync('bash', ['-c', captureScript(kernelPcap)], { timeout: 60_000, stdio: 'ignore' });
        if (tsharkFields(kernelPcap, 'tcp.options.sack_le', ['frame.number']).length > 0) break;
      }
      frames = readPcapFrames(kernelPcap);
      expect(readFileSync(kernelPcap).readUInt32LE(20)).toBe(LINKTYPE_ETHERNET);
    });

    afterAll(() => {
      for (const name of Object.values(ns)) {
        try {
          execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10_000 });
        } catch {
          // already gone: the capture script removes its namespaces on exit
        }
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('decodes every kernel TCP segment as tshark does, SACK and timestamps included', () => {
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
      ];
      const expected = tsharkFields(kernelPcap, 'tcp', fields, [
        'tcp.check_checksum:TRUE',
        'tcp.relative_sequence_numbers:FALSE',
      ]).map((row) => [
        ...row.slice(0, 5),
        String(Number.parseInt(row[5]!, 16)),
        row[6],
        String(Number.parseInt(row[7]!, 16)),
        row[8] === '1' ? 'good' : `status ${row[8]}`,
        ...row.slice(9),
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

    it('decodes kernel ICMP and ICMPv6 echo as tshark does', () => {
      const v4 = tsharkFields(kernelPcap, 'icmp', [
        'icmp.type',
        'icmp.code',
        'icmp.checksum',
        'icmp.checksum.status',
        'icmp.ident',
        'icmp.seq',
      ]);
      const v6 = tsharkFields(kernelPcap, 'icmpv6', [
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

    it('writes TCP, ICMP, ESP and NAT-T packets that tshark reads back with good checksums', () => {
      const src = '198.18.0.1';
      const dst = '198.18.0.2';
      const packets: Buffer[] = [];

      // TCP: an ACK with three SACK blocks and timestamps, a SYN with an option kind tshark does not parse.
      const payload = Buffer.from('pktveil');
      const tcpOver = (repr: TcpRepr, data: Buffer) => {
        const length = repr.encodedLength + data.length;
        const pkt = Buffer.concat([ipv4Header(6, length, src, dst), Buffer.alloc(length)]);
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
      const icmp = Buffer.concat([ipv4Header(1, 8 + body.length, src, dst), Buffer.alloc(8), body]);
      new Icmpv4Repr({ type: 8, code: 0, rest: echoRest(0xbeef, 42), payloadLength: body.length }).encodeInto(
        icmp,
        20,
      );
      packets.push(icmp);
      const icmp6 = Buffer.concat([ipv6Header(58, 8 + body.length, 1, 2), Buffer.alloc(8), body]);
      new Icmpv6Repr({
        type: 129,
        code: 0,
        rest: echoRest(0xbeef, 43),
        payloadLength: body.length,
      }).encodeInto(icmp6, 40, ipv6PseudoHeaderSum(icmp6, 0, 58, 8 + body.length));
      packets.push(icmp6);

      // ESP directly over IP, ESP under NAT-T, an IKE message behind the non-ESP marker, a keepalive.
      const opaque = Buffer.alloc(40, 0x5a);
      const esp = Buffer.concat([ipv4Header(50, 8 + opaque.length, src, dst), Buffer.alloc(8), opaque]);
      new EspRepr({ spi: 0xc0ffee01, seq: 77, payloadLength: opaque.length }).encodeInto(esp, 20);
      packets.push(esp);
      const udpOver = (data: Buffer) => {
        const pkt = Buffer.concat([ipv4Header(17, 8 + data.length, src, dst), Buffer.alloc(8), data]);
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
      writePcap(file, LINKTYPE_RAW, packets);

      const tcpRows = tsharkFields(
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
        tsharkFields(file, 'icmp', ['icmp.type', 'icmp.checksum.status', 'icmp.ident', 'icmp.seq']),
      ).toEqual([['8', '1', '48879', '42']]);
      expect(
        tsharkFields(file, 'icmpv6', [
          'icmpv6.type',
          'icmpv6.checksum.status',
          'icmpv6.echo.identifier',
          'icmpv6.echo.sequence_number',
        ]),
      ).toEqual([['129', '1', '0xbeef', '43']]);
      expect(tsharkFields(file, 'esp', ['frame.number', 'esp.spi', 'esp.sequence'])).toEqual([
        ['5', '0xc0ffee01', '77'],
        ['6', '0xc0ffee01', '77'],
      ]);
      expect(
        tsharkFields(file, 'udp', ['frame.number', 'udp.checksum.status'], ['udp.check_checksum:TRUE']),
      ).toEqual([
        ['6', '1'],
        ['7', '1'],
        ['8', '1'],
      ]);

      // Our classification of each UDP 4500 payload agrees with tshark's.
      const tsharkKind = new Map<string, NattPayloadKind>();
      for (const [n] of tsharkFields(file, 'udp && esp', ['frame.number'])) tsharkKind.set(n!, 'esp');
      for (const [n] of tsharkFields(file, 'udpencap.non_esp_marker', ['frame.number']))
        tsharkKind.set(n!, 'ike');
      for (const [n] of tsharkFields(file, 'udpencap.nat_keepalive', ['frame.number']))
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
