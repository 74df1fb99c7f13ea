/**
 * `pktveil inspect --json` against tshark on traffic the kernel made: a TCP transfer and UDP datagrams of
 * many sizes (some fragmented) between two network namespaces, captured at once by two tcpdumps (full
 * and a small snap length, nanosecond timestamps), each file read as pcap and as pcapng.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readCapture } from '../../src/io/capture-file.js';
import { type Packet, wireLength } from '../../src/packet.js';
import { inspectJson } from '../helpers/cli.js';
import { collect, NetnsLab, waitForOutput } from '../helpers/netns.js';
import { describeSystem } from '../helpers/system.js';
import { compareWithTshark, tsharkFields } from '../helpers/tshark.js';

const TRANSFER_BYTES = 300_000;
/** 1472 fills a 1500-byte MTU exactly; from 1473 up the kernel must fragment. */
const UDP_SIZES = [0, 1, 100, 1000, 1472, 1473, 3000, 9000, 20000, 65000];
const MTU = 1500;
/**
 * Snap length of the short capture: 66 bytes of Ethernet, IPv4 and a TCP header with timestamps fit (so
 * data segments keep their headers and lose their payload), the 74 of a SYN's 40-byte TCP header do not
 * (so tshark and pktveil must both call those frames cut short).
 */
const SNAP = 70;
const TCP_PORT = 47001;
const UDP_PORT = 47002;
const PY = '/usr/bin/python3';

// Payloads follow a fixed pattern, so tshark's heuristics see the same bytes in every run.
const tcpServer = `
import socket, sys
srv = socket.socket()
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(1)
srv.settimeout(20)
print('ready', flush=True)
conn, _ = srv.accept()
conn.settimeout(20)
total = 0
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    total += len(chunk)
conn.close()
print(total, flush=True)
`;
const tcpClient = `
import socket, sys
size = int(sys.argv[3])
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
c.sendall(bytes((i * 31 + 7) & 0xff for i in range(size)))
c.shutdown(socket.SHUT_WR)
while c.recv(65536):  # until the server closes, so the FIN exchange is over when we exit
    pass
c.close()
`;
const udpReceiver = `
import socket, sys
marker = sys.argv[3].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: room for reassembled 64 KB datagrams
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(20)
print('ready', flush=True)
sizes = []
while True:
    data, _ = s.recvfrom(65535)
    if data == marker:
        break
    sizes.append(len(data))
print(' '.join(map(str, sizes)), flush=True)
`;
const udpSender = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dest = (sys.argv[1], int(sys.argv[2]))
for n in map(int, sys.argv[4:]):
    s.sendto(bytes((i * 7 + n) & 0xff for i in range(n)), dest)
    time.sleep(0.01)
