/**
 * esp-cli: the whole `pktveil esp encap --sa SA IN OUT` process (node start-up, module loading, file
 * reading and writing, encapsulation) on a generated capture of 1400-byte IPv4/UDP packets in Ethernet
 * frames, beside `tcpdump -r IN -w OUT` on the same file; Gbit/s of input file bytes, goal ≥ 2 Gbit/s.
 * Measured with the fastest suite and backend (chacha20-poly1305 on sodium) and with aes-gcm-16 (node).
 *
 * The built CLI is run (dist/, rebuilt first when a source file is newer). Each side runs three times,
 * alternating, and keeps its best wall time. Every output is read back and every packet decapsulated
 * and compared with its input, so a broken encapsulation cannot look fast.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SaConfig } from '../src/esp/sa.js';
import type { SuiteName } from '../src/esp/suites.js';
import { type Bench, isMain, runAlone } from './lib/bench-context.js';
import { checkEncapsulatedCapture } from './lib/esp-capture-check.js';
import { espCases, saConfig } from './lib/esp-cases.js';
import { udpFrames } from './lib/esp-packets.js';
import { CLI_MAIN, ensureFreshBuild, ROOT } from './lib/fresh-build.js';
import { writeGeneratedPcap } from './lib/pcap-file.js';
import { figure } from './lib/report.js';
import { copyWithTcpdump, tcpdumpMissing } from './lib/tcpdump-copy.js';

const RUNS = 3;
const PACKETS = { quick: 20_000, full: 100_000 };
/** IPv4 total length of every packet in the capture. */
const PACKET_SIZE = 1400;
/** Distinct frames the capture cycles through. */
const DISTINCT_FRAMES = 64;
const GOAL_GBIT = 2;

const WANTED: readonly { suite: SuiteName; backend: 'sodium' | 'node' }[] = [
  { suite: 'chacha20-poly1305', backend: 'sodium' },
  { suite: 'aes-gcm-16', backend: 'node' },
];

/** The SA file of the CLI contract (contracts/cli.md) for `config`. */
function saFileText(config: SaConfig): string {
  const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? new Uint8Array(0)).toString('hex');
  return `${JSON.stringify({
    spi: `0x${config.spi.toString(16).padStart(8, '0')}`,
    mode: config.mode,
    suite: config.suite,
    encKey: hex(config.encKey),
    authKey: hex(config.authKey),
    tunnel: config.tunnel,
    backend: config.backend,
  })}\n`;
}

/** Runs the built CLI's esp encap; returns its wall time in seconds. */
function encapWithCli(saFile: string, input: string, output: string): number {
  const began = performance.now();
  const result = spawnSync(process.execPath, [CLI_MAIN, 'esp', 'encap', '--sa', saFile, input, output], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 600_000,
  });
  const seconds = (performance.now() - began) / 1000;
  if (result.error) throw result.error;
  if (result.status !== 0)
    throw new Error(`pktveil esp encap exited with ${result.status}: ${result.stderr.toString().trim()}`);
  return seconds;
}

export const espCliBench: Bench = {
  name: 'esp-cli',
  description: `'pktveil esp encap' process on a 100k-packet pcap (1400 B) vs. tcpdump -r IN -w OUT`,
  async run({ quick, reporter }) {
    reporter.note(`esp-cli: ${ensureFreshBuild()}`);
    const cases = WANTED.flatMap((w) => {
      const c = espCases([w.suite]).find((x) => x.backend === w.backend);
      if (!c)
        reporter.note(`esp-cli: ${w.suite} on ${w.backend} skipped, that backend is not available here`);
      return c ? [c] : [];
    });
    const packets = quick ? PACKETS.quick : PACKETS.full;
    const dir = mkdtempSync(join(tmpdir(), 'pktveil-bench-esp-'));
    try {
      const input = join(dir, 'in.pcap');
      const frames = udpFrames(PACKET_SIZE, DISTINCT_FRAMES);
      const capture = writeGeneratedPcap(input, frames, packets);
      const gigabits = (capture.fileBytes * 8) / 1e9;
      reporter.note(
        `esp-cli: ${packets.toLocaleString('en-US')} frames of ${PACKET_SIZE}-byte IPv4/UDP packets, ` +
          `${(capture.fileBytes / 1e6).toFixed(1)} MB, best of ${RUNS} runs each`,
      );
      const sides = cases.map((c) => {
        const config = saConfig(c);
        const saFile = join(dir, `${c.suite.name}-${c.backend}.json`);
        writeFileSync(saFile, saFileText(config));
        return { c, config, saFile, output: join(dir, `${c.suite.name}-${c.backend}.pcap`), best: Infinity };
      });
      const missing = tcpdumpMissing();
      const copy = join(dir, 'tcpdump-out.pcap');
      let bestTcpdump = Number.POSITIVE_INFINITY;
      for (let run = 0; run < RUNS; run++) {
        for (const side of sides) {
          rmSync(side.output, { force: true });
          side.best = Math.min(side.best, encapWithCli(side.saFile, input, side.output));
          await checkEncapsulatedCapture(side.output, side.config, frames, packets);
        }
        if (missing) continue;
        rmSync(copy, { force: true });
        bestTcpdump = Math.min(bestTcpdump, copyWithTcpdump(input, copy));
      }

      for (const side of sides) {
        const label = `${side.c.suite.name}/${side.c.backend}`;
        const gbit = gigabits / side.best;
        const verdict = `goal ≥ ${GOAL_GBIT} Gbit/s: ${gbit >= GOAL_GBIT ? 'met' : 'missed'}`;
        reporter.note(`esp-cli/${label}: ${gbit.toFixed(2)} Gbit/s (${side.best.toFixed(3)} s), ${verdict}`);
        if (missing) continue;
        reporter.figure(figure(`esp-cli/${label}`, 'Gbit/s', gbit, 'tcpdump -r -w', gigabits / bestTcpdump), {
          detail: `best of ${RUNS}: ${side.best.toFixed(3)} s vs ${bestTcpdump.toFixed(3)} s, ${verdict}`,
        });
      }
      if (missing)
        reporter.note(`esp-cli: baseline skipped, ${missing} (no figure emitted without its baseline)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (isMain(import.meta.url)) runAlone(espCliBench);
