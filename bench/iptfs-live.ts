/**
 * iptfs-live: how well IptfsEncapStage holds its rate on a live link. Between two network namespaces on
 * a veth pair, the stage sends 1400-byte outer packets at fixed rates (10, 100 and 500 Mbit/s) for 10 s
 * each (2 s with --quick), and tcpdump on the far end (kernel timestamps, ns) measures what arrived:
 * - the achieved rate, (packets − 1) / (last − first), against the target (goal: within 1%);
 * - the gap error |gap − ideal interval|, p50, p99 and max, against the ideal interval.
 * Each figure's baseline is the target: `target <rate>` (bit/s) for the rate, `interval at <rate>` (µs)
 * for the gap errors, so the ratio is achieved/target and error/interval.
 *
 * Two pacings, each measured at every rate:
 * - real: the stage's own `time: 'real'` token bucket on runStage's 1 ms timer (several slots per tick
 *   once the interval is below 1 ms, so the gap error approaches the interval);
 * - ahead+tbf: the stage in virtual time 20 ms ahead of the clock with a tbf shaper on the interface
 *   setting departure times (scenarios/lib/ahead-of-clock.ts; what scenario:lives uses).
 * The sender runs as SCHED_FIFO and the CPUs are kept out of idle (scenarios/lib/cpu-keep-awake.ts), as
 * in the scenario, so the figures are the pacing's, not a busy machine's. The receiving kernel does not
 * own the tunnel's destination and does not forward, so it drops the ESP silently (no ICMP back).
 *
 * Needs root, `ip netns`, tcpdump and the raw-socket addon; skipped with the reason otherwise.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelShaperArgs } from '../scenarios/lib/ahead-of-clock.js';
import { CpuKeepAwake } from '../scenarios/lib/cpu-keep-awake.js';
import { collect, NetnsLab, tsxCommand, waitForOutput } from '../scenarios/lib/netns-lab.js';
import { loadRawSocket } from '../src/io/addons.js';
import { readCapture } from '../src/io/capture-file.js';
import { type Bench, isMain, runAlone } from './lib/bench-context.js';
import type { SenderJob } from './lib/iptfs-live-sender.js';
import { figure } from './lib/report.js';
import { tcpdumpMissing } from './lib/tcpdump-copy.js';

const PACKET_SIZE = 1400;
/** The qdisc counts the Ethernet header too. */
const FRAME_BYTES = PACKET_SIZE + 14;
const RATES_MBIT = [10, 100, 500];
const SECONDS = { quick: 2, full: 10 };
const LEAD_MS = 20;
const SENDER_PRIORITY = 20;
const SENDER = fileURLToPath(new URL('./lib/iptfs-live-sender.ts', import.meta.url));
const ADDR = { tx: '198.18.30.1', rx: '198.18.30.2', tunnelDst: '198.18.30.3' };

type Pacing = 'real' | 'ahead';
const PACING_NAME: Record<Pacing, string> = { real: 'real', ahead: 'ahead+tbf' };

