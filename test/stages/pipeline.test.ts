import { describe, expect, it } from 'vitest';
import type { Packet } from '../../src/packet.js';
import { filterStage, mapStage, passThrough } from '../../src/stages/basic-stages.js';
import { isDrainable, Pipeline, pipeline } from '../../src/stages/pipeline.js';
import type { Emit, Stage } from '../../src/stages/stage.js';
import { Delayer, Dropper, Holder, type Log, pkt, Tagger, text } from './test-stages.js';

function collect(): { out: string[]; emit: Emit } {
  const out: string[] = [];
  return { out, emit: (p: Packet) => out.push(text(p)) };
}

describe('pipeline', () => {
  it('feeds each stage the output of the one before, in order', () => {
    const log: Log = [];
    const p = pipeline(new Tagger('a', 'A', log), new Tagger('b', 'B', log), new Tagger('c', 'C', log));
    const { out, emit } = collect();
    p.process(pkt('1'), emit);
    p.process(pkt('2'), emit);
    expect(out).toEqual(['1ABC', '2ABC']);
    expect(log).toEqual(['a:p:1', 'b:p:1A', 'c:p:1AB', 'a:p:2', 'b:p:2A', 'c:p:2AB']);
  });

  it('hands every stage the same emit function for every packet (the chain is built once)', () => {
    const a = new Tagger('a', 'A');
    const b = new Tagger('b', 'B');
    const p = pipeline(a, b);
    for (let i = 0; i < 50; i++) p.process(pkt(String(i)), i % 2 ? () => {} : () => {});
    expect(a.emitsSeen.size).toBe(1);
    expect(b.emitsSeen.size).toBe(1);
  });

  it('flushes stage i through stages i+1… before flushing those', () => {
    const log: Log = [];
    const p = pipeline(new Holder('h1', log), new Tagger('t', 'T', log), new Holder('h2', log));
    const { out, emit } = collect();
    p.process(pkt('1'), emit);
    p.process(pkt('2'), emit);
    expect(out).toEqual([]);
    p.flush(emit);
    expect(out).toEqual(['1T', '2T']);
    expect(log).toEqual(['h1:p:1', 'h1:p:2', 'h1:flush', 't:p:1', 'h2:p:1T', 't:p:2', 'h2:p:2T', 'h2:flush']);
  });

  it('forwards tick to every time-driven stage in order, its output flowing downstream', () => {
    const log: Log = [];
    const d1 = new Delayer('d1', 10n, log);
    const d2 = new Delayer('d2', 5n, log);
    const p = pipeline(d1, new Tagger('t', 'T', log), d2);
    const { out, emit } = collect();
    p.process(pkt('1', 100n), emit);
    p.tick!(109n, emit);
    expect(out).toEqual([]);
    p.tick!(110n, emit); // d1 releases 1 (due 110); d2 receives 1T with ts 100 → due 105 ≤ 110
    expect(out).toEqual(['1T']);
    expect(log).toEqual(['d1:p:1', 'd1:t:109', 'd2:t:109', 'd1:t:110', 't:p:1', 'd2:p:1T', 'd2:t:110']);
    expect(d1.ticksSeen).toEqual([109n, 110n]);
    expect(d2.ticksSeen).toEqual([109n, 110n]);
  });

  it('has no tick when no stage is time-driven, and one when a nested stage is', () => {
    expect(pipeline(new Tagger('a', 'A'), passThrough()).tick).toBeUndefined();
    const nested = pipeline(new Tagger('a', 'A'), pipeline(passThrough(), new Delayer('d', 0n)));
    expect(typeof nested.tick).toBe('function');
    const { out, emit } = collect();
    nested.process(pkt('1', 7n), emit);
    nested.tick!(7n, emit);
    expect(out).toEqual(['1A']);
  });

  it('counts its own in/out and reports each stage by name, drops keyed by stage and reason', () => {
    const p = pipeline(
      new Dropper('guard', 2),
      new Tagger('tag', '!'),
      filterStage('no-q', (x) => x.data[0] !== 0x71, 'q'),
      new Tagger('tag', '?'),
    );
    const { out, emit } = collect();
    for (const s of ['ab', 'x1', 'q1', 'z', 'cd', 'qq', 'x']) p.process(pkt(s), emit);
    expect(out).toEqual(['ab!?', 'cd!?']);
    expect(p.stats()).toEqual({
      packetsIn: 7,
      packetsOut: 2,
      dropped: { 'guard.short': 2, 'guard.x': 1, 'no-q.q': 2 },
      'guard.packetsIn': 7,
      'guard.packetsOut': 4,
      'tag.packetsIn': 4,
      'tag.packetsOut': 4,
      'no-q.packetsIn': 4,
      'no-q.packetsOut': 2,
      'tag#2.packetsIn': 2,
      'tag#2.packetsOut': 2,
    });
    expect(Object.keys(p.stageStats())).toEqual(['guard', 'tag', 'no-q', 'tag#2']);
    expect(p.stageStats().guard!.dropped).toEqual({ short: 2, x: 1 });
  });

  it('flattens a nested pipeline’s stats under its name', () => {
    const inner = new Pipeline([new Dropper('d', 3)], 'inner');
    const outer = pipeline(inner, passThrough('end'));
    outer.process(pkt('ab'), () => {});
    outer.process(pkt('abc'), () => {});
    const s = outer.stats();
    expect(s.dropped).toEqual({ 'inner.d.short': 1 });
    expect(s['inner.d.packetsIn']).toBe(2);
    expect(s['inner.packetsOut']).toBe(1);
    expect(s['end.packetsOut']).toBe(1);
  });

  it('keeps each call’s sink when the sink re-enters the pipeline', () => {
    const p = pipeline(
      new Tagger('a', 'A'),
      mapStage('twice', (x) => x),
    );
    const outer: string[] = [];
    const inner: string[] = [];
    const dup: Stage = {
      name: 'dup',
      process(x, emit) {
        emit(x);
        emit({ ...x, data: Buffer.concat([x.data, Buffer.from('2')]) });
      },
      stats: () => ({ packetsIn: 0, packetsOut: 0, dropped: {} }),
    };
    const q = pipeline(p, dup);
    let reentered = false;
    q.process(pkt('1'), (x) => {
      outer.push(text(x));
      if (!reentered) {
        reentered = true;
        q.process(pkt('9'), (y) => inner.push(text(y)));
      }
    });
    // The second emit of the outer call must still reach the outer sink after the nested call.
    expect(outer).toEqual(['1A', '1A2']);
    expect(inner).toEqual(['9A', '9A2']);
  });

  it('passes packets straight through when empty', () => {
    const p = pipeline();
    const { out, emit } = collect();
    p.process(pkt('z'), emit);
    p.flush(emit);
    expect(out).toEqual(['z']);
    expect(p.stats()).toMatchObject({ packetsIn: 1, packetsOut: 1, dropped: {} });
  });

  it('needs a drain while any stage inside does, and drains only those', async () => {
    let pending = true;
    let drains = 0;
    const sink = {
      ...passThrough('sink'),
      get needsDrain() {
        return pending;
      },
      async drain() {
        drains++;
        pending = false;
      },
    };
    const p = pipeline(passThrough(), sink);
    expect(isDrainable(p)).toBe(true);
    expect(p.needsDrain).toBe(true);
    await p.drain();
    expect(drains).toBe(1);
    expect(p.needsDrain).toBe(false);
    await p.drain();
    expect(drains).toBe(1);
  });
});

