import { Readable, Writable } from 'node:stream';
import { pipeline as pipeStreams } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Packet } from '../../src/packet.js';
import { RealClock } from '../../src/stages/clock.js';
import { pipeline } from '../../src/stages/pipeline.js';
import type { Stage } from '../../src/stages/stage.js';
import { stageTransform, throughStage } from '../../src/stages/streams.js';
import { Delayer, Dropper, Holder, pkt, ReusingRepeater, Tagger, text } from './test-stages.js';

const MS = 1_000_000n;

async function drainAll(readable: AsyncIterable<Packet>): Promise<string[]> {
  const out: string[] = [];
  for await (const p of readable) out.push(text(p));
  return out;
}

describe('stageTransform', () => {
  it('runs the stage over written packets in order and flushes at the end', async () => {
    const t = stageTransform(pipeline(new Holder('h'), new Tagger('t', '!')));
    const got = drainAll(t);
    t.write(pkt('1'));
    t.write(pkt('2'));
    t.end();
    expect(await got).toEqual(['1!', '2!']);
  });

  it('ticks from packet timestamps in virtual time', async () => {
    const d = new Delayer('d', 10n);
    const out: string[] = [];
    await pipeStreams(
      Readable.from([pkt('a', 100n), pkt('b', 105n), pkt('c', 111n)]),
      stageTransform(d),
      new Writable({
        objectMode: true,
        write(p: Packet, _e, cb) {
          out.push(`${text(p)}@${p.ts}`);
          cb();
        },
      }),
    );
    expect(d.ticksSeen).toEqual([100n, 105n, 111n]);
    expect(out).toEqual(['a@100', 'b@105', 'c@111']);
  });

  it('stops feeding the stage while nobody reads (backpressure), then delivers everything', async () => {
    const repeater = new ReusingRepeater('rep', 2);
    const t = stageTransform(repeater, { highWaterMark: 4 });
    // write() returning false still buffers that packet; it asks the producer to wait.
    let written = 0;
    while (written < 100 && t.write(pkt(`p${written++}`)));
    expect(written).toBeLessThan(10);
    await sleep(20);
    // Nothing reads: the stage saw only what fits the two buffers, not the 100 offered.
    const seen = repeater.stats().packetsIn;
    expect(seen).toBeLessThanOrEqual(4 + 4 + 1);
    // Writing on regardless buffers in the writable side but still does not run the stage.
    for (let i = written; i < 100; i++) t.write(pkt(`p${i}`));
    await sleep(20);
    expect(repeater.stats().packetsIn).toBe(seen);
    t.end();
    const out = await drainAll(t);
    expect(out).toHaveLength(200);
    expect(out.slice(0, 4)).toEqual(['p00', 'p01', 'p10', 'p11']);
    expect(out.at(-1)).toBe('p991');
  });

  it('bounds how far a piped source runs ahead of a slow consumer', async () => {
    let produced = 0;
    let consumed = 0;
    let maxAhead = 0;
    async function* source(): AsyncGenerator<Packet> {
      for (let i = 0; i < 200; i++) {
        produced++;
        maxAhead = Math.max(maxAhead, produced - consumed);
        yield pkt(`${i}`);
      }
    }
    await pipeStreams(
      Readable.from(source(), { highWaterMark: 2 }),
      stageTransform(new Tagger('t', ''), { highWaterMark: 2 }),
      new Writable({
        objectMode: true,
        highWaterMark: 1,
        write(_p: Packet, _e, cb) {
          consumed++;
          setImmediate(cb);
        },
      }),
    );
    expect(consumed).toBe(200);
    // Buffers along the way: 2 (readable) + 2 + 2 (transform) + 1 (writable) + one in flight each.
    expect(maxAhead).toBeLessThanOrEqual(12);
  });

  it('copies emitted packets, since a stage may reuse its output buffer', async () => {
    const copied = stageTransform(new ReusingRepeater('rep', 3));
    copied.end(pkt('a'));
    expect(await drainAll(copied)).toEqual(['a0', 'a1', 'a2']);
    // Without copies, every buffered packet aliases the stage's scratch buffer: what the copy prevents.
    const aliased = stageTransform(new ReusingRepeater('rep', 3), { copy: false });
    aliased.end(pkt('a'));
    expect(await drainAll(aliased)).toEqual(['a2', 'a2', 'a2']);
  });

  it('emits an error when the stage throws (a programmer error)', async () => {
    const broken: Stage = {
      name: 'broken',
      process() {
        throw new Error('misconfigured: set foo');
      },
      stats: () => ({ packetsIn: 0, packetsOut: 0, dropped: {} }),
    };
    await expect(
      pipeStreams(
        Readable.from([pkt('1')]),
        stageTransform(broken),
        new Writable({ objectMode: true, write: (_p, _e, cb) => cb() }),
      ),
    ).rejects.toThrow('misconfigured: set foo');
  });

  it('ticks by timer in real time while no packets are written', async () => {
    const d = new Delayer('d', 10n * MS);
    const clock = new RealClock();
    const t = stageTransform(d, { time: 'real', clock, tickInterval: 2n * MS });
    const out: string[] = [];
    t.on('data', (p: Packet) => out.push(text(p)));
    t.write(pkt('1', clock.now()));
    const deadline = Date.now() + 2000;
    while (out.length === 0 && Date.now() < deadline) await sleep(5);
    expect(out).toEqual(['1']); // released by a timer tick, before the end of input
    t.end();
    await new Promise((r) => t.on('end', r));
    const ticks = d.ticksSeen.length;
    await sleep(20);
    expect(d.ticksSeen.length).toBe(ticks); // the timer stopped at the end
  });
});