/** Why this benchmark cannot run here, or null. */
function missing(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, raw sockets)';
  const tcpdump = tcpdumpMissing();
  if (tcpdump) return tcpdump;
  try {
    loadRawSocket();
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

interface Measured {
  packets: number;
  achievedBps: number;
  gapErrorUs: { p50: number; p99: number; max: number };
  kernelDrops: number;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

async function measure(file: string, intervalNs: number, tcpdumpStderr: string): Promise<Measured> {
  const gaps: number[] = [];
  let first = 0n;
  let last = 0n;
  let packets = 0;
  for await (const pkt of readCapture(file)) {
    if (packets === 0) first = pkt.ts;
    else gaps.push(Math.abs(Number(pkt.ts - last) - intervalNs));
    last = pkt.ts;
    packets++;
  }
  const errors = Float64Array.from(gaps).sort();
  const drops = /(\d+) packets? dropped by kernel/.exec(tcpdumpStderr);
  return {
    packets,
    achievedBps: packets > 1 ? ((packets - 1) * PACKET_SIZE * 8 * 1e9) / Number(last - first) : 0,
    gapErrorUs: {
      p50: percentile(errors, 0.5) / 1e3,
      p99: percentile(errors, 0.99) / 1e3,
      max: (errors[errors.length - 1] ?? 0) / 1e3,
    },
    kernelDrops: drops ? Number(drops[1]) : 0,
  };
}

export const iptfsLiveBench: Bench = {
  name: 'iptfs-live',
  description: 'IptfsEncapStage live on a veth (10/100/500 Mbit/s): achieved rate and gap error vs target',
  async run({ quick, reporter }) {
    const why = missing();
    if (why) {
      reporter.note(`iptfs-live: skipped, ${why}`);
      return;
    }
    const seconds = quick ? SECONDS.quick : SECONDS.full;
    const lab = new NetnsLab();
    const awake = new CpuKeepAwake();
    const dir = mkdtempSync(join(tmpdir(), 'pktveil-bench-iptfs-'));
    try {
      const tx = lab.addNamespace('tx');
      const rx = lab.addNamespace('rx');
      const { a, b } = lab.addVethPair(tx, rx, { disableIpv6: true, addresses: [ADDR.tx, ADDR.rx] });
      lab.exec(rx, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
      lab.ipIn(tx, [
        'neigh',
        'replace',
        ADDR.tunnelDst,
        'lladdr',
        b.mac,
        'dev',
        a.ifname,
        'nud',
        'permanent',
      ]);
      const sa = {
        spi: '0x49505446',
        mode: 'iptfs',
        suite: 'chacha20-poly1305',
        encKey: randomBytes(36).toString('hex'),
        authKey: '',
        tunnel: { src: ADDR.tx, dst: ADDR.tunnelDst },
      };
      for (const pacing of ['real', 'ahead'] as const) {
        for (const mbit of RATES_MBIT) {
          const bitsPerSecond = mbit * 1_000_000;
          const hz = bitsPerSecond / (PACKET_SIZE * 8);
          const intervalNs = 1e9 / hz;
          if (pacing === 'ahead')
            lab.exec(tx, 'tc', kernelShaperArgs(a.ifname, FRAME_BYTES, hz, Math.ceil(hz * 0.2)));
          else lab.exec(tx, 'tc', ['qdisc', 'replace', 'dev', a.ifname, 'root', 'pfifo_fast']);
          const file = join(dir, `${pacing}-${mbit}.pcap`);
          const dump = lab.spawn(rx, 'tcpdump', [
            // Immediate mode: otherwise the last second of packets waits in a ring block that SIGINT drops.
            ...['-i', b.ifname, '-n', '-s', '96', '-B', '131072', '-Z', 'root', '--immediate-mode'],
            ...['--time-stamp-precision=nano', '-w', file, 'ip proto 50'],
          ]);
          const dumped = collect(dump, (seconds + 60) * 1000);
          await waitForOutput(dump, /listening on/, 'tcpdump');
          const job: SenderJob = {
            sa,
            packetSize: PACKET_SIZE,
            bitsPerSecond,
            seconds,
            pacing,
            leadMs: LEAD_MS,
          };
          const [node, args] = tsxCommand(SENDER, [JSON.stringify(job)]);
          const sent = await lab.run(tx, 'chrt', ['--fifo', String(SENDER_PRIORITY), node, ...args], {
            timeoutMs: (seconds + 30) * 1000,
          });
          if (sent.code !== 0)
            throw new Error(
              `iptfs-live sender (${pacing}, ${mbit} Mbit/s) failed (exit ${sent.code ?? sent.signal}${sent.timedOut ? ', timed out' : ''}): ${sent.stderr}`,
            );
          const stats = JSON.parse(sent.stdout.trim().split('\n').pop()!) as {
            stage: Record<string, number>;
            sink: { sent: number; failed: number; dropped: Record<string, number> };
          };
          await new Promise((r) => setTimeout(r, 300)); // the shaper's queue drains
          dump.kill('SIGINT');
          const m = await measure(file, intervalNs, (await dumped).stderr);
          rmSync(file, { force: true });
          const label = `${PACING_NAME[pacing]}/${mbit}M`;
          const intervalUs = intervalNs / 1e3;
          const detail =
            `${m.packets} packets captured in ${seconds} s, ${stats.sink.sent} sent, ` +
            `${stats.sink.failed} send failures, sink drops ${JSON.stringify(stats.sink.dropped)}, ` +
            `missed slots ${stats.stage.missedSlots ?? 0}, capture drops ${m.kernelDrops}` +
            (pacing === 'ahead' ? `, ended ${((stats.stage.behindNs ?? 0) / 1e6).toFixed(1)} ms behind` : '');
          reporter.note(`iptfs-live ${label}: ${detail}`);
          reporter.figure(
            figure(
              `iptfs-live-rate/${label}`,
              'bit/s',
              m.achievedBps,
              `target ${mbit} Mbit/s`,
              bitsPerSecond,
            ),
            { detail },
          );
          for (const q of ['p50', 'p99', 'max'] as const)
            reporter.figure(
              figure(
                `iptfs-live-gap-error-${q}/${label}`,
                'µs',
                m.gapErrorUs[q],
                `interval at ${mbit} Mbit/s`,
                intervalUs,
              ),
            );
        }
      }
    } finally {
      awake.stop();
      lab.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (isMain(import.meta.url)) runAlone(iptfsLiveBench);