describe('basic stages', () => {
  it('mapStage emits what fn returns and counts nulls as drops', () => {
    const s = mapStage('upper', (x) =>
      x.data.length ? { ...x, data: Buffer.from(text(x).toUpperCase()) } : null,
    );
    const { out, emit } = collect();
    s.process(pkt('ab'), emit);
    s.process(pkt(''), emit);
    expect(out).toEqual(['AB']);
    expect(s.stats()).toEqual({ packetsIn: 2, packetsOut: 1, dropped: { unmapped: 1 } });
  });

  it('filterStage keeps what the predicate accepts and counts the rest', () => {
    const s = filterStage('even', (x) => x.data.length % 2 === 0);
    const { out, emit } = collect();
    for (const t of ['a', 'bb', 'ccc', 'dddd']) s.process(pkt(t), emit);
    expect(out).toEqual(['bb', 'dddd']);
    expect(s.stats()).toEqual({ packetsIn: 4, packetsOut: 2, dropped: { filtered: 2 } });
  });

  it('stats() returns a snapshot, not the live counters', () => {
    const s = filterStage('none', () => false);
    const before = s.stats();
    s.process(pkt('a'), () => {});
    expect(before).toEqual({ packetsIn: 0, packetsOut: 0, dropped: {} });
  });
});
