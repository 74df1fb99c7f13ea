import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Packet } from '../../src/packet.js';
import { passThrough } from '../../src/stages/basic-stages.js';
import { RealClock, VirtualClock } from '../../src/stages/clock.js';
import { pipeline } from '../../src/stages/pipeline.js';
import { runStage } from '../../src/stages/run.js';
import type { Stage } from '../../src/stages/stage.js';
import { Delayer, Dropper, Holder, type Log, pkt, Tagger, text } from './test-stages.js';

const MS = 1_000_000n;

async function* slowly(packets: Packet[], gapMs: number): AsyncGenerator<Packet> {
  for (const p of packets) {
    await sleep(gapMs);
    yield p;
  }
}

describe('runStage in virtual time', () => {
  it('ticks at each packet’s timestamp before processing it, then flushes', async () => {
    const log: Log = [];
    const d = new Delayer('d', 10n * MS, log);
    const out: string[] = [];
    const src = [pkt('1', 100n * MS), pkt('2', 105n * MS), pkt('3', 120n * MS), pkt('4', 121n * MS)];
    const r = await runStage(src, d, (p) => out.push(`${text(p)}@${p.ts / MS}`));
    expect(log).toEqual([
      `d:t:${100n * MS}`,
      'd:p:1',
      `d:t:${105n * MS}`,
      'd:p:2',
      `d:t:${120n * MS}`, // releases 1 (due 110) and 2 (due 115)
      'd:p:3',
      `d:t:${121n * MS}`,
      'd:p:4',
    ]);
    expect(out).toEqual(['1@100', '2@105', '3@120', '4@121']); // 3 and 4 come from flush
    expect(r).toMatchObject({ packetsIn: 4, packetsOut: 4, ticks: 4, aborted: false });
    expect(r.clock.now()).toBe(121n * MS);
  });

  it('ticks only when the clock has moved tickInterval since the last tick', async () => {
    const d = new Delayer('d', 0n);
    const ts = [0n, 3n, 9n, 10n, 12n, 25n, 26n].map((t) => 1000n + t * MS);
    await runStage(
      ts.map((t, i) => pkt(String(i), t)),
      d,
      () => {},
      { tickInterval: 10n * MS },
    );
    expect(d.ticksSeen).toEqual([1000n, 1000n + 10n * MS, 1000n + 25n * MS]);
  });

  it('never moves time backwards on out-of-order timestamps', async () => {
    const d = new Delayer('d', 0n);
    const clock = new VirtualClock();
    await runStage([pkt('a', 50n), pkt('b', 40n), pkt('c', 60n)], d, () => {}, { clock });
    expect(d.ticksSeen).toEqual([50n, 50n, 60n]);
    expect(clock.backwardSteps).toBe(1);
  });

  it('does not tick a stage without tick(), and counts what passes', async () => {
    const s = pipeline(new Dropper('drop', 2), new Tagger('t', '!'));
    expect(s.tick).toBeUndefined();
    const out: string[] = [];
    const r = await runStage([pkt('ab'), pkt('x'), pkt('cd')], s, (p) => out.push(text(p)));
    expect(out).toEqual(['ab!', 'cd!']);
    expect(r).toMatchObject({ packetsIn: 3, packetsOut: 2, ticks: 0 });
    expect(s.stats().dropped).toEqual({ 'drop.short': 1 });
  });

  it('skips the flush when asked', async () => {
    const h = new Holder('h');
    const out: string[] = [];
    await runStage([pkt('1')], h, (p) => out.push(text(p)), { flush: false });
    expect(out).toEqual([]);
  });

  it('stops an idle source on abort, still flushing the stage', async () => {
    let returned = false;
    async function* idleAfterTwo(): AsyncGenerator<Packet> {
      try {
        yield pkt('1');
        yield pkt('2');
        await new Promise(() => {}); // a live source with nothing more to say
      } finally {
        returned = true;
      }
    }
    const h = new Holder('h');
    const out: string[] = [];
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const started = Date.now();
    const r = await runStage(idleAfterTwo(), h, (p) => out.push(text(p)), { signal: ac.signal });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r).toMatchObject({ aborted: true, packetsIn: 2, packetsOut: 2 });
    expect(out).toEqual(['1', '2']);
    // The generator is stuck in an await, so its finally cannot run; runStage must not wait for it.
    expect(returned).toBe(false);
  });

  it('awaits a drain when the stage needs one, before reading on', async () => {
    const events: string[] = [];
    let needs = false;
    const sink: Stage & { needsDrain: boolean; drain(): Promise<void> } = {
      name: 'sink',
      process(p, emit) {
        events.push(`p${text(p)}`);
        needs = text(p) === '2';
        emit(p);
      },
      get needsDrain() {
        return needs;
      },
      async drain() {
        events.push('drain-start');
        await sleep(20);
        needs = false;
        events.push('drain-end');
      },
      stats: () => ({ packetsIn: 0, packetsOut: 0, dropped: {} }),
    };
    await runStage(
      ['1', '2', '3'].map((t) => pkt(t)),
      pipeline(passThrough(), sink),
      () => {},
    );
    expect(events).toEqual(['p1', 'p2', 'drain-start', 'drain-end', 'p3']);
  });

  it('refuses a non-virtual clock in virtual time and a zero interval in real time', async () => {
    await expect(runStage([], passThrough(), () => {}, { clock: new RealClock() })).rejects.toThrow(
      "time: 'virtual' needs a VirtualClock",
    );
    await expect(runStage([], passThrough(), () => {}, { time: 'real', tickInterval: 0n })).rejects.toThrow(
      'tickInterval > 0',
    );
  });
});

describe('runStage in real time', () => {
  it('ticks the stage by timer while the source is idle, with wall-clock times', async () => {
    const d = new Delayer('d', 20n * MS);
    const out: { data: string; at: bigint; sourceEnded: boolean }[] = [];
    const clock = new RealClock();
    const started = clock.now();
    let sourceEnded = false;
    // One packet stamped now, then 120 ms of silence, then the end.
    async function* src(): AsyncGenerator<Packet> {
      yield pkt('1', clock.now());
      await sleep(120);
      sourceEnded = true;
    }
    const r = await runStage(src(), d, (p) => out.push({ data: text(p), at: clock.now(), sourceEnded }), {
      time: 'real',
      clock,
      tickInterval: 5n * MS,
    });
    const ended = clock.now();
    // The packet left on a timer tick once due (20 ms after it came), not at the flush after the silence.
    expect(out).toHaveLength(1);
    expect(out[0]!.sourceEnded).toBe(false);
    expect(out[0]!.at - started >= 20n * MS).toBe(true);
    expect(r.ticks).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < d.ticksSeen.length; i++) {
      expect(d.ticksSeen[i]! - d.ticksSeen[i - 1]! >= 5n * MS).toBe(true);
    }
    expect(d.ticksSeen[0]! >= started && d.ticksSeen.at(-1)! <= ended).toBe(true);
  });

  it('also ticks before packets when they arrive faster than the timer runs', async () => {
    const d = new Delayer('d', 0n);
    const clock = new RealClock();
    const packets = Array.from({ length: 5 }, (_, i) => pkt(String(i)));
    const out: string[] = [];
    await runStage(slowly(packets, 15), d, (p) => out.push(text(p)), {
      time: 'real',
      clock,
      tickInterval: 10n * MS,
    });
    expect(out).toEqual(['0', '1', '2', '3', '4']);
    expect(d.ticksSeen.length).toBeGreaterThanOrEqual(5);
  });
});
