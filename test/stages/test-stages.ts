/** Small stages with observable behaviour, for testing the machinery that drives stages. */
import type { Packet } from '../../src/packet.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../../src/stages/stage.js';

/** A packet whose bytes are `bytes`, at time `ts` ns, Ethernet link. */
export function pkt(bytes: number[] | string, ts = 0n): Packet {
  return { data: Buffer.from(typeof bytes === 'string' ? Buffer.from(bytes) : bytes), ts, link: 1 };
}

/** Text of a packet's bytes (tests build packets from ASCII). */
export function text(p: Packet): string {
  return p.data.toString('latin1');
}

/** Shared event log, so tests can assert the order of calls across stages. */
export type Log = string[];

/** Appends `suffix` to each packet (a new buffer), logging `name:p:<data>` for every packet seen. */
export class Tagger implements Stage {
  private readonly counters = emptyStats();
  /** Every emit function this stage was handed, to check the chain is not rebuilt per packet. */
  readonly emitsSeen = new Set<Emit>();
  constructor(
    readonly name: string,
    private readonly suffix: string,
    private readonly log: Log = [],
  ) {}
  process(p: Packet, emit: Emit): void {
    this.counters.packetsIn++;
    this.emitsSeen.add(emit);
    this.log.push(`${this.name}:p:${text(p)}`);
    this.counters.packetsOut++;
    emit({ ...p, data: Buffer.concat([p.data, Buffer.from(this.suffix)]) });
  }
  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }
}

/** Holds every packet (copied) until flush, like a reassembler; logs process and flush calls. */
export class Holder implements Stage {
  private readonly counters = { ...emptyStats(), held: 0 };
  private readonly queue: Packet[] = [];
  constructor(
    readonly name: string,
    private readonly log: Log = [],
  ) {}
  process(p: Packet, _emit: Emit): void {
    this.counters.packetsIn++;
    this.log.push(`${this.name}:p:${text(p)}`);
    this.queue.push({ ...p, data: Buffer.from(p.data) });
    this.counters.held = this.queue.length;
  }
  flush(emit: Emit): void {
    this.log.push(`${this.name}:flush`);
    for (const p of this.queue.splice(0)) {
      this.counters.packetsOut++;
      emit(p);
    }
    this.counters.held = 0;
  }
  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }
}

/**
 * Time-driven: delays each packet by `delay` ns; tick(now) emits every packet due by `now` and logs
 * `name:t:<now>`; flush emits the rest.
 */
export class Delayer implements Stage {
  private readonly counters = emptyStats();
  private readonly queue: Packet[] = [];
  readonly ticksSeen: bigint[] = [];
  constructor(
    readonly name: string,
    private readonly delay: bigint,
    private readonly log: Log = [],
  ) {}
  process(p: Packet, _emit: Emit): void {
    this.counters.packetsIn++;
    this.log.push(`${this.name}:p:${text(p)}`);
    this.queue.push({ ...p, data: Buffer.from(p.data) });
  }
  tick(now: bigint, emit: Emit): void {
    this.ticksSeen.push(now);
    this.log.push(`${this.name}:t:${now}`);
    while (this.queue.length > 0 && this.queue[0]!.ts + this.delay <= now) {
      this.counters.packetsOut++;
      emit(this.queue.shift()!);
    }
  }
  flush(emit: Emit): void {
    for (const p of this.queue.splice(0)) {
      this.counters.packetsOut++;
      emit(p);
    }
  }
  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }
}

/** Drops packets shorter than `min` bytes (reason 'short') and those starting with 'x' (reason 'x'). */
export class Dropper implements Stage {
  private readonly counters = emptyStats();
  constructor(
    readonly name: string,
    private readonly min: number,
  ) {}
  process(p: Packet, emit: Emit): void {
    this.counters.packetsIn++;
    if (p.data.length < this.min) countDrop(this.counters, 'short');
    else if (p.data[0] === 0x78) countDrop(this.counters, 'x');
    else {
      this.counters.packetsOut++;
      emit(p);
    }
  }
  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }
}

/** Emits each packet `n` times, all from one reused buffer (as encoders do), each copy numbered. */
export class ReusingRepeater implements Stage {
  private readonly counters = emptyStats();
  private readonly scratch = Buffer.alloc(2048);
  constructor(
    readonly name: string,
    private readonly n: number,
  ) {}
  process(p: Packet, emit: Emit): void {
    this.counters.packetsIn++;
    for (let i = 0; i < this.n; i++) {
      p.data.copy(this.scratch, 0);
      this.scratch[p.data.length] = 0x30 + i; // '0', '1', …
      this.counters.packetsOut++;
      emit({ ...p, data: this.scratch.subarray(0, p.data.length + 1) });
    }
  }
  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }
}