s.sendto(sys.argv[3].encode(), dest)
`;

type Frame = Record<string, unknown> & { caplen: number; len: number; layers: Layer[] };
type Layer = Record<string, unknown> & { layer: string };

const layerOf = (f: Frame, name: string) => f.layers.find((l) => l.layer === name);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (at most `timeoutMs`) until `file` contains `marker`: tcpdump has written the last packet. */
async function waitForBytes(file: string, marker: Buffer, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    try {
      if (readFileSync(file).includes(marker)) return;
    } catch {
      // Not created yet.
    }
    await sleep(50);
  }
  throw new Error(`${file} lacks the end marker after ${timeoutMs} ms`);
}

/** tshark's notes per frame: `short` names the protocol it found cut by the snap length, if any. */
async function tsharkTruncation(file: string): Promise<{ short: string | null; malformed: boolean }[]> {
  const frames = await tsharkFields(file, { fields: ['_ws.short', '_ws.malformed'], prefs: [] });
  return frames.map((frame) => {
    const short = (frame.get('_ws.short') ?? []).join(',');
    // "[Packet size limited during capture: TCP truncated]"
    const m = /: (\S+) truncated\]/.exec(short);
    return { short: short ? (m ? m[1]!.toLowerCase() : short) : null, malformed: frame.has('_ws.malformed') };
  });
}

/**
 * For each frame of the snap-length capture, the index of the same frame in the full capture. The two
 * tcpdumps see the same frames, but not always in the same order: frames sent and frames received reach
 * their sockets from different CPUs. A frame is known by its length and its first SNAP bytes (headers
 * with IP ID, ports, sequence numbers); identical keys are identical frames, so any pairing of them will do.
 */
async function matchFrames(snapFile: string, fullFile: string): Promise<number[]> {
  const key = (p: Packet) => `${wireLength(p)}:${p.data.subarray(0, SNAP).toString('hex')}`;
  const byKey = new Map<string, number[]>();
  let i = 0;
  for await (const p of readCapture(fullFile)) {
    const k = key(p);
    const same = byKey.get(k);
    if (same) same.push(i++);
    else byKey.set(k, [i++]);
  }
  const matched: number[] = [];
  for await (const p of readCapture(snapFile)) {
    const j = byKey.get(key(p))?.shift();
    if (j === undefined) throw new Error(`frame ${matched.length} of ${snapFile} is not in ${fullFile}`);
    matched.push(j);
  }
  return matched;
}

/** Layers pktveil decodes, as tshark names them (lowercased) in "[Packet size limited during capture: X truncated]". */
const decodedLayers = new Set(['eth', 'arp', 'ipv4', 'ipv6', 'tcp', 'udp', 'icmp', 'icmpv6', 'esp']);

/** Bytes of the Ethernet, IPv4 and transport headers of a frame (what the snap length must hold). */
function headerBytes(f: Frame): number {
  let n = 14;
  const ip = layerOf(f, 'ipv4');
  if (ip) n += (ip.ihl as number) * 4;
  const tcp = layerOf(f, 'tcp');
  if (tcp) n += (tcp.dataOffset as number) * 4;
  if (layerOf(f, 'udp')) n += 8;
  return n;
}

/** The traffic the test made is all there: the TCP byte stream in order, every UDP datagram and fragment. */
function expectTraffic(frames: Frame[], marker: string): void {
  // TCP, client → server: the distinct data segments tile the byte stream from ISN+1, then FIN. The
  // first segment after the SYN (the handshake's ACK) carries ISN+1; in the short capture the SYN
  // itself is cut inside its TCP header, so it is checked only where decoded.
  const toServer = frames.map((f) => layerOf(f, 'tcp')).filter((t) => t && t.dstPort === TCP_PORT) as Layer[];
  const isSyn = (t: Layer) => ((t.flags as number) & 0x002) !== 0;
  const first = toServer.find((t) => !isSyn(t));
  expect(first, 'client segments after the SYN').toBeDefined();
  const isn = ((first!.seq as number) - 1) >>> 0;
  const syn = toServer.find(isSyn);
  if (syn) expect(syn.seq).toBe(isn);
  const rel = (t: Layer) => ((t.seq as number) - isn) >>> 0;
  const segments = new Map<number, number>();
  for (const t of toServer)
    if ((t.payloadLength as number) > 0) segments.set(rel(t), t.payloadLength as number);
  let next = 1;
  for (const [start, length] of [...segments].sort((a, b) => a[0] - b[0])) {
    expect(start, 'segments tile the byte stream').toBe(next);
    next += length;
  }
  expect(next - 1, 'TCP payload bytes client → server').toBe(TRANSFER_BYTES);
  // The FIN may ride on the last data segment; it takes the sequence number after that segment's data.
  const fin = toServer.find((t) => ((t.flags as number) & 0x001) !== 0);
  expect(fin && rel(fin) + (fin.payloadLength as number), 'FIN after the last byte').toBe(TRANSFER_BYTES + 1);
  const fromServer = frames
    .map((f) => layerOf(f, 'tcp'))
    .filter((t) => t && t.srcPort === TCP_PORT) as Layer[];
  expect(fromServer.reduce((s, t) => s + (t.payloadLength as number), 0)).toBe(0);

  // UDP: one first fragment (offset 0, UDP header inside) per datagram, then the marker.
  const udpFrames = frames.filter((f) => layerOf(f, 'udp')?.dstPort === UDP_PORT);
  const sizes = udpFrames.map((f) => layerOf(f, 'udp')!.payloadLength as number);
  expect(sizes).toEqual([...UDP_SIZES, marker.length]);
  for (const [i, size] of UDP_SIZES.entries()) {
    const ip = layerOf(udpFrames[i]!, 'ipv4')!;
    expect(ip.fragOffset).toBe(0);
    // Every fragment of this datagram (same IP id, same addresses): their payloads add up to UDP + data.
    const fragments = frames
      .map((f) => layerOf(f, 'ipv4'))
      .filter((l) => l && l.id === ip.id && l.src === ip.src && l.protocol === 17) as Layer[];
    const carried = fragments.reduce((s, l) => s + (l.totalLength as number) - (l.ihl as number) * 4, 0);
    expect(carried, `IP payload of the ${size}-byte datagram`).toBe(8 + size);
    const fragmented = 28 + size > MTU;
    expect(fragments.length > 1, `${size} bytes fragmented`).toBe(fragmented);
    expect((ip.flags as number) & 1, `${size} bytes: More Fragments on the first`).toBe(fragmented ? 1 : 0);
    for (const l of fragments) expect(l.totalLength as number).toBeLessThanOrEqual(MTU);
  }
}

describeSystem(
  'inspect agrees with tshark on kernel traffic between two namespaces',
  ['netns', 'tshark', 'tcpdump', 'ethtool'],
  () => {
    const lab = new NetnsLab();
    const dir = mkdtempSync(join(tmpdir(), 'pktveil-kernel-traffic-'));
    const files = {
      full: join(dir, 'full.pcap'),
      snap: join(dir, `snap${SNAP}.pcap`),
      fullNg: join(dir, 'full.pcapng'),
      snapNg: join(dir, `snap${SNAP}.pcapng`),
    };
    const marker = `pktveil-end-${lab.tag}`;
    let received: { tcp: number; udp: number[] };
    let tcpdumpStderr: string[] = [];
    let full: Frame[];
    let snap: Frame[];

    beforeAll(async () => {
      const client = lab.addNamespace('client');
      const server = lab.addNamespace('server');
      // No IPv6 on the link (router solicitations, MLD reports): the captures hold only the traffic made here.
      const { a, b } = lab.addVethPair(client, server, { mtu: MTU, disableIpv6: true });

      const tcpdumps = [
        ['-s', '0', '-w', files.full],
        ['-s', String(SNAP), '-w', files.snap],
      ].map((args) =>
        lab.spawn(client, 'tcpdump', [
          '-Z',
          'root',
          '-U',
          '-n',
          '-B',
          '16384',
          '--time-stamp-precision',
          'nano',
          '-i',
          a.ifname,
          ...args,
        ]),
      );
      await Promise.all(tcpdumps.map((t) => waitForOutput(t, /listening on/, 'tcpdump')));

      const tcp = lab.spawn(server, PY, ['-c', tcpServer, b.address, String(TCP_PORT)]);
      const udp = lab.spawn(server, PY, ['-c', udpReceiver, b.address, String(UDP_PORT), marker]);
      await Promise.all([
        waitForOutput(tcp, /ready/, 'TCP server'),
        waitForOutput(udp, /ready/, 'UDP receiver'),
      ]);
      const tcpDone = collect(tcp, 30_000);
      const udpDone = collect(udp, 30_000);

      const sent = await lab.run(client, PY, [
        '-c',
        tcpClient,
        b.address,
        String(TCP_PORT),
        String(TRANSFER_BYTES),
      ]);
      expect(sent.code, `TCP client: ${sent.stderr}`).toBe(0);
      const tcpResult = await tcpDone;
      const udpArgs = [b.address, String(UDP_PORT), marker, ...UDP_SIZES.map(String)];
      const sentUdp = await lab.run(client, PY, ['-c', udpSender, ...udpArgs]);
      expect(sentUdp.code, `UDP sender: ${sentUdp.stderr}`).toBe(0);
      const udpResult = await udpDone;
      received = {
        tcp: Number(tcpResult.stdout.trim()),
        udp: udpResult.stdout.trim().split(/\s+/).filter(Boolean).map(Number),
      };

      // tcpdump loses what it has not yet written when stopped under load: wait for the last packet.
      await Promise.all([files.full, files.snap].map((f) => waitForBytes(f, Buffer.from(marker), 10_000)));
      const stopped = tcpdumps.map((t) => {
        const done = collect(t, 10_000);
        t.kill('SIGINT');
        return done;
      });
      tcpdumpStderr = (await Promise.all(stopped)).map((r) => r.stderr);

      execFileSync('editcap', ['-F', 'pcapng', files.full, files.fullNg]);
      execFileSync('editcap', ['-F', 'pcapng', files.snap, files.snapNg]);
      const [fullJson, snapJson] = await Promise.all([inspectJson(files.full), inspectJson(files.snap)]);
      full = fullJson as Frame[];
      snap = snapJson as Frame[];
    });

    afterAll(() => {
      lab.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('the kernel carried the transfer and every datagram; tcpdump dropped nothing', () => {
      expect(received.tcp).toBe(TRANSFER_BYTES);
      expect(received.udp).toEqual(UDP_SIZES);
      for (const stderr of tcpdumpStderr) expect(stderr).toMatch(/\b0 packets dropped by kernel/);
      // --time-stamp-precision nano: timestamps carry digits below the microsecond.
      expect(full.some((f) => !(f.ts as string).endsWith('000'))).toBe(true);
    });

    for (const [name, file] of Object.entries(files)) {
      it(`${name}: pktveil and tshark agree field by field`, async () => {
        const cmp = await compareWithTshark(file);
        expect(cmp.mismatches).toEqual([]);
        expect(cmp.frames).toBe(full.length);
        for (const layer of ['frame', 'ipv4', 'tcp', 'udp'])
          expect(cmp.compared[layer], `fields compared for ${layer}`).toBeGreaterThan(0);
      });
    }

    it('both captures hold the whole transfer, every datagram and every fragment', () => {
      expectTraffic(full, marker);
      expectTraffic(snap, marker);
    });

    it('full capture: nothing cut, no errors, every checksum verified', async () => {
      const notes = await tsharkTruncation(files.full);
      expect(notes.filter((n) => n.short !== null || n.malformed)).toEqual([]);
      for (const f of full) {
        expect(f.caplen).toBe(f.len);
        expect(f.error).toBeUndefined();
        const ip = layerOf(f, 'ipv4');
        if (ip) expect(ip.checksumOk).toBe(true);
        // A fragment's transport checksum covers bytes in other frames: it cannot be judged here.
        const inFragment = ip !== undefined && ((ip.flags as number) & 1 || ip.fragOffset !== 0);
        for (const t of ['tcp', 'udp']) {
          const l = layerOf(f, t);
          if (l) expect(l.checksumOk, `${t} checksum of ${JSON.stringify(l)}`).toBe(inFragment ? null : true);
        }
      }
    });

    it(`-s ${SNAP}: truncated errors exactly where tshark finds the frame cut short`, async () => {
      expect(snap.length).toBe(full.length);
      const notes = await tsharkTruncation(files.snap);
      expect(notes.length).toBe(snap.length);
      const counterpart = await matchFrames(files.snap, files.full);
      const cut: number[] = [];
      for (const [i, f] of snap.entries()) {
        const whole = full[counterpart[i]!]!;
        expect(f.caplen).toBe(Math.min(whole.len, SNAP));
        const error = f.error as { layer: string; kind: string } | undefined;
        if (error) {
          cut.push(i);
          expect(error.kind, `frame ${i}`).toBe('truncated');
          expect(notes[i]!.short, `frame ${i}: tshark on the layer we stopped at`).toBe(error.layer);
          expect(headerBytes(whole), `frame ${i}: headers longer than the snap length`).toBeGreaterThan(SNAP);
        } else {
          expect(headerBytes(whole), `frame ${i}: headers fit the snap length`).toBeLessThanOrEqual(SNAP);
          const short = notes[i]!.short;
          if (short !== null) {
            // tshark's heuristics may try an application protocol on the cut payload (RTPS does on this
            // TCP stream); pktveil decodes no application layer, so only a cut inside one of its layers
            // would be a disagreement.
            expect(decodedLayers.has(short), `frame ${i}: tshark finds ${short} cut short, pktveil not`).toBe(
              false,
            );
            expect(f.caplen, `frame ${i}`).toBeLessThan(f.len);
          }
        }
        expect(notes[i]!.malformed, `frame ${i}: tshark calls it malformed`).toBe(false);
        // A transport layer whose bytes were not all captured has no checksum verdict.
        for (const t of ['tcp', 'udp']) {
          const l = layerOf(f, t);
          if (l && f.caplen < f.len) expect(l.checksumOk, `frame ${i} ${t}`).toBeNull();
        }
      }
      // Non-vacuous: the SYN and SYN-ACK (40-byte TCP headers) are cut inside the header, and data
      // segments and datagrams lose their payload but keep a decoded, unjudged transport header.
      expect(cut.length).toBeGreaterThanOrEqual(2);
      const unjudged = snap.filter(
        (f) => f.caplen < f.len && (layerOf(f, 'tcp') ?? layerOf(f, 'udp'))?.checksumOk === null,
      );
      expect(unjudged.length).toBeGreaterThan(100);
    });
  },
);
