/**
 * pcap-throughput: a generated capture of mixed frame sizes copied through pktveil (readCapture into a
 * pcap writer) beside `tcpdump -r IN -w OUT` on the same file in the same run. Each side runs three
 * times, alternating, and keeps its best wall time; figures are input MB/s and packets/s.
 *
 * Both outputs must equal the input byte for byte (a µs, little-endian pcap goes through unchanged), so
 * the two sides are timed doing the same, correct work. pktveil's time is measured in-process (module
 * loading excluded); tcpdump's is the child's wall time, process start included (a few ms).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCaptureWriter, readCapture } from '../src/io/capture-file.js';
import { LinkType } from '../src/packet.js';
import { type Bench, isMain, runAlone } from './lib/bench-context.js';
import { buildCorpus } from './lib/corpus.js';
import { firstDifference } from './lib/files-identical.js';
import { writeGeneratedPcap } from './lib/pcap-file.js';
import { figure } from './lib/report.js';
import { copyWithTcpdump, tcpdumpMissing } from './lib/tcpdump-copy.js';

const RUNS = 3;

/** Copies `input` to `output` through pktveil's reader and writer; returns seconds taken. */
async function copyWithPktveil(input: string, output: string): Promise<number> {
  const began = performance.now();
  const writer = await openCaptureWriter(output, {
    format: 'pcap',
    link: LinkType.ETHERNET,
    nanosecond: false,
  });
  try {
    for await (const pkt of readCapture(input)) if (!writer.write(pkt)) await writer.drain();
  } finally {
    await writer.close();
  }
  return (performance.now() - began) / 1000;
}

export const pcapThroughputBench: Bench = {
  name: 'pcap-throughput',
  description: 'pcap read+write (readCapture → pcap writer) vs. tcpdump -r IN -w OUT on the same file',
  async run({ quick, reporter }) {
    const packets = quick ? 20_000 : 300_000;
    const dir = mkdtempSync(join(tmpdir(), 'pktveil-bench-'));
    try {
      const input = join(dir, 'in.pcap');
      const ours = join(dir, 'pktveil-out.pcap');
      const theirs = join(dir, 'tcpdump-out.pcap');
      const capture = writeGeneratedPcap(input, buildCorpus(1024).frames, packets);
      const megabytes = capture.fileBytes / 1e6;
      reporter.note(
        `pcap-throughput: ${packets.toLocaleString('en-US')} frames, ${megabytes.toFixed(1)} MB, best of ${RUNS} runs each`,
      );
      const missing = tcpdumpMissing();

      let bestOurs = Number.POSITIVE_INFINITY;
      let bestTheirs = Number.POSITIVE_INFINITY;
      for (let run = 0; run < RUNS; run++) {
        rmSync(ours, { force: true });
        bestOurs = Math.min(bestOurs, await copyWithPktveil(input, ours));
        const oursDiffer = firstDifference(input, ours);
        if (oursDiffer) throw new Error(`pcap-throughput: pktveil's copy is not the input (${oursDiffer})`);
        if (missing) continue;
        rmSync(theirs, { force: true });
        bestTheirs = Math.min(bestTheirs, copyWithTcpdump(input, theirs));
        const theirsDiffer = firstDifference(input, theirs);
        if (theirsDiffer)
          throw new Error(`pcap-throughput: tcpdump's copy is not the input (${theirsDiffer})`);
      }

      if (missing) {
        reporter.note(
          `pcap-throughput: baseline skipped, ${missing}; pktveil alone: ${(megabytes / bestOurs).toFixed(1)} MB/s, ` +
            `${Math.round(packets / bestOurs)} packets/s (no figure emitted without its baseline)`,
        );
        return;
      }
      const detail = `best of ${RUNS}: ${bestOurs.toFixed(3)} s vs ${bestTheirs.toFixed(3)} s, ${megabytes.toFixed(1)} MB`;
      reporter.figure(
        figure('pcap-throughput', 'MB/s', megabytes / bestOurs, 'tcpdump -r -w', megabytes / bestTheirs),
        {
          detail,
        },
      );
      reporter.figure(
        figure(
          'pcap-throughput-packets',
          'packets/s',
          packets / bestOurs,
          'tcpdump -r -w',
          packets / bestTheirs,
        ),
        { detail },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (isMain(import.meta.url)) runAlone(pcapThroughputBench);
