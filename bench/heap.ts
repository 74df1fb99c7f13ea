/**
 * heap: one PacketParser decodes ten million frames, reading every header field, and the live heap at
 * the end is compared with the live heap after a warm-up. The parser's views are reused for every frame,
 * so anything kept per frame would show as growth in proportion to the frame count (even one byte per
 * frame is 10 MB here). Goal: none (ratio 1). Ten samples along the way tell a one-time step (optimised
 * code landing in code space) from a leak (growth in every interval).
 */
import { GCProfiler, getHeapSpaceStatistics } from 'node:v8';
import { PacketParser } from '../src/codec/parser.js';
import { type Bench, isMain, runAlone } from './lib/bench-context.js';
import { buildCorpus } from './lib/corpus.js';
import { readFieldsPktveil } from './lib/field-readers.js';
import { garbageCollector, liveHeapBytes } from './lib/heap-sampler.js';
import { figure } from './lib/report.js';

const CORPUS_FRAMES = 1024;
const SAMPLES = 10;
/** V8's names for young-generation collections (Scavenge; the minor mark-sweep of newer V8s). */
const MINOR_GC_TYPES = new Set(['Scavenge', 'MinorMarkSweep', 'MinorMarkCompact']);

let sink = 0;

function decodeFrames(parser: PacketParser, frames: Buffer[], count: number): void {
  let s = 0;
  for (let i = 0, f = 0; i < count; i++) {
    s += readFieldsPktveil(parser, frames[f]!);
    if (++f === frames.length) f = 0;
  }
  sink += s;
}

/** Bytes of compiled code on the heap: the part of any growth that is the JIT, not the data. */
function codeSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'code_space')?.space_used_size ?? 0;
}

export const heapBench: Bench = {
  name: 'heap',
  description: 'live heap after 10M frames (1M with --quick) through one parser vs. after the warm-up',
  async run({ quick, reporter }) {
    const warmup = quick ? 100_000 : 1_000_000;
    const measured = quick ? 1_000_000 : 10_000_000;
    const frames = buildCorpus(CORPUS_FRAMES).frames;
    const gc = garbageCollector();
    const parser = new PacketParser();

    decodeFrames(parser, frames, warmup);
    // Young-generation collections while decoding: short-lived garbage made per frame (which the heap
    // figure cannot see, since it is collected) shows up as a count in proportion to the frames.
    // Started before the first sample so the profiler's own objects are in both samples.
    const gcProfiler = new GCProfiler();
    gcProfiler.start();
    // Touch what the sampling loop uses, so lazily created internals land before the first sample.
    codeSpaceBytes();
    performance.now();
    const start = liveHeapBytes(gc);
    const codeStart = codeSpaceBytes();
    const samples: number[] = [];
    let seconds = 0;
    for (let i = 0; i < SAMPLES; i++) {
      const began = performance.now();
      decodeFrames(parser, frames, measured / SAMPLES);
      seconds += (performance.now() - began) / 1000;
      samples.push(liveHeapBytes(gc));
    }
    const end = samples[SAMPLES - 1]!;
    const minorGcs = gcProfiler.stop().statistics.filter((s) => MINOR_GC_TYPES.has(s.gcType)).length;
    const codeGrowth = codeSpaceBytes() - codeStart;
    if (!Number.isFinite(sink))
      throw new Error('heap: the field sums overflowed; the loop did not read numbers');

    const growth = end - start;
    const steps = samples.map((s, i) => s - (i === 0 ? start : samples[i - 1]!));
    const growingSteps = steps.filter((d) => d > 0).length;
    reporter.note(
      `heap: ${measured.toLocaleString('en-US')} frames in ${seconds.toFixed(2)} s; live heap ${start} → ${end} bytes ` +
        `(growth ${growth}, of which code space ${codeGrowth}; ${(growth / measured).toFixed(4)} bytes/frame; ` +
        `change per ${(measured / SAMPLES).toLocaleString('en-US')} frames: ${steps.join(', ')}; ` +
        `${minorGcs} young-generation collections while decoding; gc via ${gc.source})`,
    );
    reporter.figure(figure('heap', 'bytes', end, 'heap after warm-up', start), {
      detail: `growth ${growth} B (code ${codeGrowth} B), grew in ${growingSteps}/${SAMPLES} intervals`,
    });
  },
};

if (isMain(import.meta.url)) runAlone(heapBench);
