/**
 * The anonymity layer's host side, each figure beside a baseline measured in the same run:
 *
 * - anon-filter: keep/drop decisions per second on a corpus of a million broadcast replies (10% this
 *   host's), the SID read straight from each frame and looked up in a SessionTable holding 10k or 100k
 *   sessions' current and next SIDs, beside what a naive filter does: cap's Ethernet and IPv4 decoders and
 *   a Map keyed by the SID as 16 hex digits. Goals: ≥ 20 Mpps on one core (a figure whose baseline is the
 *   goal) and ≥ 30× the baseline. The basic-mode TupleMatcher is measured the same way on TCP/UDP replies,
 *   against cap's decoders and a Map keyed by the tuple as a string. Every operation's keep count is
 *   checked against the corpus's truth.
 */

import {
  framesPerOperation,
  sessionTable,
  sidBaselineLoop,
  sidFilterLoop,
  sidMap,
  tupleBaselineLoop,
  tupleFilterLoop,
  tupleMap,
  tupleMatcher,
} from './lib/anon-filter-loops.js';
import { assignSids, hostSessions, hostTuples, sidCorpus, tupleCorpus } from './lib/anon-frames.js';
import { type Bench, isMain, runBenches } from './lib/bench-context.js';
import { loadCapDecoders } from './lib/cap-decoders.js';
import { figure } from './lib/report.js';
import { type LoopResult, timeLoops } from './lib/timed-loop.js';

/** Frames in the filter corpora: the million, or a tenth for smoke runs. */
const CORPUS_FRAMES = { full: 1_000_000, quick: 100_000 };
/** Chunks per corpus: one timed operation decides one chunk. */
const CHUNKS = 16;
const OWN_SHARE = 0.1;
const SESSION_COUNTS = [10_000, 100_000];
const FILTER_GOAL_MPPS = 20;
const FILTER_GOAL_RATIO = 30;

/** "10k", "100k". */
function thousands(n: number): string {
  return `${n / 1000}k`;
}

/** Times the pair in the order a, b, b, a and keeps each side's better run (load drift hits both alike). */
function abba(
  a: () => void,
  b: () => void,
  names: [string, string],
  quick: boolean,
): [LoopResult, LoopResult] {
  const [a1, b1, b2, a2] = timeLoops(
    [
      { name: names[0], fn: a },
      { name: names[1], fn: b },
      { name: names[1], fn: b },
      { name: names[0], fn: a },
    ],
    quick,
  );
  return [a1!.hz >= a2!.hz ? a1! : a2!, b1!.hz >= b2!.hz ? b1! : b2!];
}

export const anonFilterBench: Bench = {
  name: 'anon-filter',
  description: 'SID filter (SessionTable) and basic-mode TupleMatcher decisions vs. cap decoders + Map',
  async run({ quick, reporter }) {
    const loaded = loadCapDecoders();
    if (!('decoders' in loaded)) {
      reporter.note(`anon-filter: skipped, its baseline needs cap: ${loaded.reason}`);
      return;
    }
    const cap = loaded.decoders;
    const count = quick ? CORPUS_FRAMES.quick : CORPUS_FRAMES.full;
    const began = performance.now();
    const corpus = sidCorpus({ count, ownShare: OWN_SHARE });
    reporter.note(
      `anon-filter: ${count} protocol-253 frames (${corpus.ownCount} the host's, ${(corpus.bytes.length / 1e6).toFixed(0)} MB) ` +
        `built in ${((performance.now() - began) / 1000).toFixed(1)} s; ${CHUNKS} chunks, one per timed operation`,
    );
    const perOp = framesPerOperation(corpus, CHUNKS);
    for (const n of SESSION_COUNTS) {
      const sessions = hostSessions(n);
      assignSids(corpus, sessions);
      const table = sessionTable(sessions);
      const map = sidMap(sessions);
      const [ours, theirs] = abba(
        sidFilterLoop(corpus, table, CHUNKS),
        sidBaselineLoop(corpus, cap, map, CHUNKS),
        [`SessionTable ${thousands(n)}`, `cap + Map ${thousands(n)}`],
        quick,
      );
      const mpps = (ours.hz * perOp) / 1e6;
      const baseMpps = (theirs.hz * perOp) / 1e6;
      const label = `sid/${thousands(n)}`;
      const ratio = mpps / baseMpps;
      reporter.figure(figure(`anon-filter/${label}`, 'Mpps', mpps, 'cap decoders + Map<hex SID>', baseMpps), {
        detail: `${2 * n} SIDs in the table, ±${ours.rme.toFixed(1)}% / ±${theirs.rme.toFixed(1)}%; goal ≥ ${FILTER_GOAL_RATIO}×: ${ratio >= FILTER_GOAL_RATIO ? 'met' : 'MISSED'}`,
      });
      reporter.figure(
        figure(
          `anon-filter-goal/${label}`,
          'Mpps',
          mpps,
          `goal ≥ ${FILTER_GOAL_MPPS} Mpps, one core`,
          FILTER_GOAL_MPPS,
        ),
        { detail: mpps >= FILTER_GOAL_MPPS ? 'met' : 'MISSED' },
      );
      reporter.note(
        `anon-filter/${label}: ${mpps.toFixed(1)} Mpps (goal ≥ ${FILTER_GOAL_MPPS}: ${mpps >= FILTER_GOAL_MPPS ? 'met' : 'missed'}), ` +
          `${ratio.toFixed(1)}× the baseline (goal ≥ ${FILTER_GOAL_RATIO}×: ${ratio >= FILTER_GOAL_RATIO ? 'met' : 'missed'})`,
      );
    }

    for (const n of SESSION_COUNTS) {
      const tuples = hostTuples(n);
      const frames = tupleCorpus(tuples, { count, ownShare: OWN_SHARE });
      const [ours, theirs] = abba(
        tupleFilterLoop(frames, tupleMatcher(tuples), CHUNKS),
        tupleBaselineLoop(frames, cap, tupleMap(tuples), CHUNKS),
        [`TupleMatcher ${thousands(n)}`, `cap + Map ${thousands(n)}`],
        quick,
      );
      const tuplePerOp = framesPerOperation(frames, CHUNKS);
      reporter.figure(
        figure(
          `anon-filter/tuple/${thousands(n)}`,
          'Mpps',
          (ours.hz * tuplePerOp) / 1e6,
          'cap decoders + Map<tuple string>',
          (theirs.hz * tuplePerOp) / 1e6,
        ),
        {
          detail: `${n} tuples, ${frames.ownCount} own of ${count}, ±${ours.rme.toFixed(1)}% / ±${theirs.rme.toFixed(1)}%`,
        },
      );
    }
  },
};

export const anonBenches = [anonFilterBench];

if (isMain(import.meta.url))
  runBenches(anonBenches, process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
