/**
 * decode: frames per second through PacketParser.parse reading every header field, beside cap's
 * decoders doing the same on the same frames. Each timed operation decodes the whole corpus, so the
 * harness's per-call cost is spread over a thousand frames and does not blur the ratio.
 */
import { PacketParser } from '../src/codec/parser.js';
import { type Bench, isMain, runAlone } from './lib/bench-context.js';
import { loadCapDecoders } from './lib/cap-decoders.js';
import { buildCorpus } from './lib/corpus.js';
import { checkDecodersAgree } from './lib/decoder-agreement.js';
import { readFieldsCap, readFieldsPktveil } from './lib/field-readers.js';
import { figure } from './lib/report.js';
import { timeLoops } from './lib/timed-loop.js';

const CORPUS_FRAMES = 1024;

/** Where every timed loop leaves its sums, so no read is dead code; printed nowhere, checked once. */
let sink = 0;

export const decodeBench: Bench = {
  name: 'decode',
  description: `Ethernet/IPv4/TCP|UDP frames decoded with every header field read, vs. cap's decoders`,
  async run({ quick, reporter }) {
    const corpus = buildCorpus(CORPUS_FRAMES);
    const frames = corpus.frames;
    const parser = new PacketParser();
    const loaded = loadCapDecoders();
    const cap = 'decoders' in loaded ? loaded.decoders : null;
    checkDecodersAgree(parser, frames, cap);
    reporter.note(
      `decode: ${frames.length} frames (${corpus.tcp} TCP, ${corpus.udp} UDP, mean ${Math.round(corpus.bytes / frames.length)} bytes), ` +
        `pktveil${cap ? ' and cap agree on every field' : ' decodes every frame'}`,
    );

    const pktveil = {
      name: 'pktveil PacketParser',
      fn: () => {
        let s = 0;
        for (let i = 0; i < frames.length; i++) s += readFieldsPktveil(parser, frames[i]!);
        sink += s;
      },
    };
    if (!cap) {
      const [ours] = timeLoops([pktveil], quick);
      reporter.note(
        `decode: baseline skipped, ${(loaded as { reason: string }).reason}; pktveil alone: ` +
          `${Math.round(ours!.hz * frames.length)} frames/s (no figure emitted without its baseline)`,
      );
      return;
    }
    const baseline = {
      name: 'cap decoders',
      fn: () => {
        let s = 0;
        for (let i = 0; i < frames.length; i++) s += readFieldsCap(cap, frames[i]!);
        sink += s;
      },
    };
    const [ours, theirs] = timeLoops([pktveil, baseline], quick);
    if (!Number.isFinite(sink))
      throw new Error('decode: the field sums overflowed; the loops did not read numbers');
    reporter.figure(
      figure('decode', 'frames/s', ours!.hz * frames.length, 'cap decoders', theirs!.hz * frames.length),
      {
        detail: `±${ours!.rme.toFixed(1)}% / ±${theirs!.rme.toFixed(1)}%, ${ours!.samples}/${theirs!.samples} samples`,
      },
    );
  },
};

if (isMain(import.meta.url)) runAlone(decodeBench);
