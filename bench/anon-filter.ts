/**
 * The anonymity layer's host side, each figure beside a baseline measured in the same run:
 *
 * - anon-filter: keep/drop decisions per second on a corpus of a million broadcast replies (10% this
 *   host's), the SID read straight from each frame and looked up in a SessionTable holding 10k or 100k
 *   sessions' current and next SIDs, beside what a naive filter does: cap's Ethernet and IPv4 decoders and
 *   a Map keyed by the SID as 16 hex digits. Goals: ≥ 20 Mpps on one core (a figure whose baseline is the
 *   goal; its detail says how much of a core the process had while timed) and ≥ 30× the baseline. The basic-mode TupleMatcher is measured the same way on TCP/UDP replies,
 *   against cap's decoders and a Map keyed by the tuple as a string. Every operation's keep count is
 *   checked against the corpus's truth.
 * - anon-seal / anon-open: AnonSealer.seal, AnonOpener.open and AnonReceiver.receive end to end, with 64,
 *   512 and 1400 transport bytes, for ChaCha20-Poly1305 on every backend that offers it and AES-256-GCM on
 *   node:crypto, each beside the raw AEAD of the same backend on the same byte counts
 *   (bench/lib/anon-seal-loops.ts). The ratio is the layer's framing efficiency; goal ≥ 0.8. Full runs
 *   time the loops in mirrored order (A B B A, A B C C B A) and each keeps its better run.
 * - anon-prefilter (root): a veth pair between two namespaces; one replays a broadcast load of replies
 *   (73% other hosts' anonymity-layer replies, 25% other hosts' basic-mode UDP, 2% this host's) at a fixed
 *   offered rate, the other captures with LiveCapture and counts the packets per second that reach
 *   JavaScript with no kernel filter, with `ip proto 253`, and with buildPrefilter's expression for the
 *   host's 100 sessions (bench/lib/anon-prefilter-lab.ts). Figures: JS packets/s without a filter beside
 *   the offered rate, with each filter beside that, and the capturing process's CPU seconds per second with
 *   the prefilter beside without. The prefilter phase must deliver only the host's own packets, or the run
 *   throws.
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
import { prefilterMissing, runPrefilterPhases } from './lib/anon-prefilter-lab.js';
import {
  type AnonCase,
  anonCases,
  caseLabel,
  checkRingOpens,
  checkRingReceived,
  openerSetupSeconds,
  openLoop,
  openPrimitiveLoop,
  receiveLoop,
  receiveRing,
  sealedRing,
  sealLoop,
  sealPrimitiveLoop,
  sessionSetupSeconds,
  sink,
  TRANSPORT_SIZES,
} from './lib/anon-seal-loops.js';
import { type Bench, isMain, runAlone } from './lib/bench-context.js';
import { loadCapDecoders } from './lib/cap-decoders.js';
import { figure } from './lib/report.js';
import { type LoopResult, timeAbba, timeMirrored } from './lib/timed-loop.js';

/** Frames in the filter corpora: the issue's million, or a tenth for smoke runs. */
const CORPUS_FRAMES = { full: 1_000_000, quick: 100_000 };
/** Chunks per corpus: one timed operation decides one chunk. */
const CHUNKS = 16;
const OWN_SHARE = 0.1;
const SESSION_COUNTS = [10_000, 100_000];
const FILTER_GOAL_MPPS = 20;
const FILTER_GOAL_RATIO = 30;

/** Packets per timed seal operation (distinct buffers), and in the rings opened per operation. */
const SEAL_BATCH = 256;
const OPEN_RING = 1024;
const FRAMING_GOAL = 0.8;

/** The broadcast load of anon-prefilter: offered rate, seconds per filter, the host's share and sessions. */
const PREFILTER_LOAD = { pps: 100_000, seconds: { full: 5, quick: 1.5 }, ownShare: 0.02, basicShare: 0.25 };
const PREFILTER_SESSIONS = 100;