describe('throughStage', () => {
  it('yields what the stage emits, then what it flushes', async () => {
    const s = pipeline(new Dropper('d', 2), new Tagger('t', '!'), new Holder('h'));
    const out = await drainAll(throughStage([pkt('ab'), pkt('x'), pkt('cd')], s));
    expect(out).toEqual(['ab!', 'cd!']);
    expect(s.stats().dropped).toEqual({ 'd.short': 1 });
  });

  it('yields copies that stay valid across awaits', async () => {
    const kept: Packet[] = [];
    for await (const p of throughStage([pkt('a'), pkt('b')], new ReusingRepeater('rep', 2))) {
      kept.push(p);
      await sleep(1);
    }
    expect(kept.map(text)).toEqual(['a0', 'a1', 'b0', 'b1']);
  });

  it('pulls from the source only as fast as the consumer takes output', async () => {
    let pulled = 0;
    function* source(): Generator<Packet> {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield pkt(String(i));
      }
    }
    const it = throughStage(source(), new Tagger('t', ''));
    await it.next();
    await it.next();
    expect(pulled).toBe(2);
    await it.return();
    expect(pulled).toBe(2);
  });

  it('closes the source when the consumer stops early', async () => {
    let closed = false;
    async function* source(): AsyncGenerator<Packet> {
      try {
        for (let i = 0; i < 100; i++) yield pkt(String(i));
      } finally {
        closed = true;
      }
    }
    for await (const p of throughStage(source(), new Tagger('t', ''))) {
      if (text(p) === '3') break;
    }
    expect(closed).toBe(true);
  });

  it('ticks in virtual time from timestamps', async () => {
    const d = new Delayer('d', 5n);
    const out: string[] = [];
    for await (const p of throughStage([pkt('a', 10n), pkt('b', 12n), pkt('c', 20n)], d)) out.push(text(p));
    expect(d.ticksSeen).toEqual([10n, 12n, 20n]);
    expect(out).toEqual(['a', 'b', 'c']);
  });

  it('ticks in real time while the source is idle', async () => {
    const d = new Delayer('d', 10n * MS);
    const clock = new RealClock();
    let sourceEnded = false;
    async function* source(): AsyncGenerator<Packet> {
      yield pkt('1', clock.now());
      await sleep(150);
      sourceEnded = true;
    }
    const out: { data: string; sourceEnded: boolean }[] = [];
    for await (const p of throughStage(source(), d, { time: 'real', clock, tickInterval: 2n * MS })) {
      out.push({ data: text(p), sourceEnded });
    }
    expect(out).toEqual([{ data: '1', sourceEnded: false }]);
    expect(d.ticksSeen.length).toBeGreaterThanOrEqual(3);
  });
});
