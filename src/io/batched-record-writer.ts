import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Packet } from '../packet.js';
import type { CaptureFormat } from './capture-file-error.js';

const EMPTY = Buffer.alloc(0);

/** Default size of one write handed to the sink: small records are gathered into writes this large. */
export const DEFAULT_BATCH_BYTES = 256 * 1024;

export interface CaptureSinkOptions {
  /** Bytes gathered before one `write()` to the sink (default 256 KiB). `flush()` sends a partial batch. */
  batchBytes?: number;
  /** Whether `close()` ends the sink (default true; pass false for process.stdout and the like). */
  end?: boolean;
  /**
   * Reuse a batch buffer once the sink has called back for it, instead of allocating a fresh one
   * (fresh memory costs page faults on every batch). Only for sinks that are done with a chunk when
   * they call back, such as fs.WriteStream (openCaptureWriter on a path sets it); never for a
   * PassThrough or Transform, which queue the chunk itself for their reader. Default false.
   */
  recycleBatches?: boolean;
}

/** Batch buffers kept for reuse when recycling. */
const SPARE_BATCHES = 4;

/**
 * A capture-file writer. `write(pkt)` copies the packet into the current batch at once (so the packet
 * may be borrowed) and returns false when the sink has asked us to wait: await `drain()` before writing
 * more, or use `writePacket`, which does both.
 */
export interface CaptureWriter {
  readonly format: CaptureFormat;
  readonly packetsWritten: number;
  /** Bytes handed to the sink so far (excluding the batch not yet flushed). */
  readonly bytesWritten: number;
  /** True while the sink's buffer is over its high-water mark. */
  readonly needsDrain: boolean;
  /** Whether a packet of this link type can go into this file. */
  acceptsLink(link: number): boolean;
  write(pkt: Packet): boolean;
  writePacket(pkt: Packet): Promise<void>;
  drain(): Promise<void>;
  /** Hands the partial batch to the sink now (for live use, where waiting for a full batch delays data). */
  flush(): boolean;
  /** Flushes, ends the sink unless told not to, and waits until it has finished. */
  close(): Promise<void>;
}

/**
 * Batching and backpressure for capture writers. Subclasses encode records with `room(n)` (makes n
 * bytes available at batch[batchLen]) followed by `batchLen += n`.
 *
 * Each full batch is handed to the sink and a new one is allocated, unless `recycleBatches` says the
 * sink is done with a chunk when it calls back: a PassThrough, say, queues the chunk itself for its
 * reader, and reusing it would corrupt what the reader gets.
 */
export abstract class BatchedRecordWriter {
  abstract readonly format: CaptureFormat;
  packetsWritten = 0;
  bytesWritten = 0;

  protected batch: Buffer = EMPTY;
  protected batchLen = 0;
  private readonly batchBytes: number;
  private readonly endSink: boolean;
  private readonly spares: Buffer[] | null;
  private error: Error | null = null;
  private closed = false;

  constructor(
    protected readonly sink: Writable,
    options: CaptureSinkOptions = {},
  ) {
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    if (!(this.batchBytes >= 64))
      throw new RangeError(`batchBytes must be at least 64, got ${this.batchBytes}`);
    this.endSink = options.end ?? true;
    this.spares = options.recycleBatches ? [] : null;
    // Sink errors surface from write(), drain() and close() instead of crashing the process.
    sink.on('error', (err: Error) => {
      this.error ??= err;
    });
  }

  abstract acceptsLink(link: number): boolean;
  abstract write(pkt: Packet): boolean;

  get needsDrain(): boolean {
    return this.sink.writableNeedDrain;
  }

  async writePacket(pkt: Packet): Promise<void> {
    if (!this.write(pkt)) await this.drain();
  }

  /** Resolves once the sink has drained (at once when it need not); rejects if the sink fails. */
  drain(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (!this.sink.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        this.sink.off('drain', onDrain);
        this.sink.off('error', onError);
        this.sink.off('close', onClose);
      };
      const onDrain = () => {
        cleanup();
        resolve();
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const onClose = () => {
        cleanup();
        reject(this.error ?? new Error(`${this.format} writer: the sink closed before it drained`));
      };
      this.sink.on('drain', onDrain);
      this.sink.on('error', onError);
      this.sink.on('close', onClose);
    });
  }

  flush(): boolean {
    this.throwIfFailed();
    this.sendBatch(this.batchBytes);
    return !this.sink.writableNeedDrain;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.throwIfFailed();
    this.sendBatch(0);
    this.closed = true;
    if (this.endSink) {
      this.sink.end();
      await finished(this.sink);
    } else {
      await this.drain();
    }
    this.throwIfFailed();
  }

  /** Makes n bytes available at batch[batchLen], handing the current batch to the sink when it is full. */
  protected room(n: number): void {
    if (this.batchLen + n <= this.batch.length) return;
    if (this.closed) throw new Error(`${this.format} writer: write() after close()`);
    this.throwIfFailed();
    this.sendBatch(Math.max(n, this.batchBytes));
  }

  private sendBatch(nextSize: number): void {
    if (this.batchLen > 0) {
      const full = this.batch;
      const out = full.subarray(0, this.batchLen);
      this.bytesWritten += out.length;
      const spares = this.spares;
      if (spares !== null && full.length === this.batchBytes)
        this.sink.write(out, (err) => {
          if (!err && spares.length < SPARE_BATCHES) spares.push(full);
        });
      else this.sink.write(out);
      this.batch = EMPTY;
      this.batchLen = 0;
    }
    if (this.batch.length >= nextSize) return;
    const spare = nextSize === this.batchBytes ? this.spares?.pop() : undefined;
    this.batch = spare ?? Buffer.allocUnsafe(nextSize);
  }

  private throwIfFailed(): void {
    if (this.error) throw this.error;
  }
}