/** "10k", "100k". */
function thousands(n: number): string {
  return `${n / 1000}k`;
}

/**
 * Runs `time` and says how much of one core this process had meanwhile (CPU time over wall-clock time): a
 * figure taken while other processes held the core is low for that reason, not for the code's.
 */
function withCoreShare<T>(time: () => T): { result: T; coreShare: number } {
  const cpu = process.cpuUsage();
  const began = performance.now();
  const result = time();
  const used = process.cpuUsage(cpu);
  return { result, coreShare: (used.user + used.system) / 1000 / (performance.now() - began) };
}

function spread(...results: LoopResult[]): string {
  return `±${results.map((r) => r.rme.toFixed(1)).join('% / ±')}%`;
}

function goalWord(ratio: number): string {
  return ratio >= FRAMING_GOAL ? 'met' : 'MISSED';
}

function describeCases(cases: AnonCase[]): string {
  return cases.map((c) => `${c.aead}/${c.backend}`).join(', ');
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
      const { result, coreShare } = withCoreShare(() =>
        timeAbba(
          sidFilterLoop(corpus, table, CHUNKS),
          sidBaselineLoop(corpus, cap, map, CHUNKS),
          [`SessionTable ${thousands(n)}`, `cap + Map ${thousands(n)}`],
          quick,
        ),
      );
      const [ours, theirs] = result;
      const mpps = (ours.hz * perOp) / 1e6;
      const baseMpps = (theirs.hz * perOp) / 1e6;
      const label = `sid/${thousands(n)}`;
      const ratio = mpps / baseMpps;
      const share = `the process had ${Math.round(coreShare * 100)}% of a core while timed`;
      reporter.figure(figure(`anon-filter/${label}`, 'Mpps', mpps, 'cap decoders + Map<hex SID>', baseMpps), {
        detail: `${2 * n} SIDs in the table, ${spread(ours, theirs)}; goal ≥ ${FILTER_GOAL_RATIO}×: ${ratio >= FILTER_GOAL_RATIO ? 'met' : 'MISSED'}`,
      });
      reporter.figure(
        figure(
          `anon-filter-goal/${label}`,
          'Mpps',
          mpps,
          `goal ≥ ${FILTER_GOAL_MPPS} Mpps, one core`,
          FILTER_GOAL_MPPS,
        ),
        { detail: `${mpps >= FILTER_GOAL_MPPS ? 'met' : 'MISSED'}; ${share}` },
      );
      reporter.note(
        `anon-filter/${label}: ${mpps.toFixed(1)} Mpps (goal ≥ ${FILTER_GOAL_MPPS}: ${mpps >= FILTER_GOAL_MPPS ? 'met' : 'missed'}), ` +
          `${ratio.toFixed(1)}× the baseline (goal ≥ ${FILTER_GOAL_RATIO}×: ${ratio >= FILTER_GOAL_RATIO ? 'met' : 'missed'}); ${share}`,
      );
    }

    for (const n of SESSION_COUNTS) {
      const tuples = hostTuples(n);
      const frames = tupleCorpus(tuples, { count, ownShare: OWN_SHARE });
      const [ours, theirs] = timeAbba(
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

export const anonSealBench: Bench = {
  name: 'anon-seal',
  description:
    'AnonSealer.seal, chacha20-poly1305 (every backend) and aes-gcm (node) × 64/512/1400 B, vs. raw AEAD',
  async run({ quick, reporter }) {
    const cases = anonCases();
    reporter.note(
      `anon-seal: ${describeCases(cases)} × transport sizes ${TRANSPORT_SIZES.join(', ')}; ${SEAL_BATCH} packets per timed operation`,
    );
    let missed = 0;
    for (const c of cases)
      for (const size of TRANSPORT_SIZES) {
        const label = caseLabel(c, size);
        const [seal, raw] = timeAbba(
          sealLoop(c, size, SEAL_BATCH),
          sealPrimitiveLoop(c, size, SEAL_BATCH),
          [`AnonSealer ${label}`, `${c.backend} AEAD seal ${size}`],
          quick,
        );
        const ratio = seal.hz / raw.hz;
        if (ratio < FRAMING_GOAL) missed++;
        reporter.figure(
          figure(
            `anon-seal/${label}`,
            'packets/s',
            seal.hz * SEAL_BATCH,
            `${c.backend} AEAD seal`,
            raw.hz * SEAL_BATCH,
          ),
          {
            detail: `${quick ? 'one run each' : 'best of 2 (ABBA)'}, ${spread(seal, raw)}; goal ≥ ${FRAMING_GOAL}: ${goalWord(ratio)}`,
          },
        );
      }
    if (!Number.isFinite(sink.bytes)) throw new Error('anon-seal: the length sums overflowed');
    reporter.note(
      `anon-seal: framing efficiency goal ≥ ${FRAMING_GOAL}: ${missed === 0 ? 'met everywhere' : `missed in ${missed} of ${cases.length * TRANSPORT_SIZES.length} cases`}`,
    );
  },
};

export const anonOpenBench: Bench = {
  name: 'anon-open',
  description: 'AnonOpener.open and AnonReceiver.receive end to end, same cases, vs. raw AEAD open',
  async run({ quick, reporter }) {
    const cases = anonCases();
    reporter.note(
      `anon-open: ${describeCases(cases)} × transport sizes ${TRANSPORT_SIZES.join(', ')}; rings of ${OPEN_RING} packets, ` +
        'a fresh opener / client session per pass (its cost counted, shown per figure)',
    );
    let missed = 0;
    for (const c of cases)
      for (const size of TRANSPORT_SIZES) {
        const label = caseLabel(c, size);
        const sealed = sealedRing(c, size, OPEN_RING);
        checkRingOpens(c, sealed);
        const received = receiveRing(c, size, OPEN_RING);
        checkRingReceived(c, received);
        const [open, raw, receive] = timeMirrored(
          [
            { name: `AnonOpener ${label}`, fn: openLoop(c, size, sealed.packets) },
            { name: `${c.backend} AEAD open ${size}`, fn: openPrimitiveLoop(c, size, sealed.packets) },
            { name: `AnonReceiver ${label}`, fn: receiveLoop(c, size, received) },
          ],
          quick,
        );
        const baseline = `${c.backend} AEAD open`;
        const basePps = raw!.hz * OPEN_RING;
        for (const [name, r, setup] of [
          [
            'anon-open',
            open!,
            `new opener per ${OPEN_RING} packets: ${(openerSetupSeconds(c) * 1e6).toFixed(1)} µs`,
          ],
          [
            'anon-receive',
            receive!,
            `new client session per ${OPEN_RING} packets: ${(sessionSetupSeconds(c) * 1e6).toFixed(1)} µs`,
          ],
        ] as const) {
          const ratio = r.hz / raw!.hz;
          if (ratio < FRAMING_GOAL) missed++;
          reporter.figure(figure(`${name}/${label}`, 'packets/s', r.hz * OPEN_RING, baseline, basePps), {
            detail: `${quick ? 'one run each' : 'best of 2 (mirrored)'}, ${spread(r, raw!)}, ${setup}; goal ≥ ${FRAMING_GOAL}: ${goalWord(ratio)}`,
          });
        }
      }
    if (!Number.isFinite(sink.bytes)) throw new Error('anon-open: the length sums overflowed');
    reporter.note(
      `anon-open: framing efficiency goal ≥ ${FRAMING_GOAL}: ${missed === 0 ? 'met everywhere' : `missed in ${missed} of ${2 * cases.length * TRANSPORT_SIZES.length} figures`}`,
    );
  },
};

export const anonPrefilterBench: Bench = {
  name: 'anon-prefilter',
  description:
    'packets/s reaching JS from a veth under a broadcast load: no filter, ip proto 253, the prefilter',
  async run({ quick, reporter }) {
    const why = prefilterMissing();
    if (why) {
      reporter.note(`anon-prefilter: skipped, ${why}`);
      return;
    }
    const seconds = quick ? PREFILTER_LOAD.seconds.quick : PREFILTER_LOAD.seconds.full;
    const run = await runPrefilterPhases(
      {
        sessions: hostSessions(PREFILTER_SESSIONS, 0x9f1),
        offeredPps: PREFILTER_LOAD.pps,
        seconds,
        ownShare: PREFILTER_LOAD.ownShare,
        basicShare: PREFILTER_LOAD.basicShare,
      },
      (prefilter) => [
        { label: 'none', filter: '' },
        { label: 'ip-proto', filter: 'ip proto 253' },
        { label: 'sids', filter: prefilter.expression },
      ],
    );
    const p = run.prefilter;
    reporter.note(
      `anon-prefilter: ${PREFILTER_SESSIONS} sessions, ${2 * PREFILTER_SESSIONS} SIDs → prefilter ${p.exact ? 'exact' : `fallback ${p.fallback}`}, ` +
        `~${p.estimatedInstructions} BPF instructions; load ${(run.ownShare * 100).toFixed(1)}% the host's; ${seconds} s per filter`,
    );
    type Phase = (typeof run.phases)[number];
    const [none, proto, sids] = run.phases as [Phase, Phase, Phase];
    // Per second of load: the capture was open a little longer (its opening, the drain), idle meanwhile.
    const reached = (r: Phase) => r.count.packets / r.sent.seconds;
    const offered = (r: Phase) => r.sent.sent / r.sent.seconds;
    const cpu = (r: Phase) => r.count.cpuSeconds / r.sent.seconds;
    for (const r of run.phases) {
      reporter.note(
        `anon-prefilter/${r.label}: offered ${Math.round(offered(r))} frames/s (${r.sent.failed} send failures), ` +
          `${r.arrived} arrived at the interface, ${r.count.packets} reached JS (${r.count.own} own, ` +
          `${r.count.othersAnon} others' anon, ${r.count.other} other), capture CPU ${cpu(r).toFixed(3)} s/s`,
      );
      if (r.count.packets === 0)
        throw new Error(`anon-prefilter/${r.label}: nothing reached JavaScript; the lab is broken`);
    }
    if (sids.count.othersAnon + sids.count.other > 0)
      throw new Error(
        `anon-prefilter: the prefilter let ${sids.count.othersAnon} other hosts' anon packets and ${sids.count.other} others through`,
      );
    if (proto.count.other > 0)
      throw new Error(`anon-prefilter: "ip proto 253" let ${proto.count.other} others through`);
    reporter.figure(
      figure('anon-prefilter/none', 'packets/s', reached(none), 'offered broadcast load', offered(none)),
      {
        detail: `capture CPU ${cpu(none).toFixed(3)} s/s, ${none.count.own} own delivered`,
      },
    );
    for (const r of [proto, sids])
      reporter.figure(
        figure(`anon-prefilter/${r.label}`, 'packets/s', reached(r), 'no kernel filter', reached(none)),
        {
          detail: `offered ${Math.round(offered(r))}/s, capture CPU ${cpu(r).toFixed(3)} s/s, ${r.count.own} own delivered`,
        },
      );
    reporter.figure(
      figure(
        'anon-prefilter/sids/cpu',
        'CPU s/s',
        cpu(sids),
        'capture process without a kernel filter',
        cpu(none),
      ),
      { detail: 'CPU seconds per second of load spent by the capturing process' },
    );
  },
};

export const anonBenches = [anonFilterBench, anonSealBench, anonOpenBench, anonPrefilterBench];

if (isMain(import.meta.url)) runAlone(...anonBenches);
