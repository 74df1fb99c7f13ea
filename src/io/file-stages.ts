/**
 * Capture files as pipeline ends. A source is the async iterable `readCapture(…)` itself; the sink is
 * a Stage that writes every packet to a CaptureWriter and passes it on.
 */
import type { Packet } from '../packet.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import type { CaptureWriter } from './batched-record-writer.js';

export interface CaptureSinkStageOptions {
  name?: string;
}

/**
 * Writes each packet to `writer` (the writer copies the bytes, so borrowed packets are fine) and emits
 * it unchanged. A packet the file cannot hold is not written and not passed on, counted by reason:
 * `dropped['link-type']` (pcap has one link type; a pcapng writer with fixed interfaces has theirs),
 * `dropped.unwritable` (a timestamp or interface the format cannot express).
 *
 * `process` never waits; the caller keeps memory bounded by checking `needsDrain` after handing over
 * packets and awaiting `drain()` when it is true:
 *
 * ```ts
 * for await (const pkt of readCapture(input)) {
 *   stage.process(pkt, (out) => sink.process(out, () => {}));
 *   if (sink.needsDrain) await sink.drain();
 * }
 * stage.flush?.((out) => sink.process(out, () => {}));
 * await sink.close();
 * ```
 */
export class CaptureSinkStage implements Stage {
  readonly name: string;
  private readonly counters: StageStats = { ...emptyStats(), packetsWritten: 0, bytesWritten: 0 };

  constructor(
    readonly writer: CaptureWriter,
    options: CaptureSinkStageOptions = {},
  ) {
    this.name = options.name ?? `${writer.format}-sink`;
  }

  process(pkt: Packet, emit: Emit): void {
    this.counters.packetsIn++;
    if (!this.writer.acceptsLink(pkt.link)) {
      countDrop(this.counters, 'link-type');
      return;
    }
    try {
      this.writer.write(pkt);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err; // a failed sink, not a bad packet
      countDrop(this.counters, 'unwritable');
      return;
    }
    this.counters.packetsOut++;
    emit(pkt);
  }

  /** End of input: hands the last partial batch to the sink (close() also ends it). */
  flush(_emit: Emit): void {
    this.writer.flush();
  }

  /** True while the sink wants the caller to wait (see the class comment). */
  get needsDrain(): boolean {
    return this.writer.needsDrain;
  }

  drain(): Promise<void> {
    return this.writer.drain();
  }

  /** Flushes and closes the writer (ending its sink unless it was opened with `end: false`). */
  close(): Promise<void> {
    return this.writer.close();
  }

  stats(): StageStats {
    return {
      ...this.counters,
      dropped: { ...this.counters.dropped },
      packetsWritten: this.writer.packetsWritten,
      bytesWritten: this.writer.bytesWritten,
    };
  }
}
