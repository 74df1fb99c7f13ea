/**
 * A stage as the two streaming shapes Node programs use: an object-mode Transform and an async
 * generator over an async iterable.
 */
import { Transform } from 'node:stream';
import { clonePacket, type Packet } from '../packet.js';
import type { Clock } from './clock.js';
import { Ticker, type TimeMode, timeSetup } from './run.js';
import type { Emit, Stage } from './stage.js';

export interface StageStreamOptions {
  /** As for runStage: 'virtual' (default) ticks from packet timestamps, 'real' also by timer. */
  time?: TimeMode;
  clock?: Clock;
  /** As for runStage: least clock advance between ticks, ns. */
  tickInterval?: bigint;
  /**
   * Copy each emitted packet (default true). Stages emit borrowed packets (valid for the emit call
   * only, see Packet), and both adapters hand packets on after that call has returned, so only turn
   * this off for a stage whose emitted packets own their bytes.
   */
  copy?: boolean;
}

export interface StageTransformOptions extends StageStreamOptions {
  /** Packets buffered on each side before backpressure applies (default 16). */
  highWaterMark?: number;
}

/**
 * An object-mode Transform that runs `stage` over the Packets written to it and pushes what it emits.
 * Backpressure is Node's: while the readable side is full, the write callback is held, so a producer
 * that respects `write()`'s return value (or pipes) stops feeding the stage. End of input flushes the
 * stage. In real time a timer ticks the stage between packets until the stream ends or is destroyed.
 */
export function stageTransform(stage: Stage, options: StageTransformOptions = {}): Transform {
  const { time, clock, virtual, interval } = timeSetup(options);
  const copy = options.copy ?? true;
  const highWaterMark = options.highWaterMark ?? 16;
  let timer: NodeJS.Timeout | undefined;
  const stopTimer = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };

  const transform = new Transform({
    objectMode: true,
    readableHighWaterMark: highWaterMark,
    writableHighWaterMark: highWaterMark,
    transform(pkt: Packet, _encoding, callback) {
      try {
        virtual?.advanceTo(pkt.ts);
        ticker.maybeTick(push);
        stage.process(pkt, push);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback();
    },
    flush(callback) {
      stopTimer();
      try {
        stage.flush?.(push);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback();
    },
    destroy(err, callback) {
      stopTimer();
      callback(err);
    },
  });
  const push: Emit = copy ? (pkt) => transform.push(clonePacket(pkt)) : (pkt) => transform.push(pkt);
  const ticker = new Ticker(stage, clock, interval);
  if (time === 'real' && stage.tick) {
    timer = setInterval(() => ticker.maybeTick(push), Math.max(1, Number(interval / 1_000_000n)));
    timer.unref();
  }
  return transform;
}

const TIMED_OUT = Symbol('timed out');

/**
 * Runs `stage` over `source` and yields what it emits, then what it emits when flushed. Packets are
 * pulled from the source only as fast as the consumer takes the output. Yielded packets are copies
 * (unless `copy: false`), so the consumer may keep them across awaits. In real time the stage is also
 * ticked while the source is idle.
 */
export async function* throughStage(
  source: AsyncIterable<Packet> | Iterable<Packet>,
  stage: Stage,
  options: StageStreamOptions = {},
): AsyncGenerator<Packet, void, undefined> {
  const { time, clock, virtual, interval } = timeSetup(options);
  const copy = options.copy ?? true;
  const pending: Packet[] = [];
  const collect: Emit = copy ? (pkt) => pending.push(clonePacket(pkt)) : (pkt) => pending.push(pkt);
  const ticker = new Ticker(stage, clock, interval);
  const idleTicks = time === 'real' && stage.tick !== undefined;
  const idleMs = Math.max(1, Number(interval / 1_000_000n));
  const it: AsyncIterator<Packet> | Iterator<Packet> =
    Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  let done = false;
  let next: Promise<IteratorResult<Packet>> | IteratorResult<Packet> | null = null;
  try {
    while (true) {
      next ??= it.next();
      let r: IteratorResult<Packet> | typeof TIMED_OUT;
      if (idleTicks) {
        let timeout: NodeJS.Timeout | undefined;
        const idle = new Promise<typeof TIMED_OUT>((resolve) => {
          timeout = setTimeout(resolve, idleMs, TIMED_OUT);
        });
        r = await Promise.race([next, idle]);
        clearTimeout(timeout);
      } else r = await next;
      if (r === TIMED_OUT) {
        ticker.maybeTick(collect);
      } else {
        next = null;
        if (r.done) {
          done = true;
          break;
        }
        virtual?.advanceTo(r.value.ts);
        ticker.maybeTick(collect);
        stage.process(r.value, collect);
      }
      for (let i = 0; i < pending.length; i++) yield pending[i]!;
      pending.length = 0;
    }
    stage.flush?.(collect);
    for (let i = 0; i < pending.length; i++) yield pending[i]!;
    pending.length = 0;
  } finally {
    if (!done && it.return) {
      // With a next() still pending on an idle source, an async generator would run return() only
      // after it: ask the source to stop without waiting.
      if (next !== null) Promise.resolve(it.return()).catch(() => {});
      else await it.return();
    }
  }
}
