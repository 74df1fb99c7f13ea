/**
 * The anon-prefilter measurement: two network namespaces on a veth pair. In one, a sender replays a
 * broadcast load of replies (mostly other hosts', some this host's) at a fixed offered rate; in the other,
 * the host captures with a kernel filter and counts what reaches JavaScript. Each filter is one phase: the
 * capture opens, the load runs for the given seconds, the capture drains and closes. Both children
 * (anon-load-sender.ts, anon-capture-counter.ts) live for the whole run and take commands by stdin lines.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { NetnsLab, tsxCommand } from '../../scenarios/lib/netns-lab.js';
import { buildPrefilter, type Prefilter } from '../../src/filter/prefilter.js';
import { loadCap } from '../../src/io/addons.js';
import type { CaptureCount, CaptureCounterJob } from './anon-capture-counter.js';
import { broadcastLoad, type HostSession, SUBNET_BROADCAST } from './anon-frames.js';
import type { LoadSenderJob, LoadSent } from './anon-load-sender.js';

const SENDER = fileURLToPath(new URL('./anon-load-sender.ts', import.meta.url));
const COUNTER = fileURLToPath(new URL('./anon-capture-counter.ts', import.meta.url));
/** The lab's subnet: 198.18.0.0/24, so the broadcast address is anon-frames.ts's SUBNET_BROADCAST. */
const ADDRESSES = ['198.18.0.1', '198.18.0.2'];
const FRAME_SIZE = 128;
const RING_FRAMES = 4096;
/** Time for the last frames to reach JavaScript after the sender stops. */
const DRAIN_MS = 300;

/** Why the measurement cannot run here, or null. */
export function prefilterMissing(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, packet capture)';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore', timeout: 10_000 });
    execFileSync('ethtool', ['--version'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return 'needs `ip netns` (iproute2) and ethtool';
  }
  try {
    loadCap();
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

export interface PrefilterPhase {
  label: string;
  /** Kernel filter of the capture ("" for none). */
  filter: string;
}

export interface PhaseResult extends PrefilterPhase {
  sent: LoadSent;
  count: CaptureCount;
  /** Frames the receiving interface counted while the phase ran (what the kernel saw). */
  arrived: number;
}

export interface PrefilterRun {
  prefilter: Prefilter;
  /** Frames of the load that are this host's, of RING_FRAMES. */
  ownShare: number;
  phases: PhaseResult[];
}

export interface PrefilterRunOptions {
  sessions: readonly HostSession[];
  offeredPps: number;
  seconds: number;
  ownShare: number;
  basicShare: number;
}

/** Lines from a child's stdout, one request at a time, with a timeout and the child's stderr on failure. */
function lineChannel(child: ChildProcess, name: string) {
  const lines: string[] = [];
  let waiting: ((line: string) => void) | null = null;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(line);
    } else lines.push(line);
  });
  return (command: string, timeoutMs: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const fail = (why: string) =>
        reject(new Error(`${name}: ${why} after "${command}"; stderr: ${stderr.trim()}`));
      const timer = setTimeout(() => {
        waiting = null;
        fail(`no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        fail(`exited (${code})`);
      };
      child.once('exit', onExit);
      waiting = (line) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(line);
      };
      const queued = lines.shift();
      if (queued !== undefined) waiting(queued);
      child.stdin!.write(`${command}\n`);
    });
}

/** Resolves when `child` has exited; kills it after `timeoutMs`. */
function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function rxPackets(lab: NetnsLab, ns: string, ifname: string): number {
  const [info] = JSON.parse(lab.ipIn(ns, ['-s', '-j', 'link', 'show', 'dev', ifname])) as {
    stats64: { rx: { packets: number } };
  }[];
  return info!.stats64.rx.packets;
}

/** Runs one phase per filter of `phases` (in order) on a fresh lab and cleans it up. */
export async function runPrefilterPhases(
  options: PrefilterRunOptions,
  phases: (prefilter: Prefilter) => PrefilterPhase[],
): Promise<PrefilterRun> {
  const sids = options.sessions.flatMap((s) => [
    { hi: s.currentHi, lo: s.currentLo },
    { hi: s.nextHi, lo: s.nextLo },
  ]);
  const prefilter = buildPrefilter({ sids, broadcastAddress: SUBNET_BROADCAST });
  const lab = new NetnsLab();
  const dir = mkdtempSync(join(tmpdir(), 'pktveil-bench-prefilter-'));
  const children: ChildProcess[] = [];
  try {
    const tx = lab.addNamespace('tx');
    const rx = lab.addNamespace('rx');
    const { a, b } = lab.addVethPair(tx, rx, { disableIpv6: true, addresses: ADDRESSES });
    // Without receive offloads libpcap sizes its ring slots by the MTU, not 64 KiB: the ring then holds
    // thousands of frames, so the unfiltered capture is not starved by a small buffer.
    lab.exec(rx, 'ethtool', ['-K', b.ifname, 'gro', 'off', 'gso', 'off', 'tso', 'off']);
    const load = broadcastLoad(options.sessions, {
      count: RING_FRAMES,
      frameSize: FRAME_SIZE,
      ownShare: options.ownShare,
      basicShare: options.basicShare,
      srcMac: Buffer.from(a.mac.replaceAll(':', ''), 'hex'),
    });
    const file = join(dir, 'load.bin');
    writeFileSync(file, load.bytes);

    const senderJob: LoadSenderJob = { interface: a.ifname, file, frameSize: FRAME_SIZE };
    const counterJob: CaptureCounterJob = {
      interface: b.ifname,
      sids: sids.map((s) => [s.hi, s.lo]),
      anonProtocol: 253,
    };
    const [node, senderArgs] = tsxCommand(SENDER, [JSON.stringify(senderJob)]);
    const [, counterArgs] = tsxCommand(COUNTER, [JSON.stringify(counterJob)]);
    const sender = lab.spawn(tx, node, senderArgs);
    const counter = lab.spawn(rx, node, counterArgs);
    children.push(sender, counter);
    const toSender = lineChannel(sender, 'anon-load-sender');
    const toCounter = lineChannel(counter, 'anon-capture-counter');
    const sendTimeout = (options.seconds + 30) * 1000;

    const results: PhaseResult[] = [];
    for (const phase of phases(prefilter)) {
      const ready = await toCounter(`open ${JSON.stringify(phase.filter)}`, 30_000);
      if (ready !== 'ready')
        throw new Error(`anon-capture-counter answered ${JSON.stringify(ready)} to open`);
      const rxBefore = rxPackets(lab, rx, b.ifname);
      const sent = JSON.parse(
        await toSender(`send ${options.offeredPps} ${options.seconds}`, sendTimeout),
      ) as LoadSent;
      await new Promise((r) => setTimeout(r, DRAIN_MS));
      const count = JSON.parse(await toCounter('close', 30_000)) as CaptureCount;
      results.push({ ...phase, sent, count, arrived: rxPackets(lab, rx, b.ifname) - rxBefore });
    }
    for (const child of children) child.stdin?.end();
    await Promise.all(children.map((c) => exited(c, 10_000)));
    return { prefilter, ownShare: load.ownCount / load.count, phases: results };
  } finally {
    lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}
