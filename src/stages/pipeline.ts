/**
 * Stages in series, as one Stage (DESIGN.md §2, §4): each stage's output is the next one's input.
 */
import type { Packet } from '../packet.js';
import { type Emit, emptyStats, type Stage, type StageStats } from './stage.js';

/**
 * A stage (usually a sink) that wants its driver to wait now and then, to keep memory bounded: after
 * handing over packets the driver checks `needsDrain` and, when true, awaits `drain()`.
 */
export interface Drainable {
  readonly needsDrain: boolean;
  drain(): Promise<void>;
}

export function isDrainable(x: unknown): x is Drainable {
  return (
    typeof x === 'object' &&
    x !== null &&
    'needsDrain' in x &&
    typeof (x as { drain?: unknown }).drain === 'function'
  );
}

const discard: Emit = () => {};

/**
 * Runs `stages` in order. The emit chain is built once, so a packet passing through allocates nothing
 * here. `tick` (present when any stage has one) and `flush` go to every stage in order, each with the
 * emit that leads into the stages after it: what stage i flushes passes through stages i+1… before
 * those are flushed in turn.
 *
 * `stats()` gives the pipeline's own packetsIn/packetsOut plus every stage's counters, flattened as
 * `"<stage>.<counter>"`, with drops keyed `"<stage>.<reason>"`; `stageStats()` gives them unflattened.
 * Stage keys are their names, with `#2`, `#3`, … appended to repeated names.
 *
 * A pipeline is Drainable: it needs a drain when any Drainable stage inside it does.
 */
export class Pipeline implements Stage, Drainable {
  readonly name: string;
  readonly stages: readonly Stage[];
  /** Present only when some stage is time-driven, so drivers can skip ticking pipelines that ignore it. */
  readonly tick?: (now: bigint, emit: Emit) => void;
  /** emits[i] takes what stage i emits: into stage i+1, or out of the pipeline after the last one. */
  private readonly emits: Emit[];
  /** Takes a packet into the first stage (or straight out, for an empty pipeline). */
  private readonly entry: Emit;
  private readonly keys: string[];
  private readonly drainables: Drainable[];
  /** Where the current call's output goes; set per call, restored after (re-entrancy safe). */
  private sink: Emit = discard;
  private packetsIn = 0;
  private packetsOut = 0;

  constructor(stages: readonly Stage[], name?: string) {
    this.stages = [...stages];
    this.name = name ?? `pipeline(${this.stages.map((s) => s.name).join(' > ')})`;
    this.keys = uniqueKeys(this.stages.map((s) => s.name));
    this.drainables = this.stages.filter((s): s is Stage & Drainable => isDrainable(s));

    const toSink: Emit = (pkt) => {
      this.packetsOut++;
      this.sink(pkt);
    };
    const emits: Emit[] = new Array(this.stages.length);
    for (let i = this.stages.length - 1; i >= 0; i--) {
      const next = this.stages[i + 1];
      const nextEmit = emits[i + 1];
      emits[i] = next && nextEmit ? (pkt) => next.process(pkt, nextEmit) : toSink;
    }
    this.emits = emits;
    this.entry = this.stages.length > 0 ? (pkt) => this.stages[0]!.process(pkt, emits[0]!) : toSink;

    if (this.stages.some((s) => s.tick)) this.tick = (now, emit) => this.tickAll(now, emit);
  }

  process(pkt: Packet, emit: Emit): void {
    this.packetsIn++;
    const outer = this.sink;
    this.sink = emit;
    try {
      this.entry(pkt);
    } finally {
      this.sink = outer;
    }
  }

  flush(emit: Emit): void {
    const outer = this.sink;
    this.sink = emit;
    try {
      for (let i = 0; i < this.stages.length; i++) this.stages[i]!.flush?.(this.emits[i]!);
    } finally {
      this.sink = outer;
    }
  }

  private tickAll(now: bigint, emit: Emit): void {
    const outer = this.sink;
    this.sink = emit;
    try {
      for (let i = 0; i < this.stages.length; i++) this.stages[i]!.tick?.(now, this.emits[i]!);
    } finally {
      this.sink = outer;
    }
  }

  get needsDrain(): boolean {
    for (const d of this.drainables) if (d.needsDrain) return true;
    return false;
  }

  async drain(): Promise<void> {
    await Promise.all(this.drainables.filter((d) => d.needsDrain).map((d) => d.drain()));
  }

  /** Each stage's own stats, keyed by stage name (repeats get `#2`, `#3`, …), in pipeline order. */
  stageStats(): Record<string, StageStats> {
    const out: Record<string, StageStats> = {};
    for (let i = 0; i < this.stages.length; i++) out[this.keys[i]!] = this.stages[i]!.stats();
    return out;
  }

  stats(): StageStats {
    const out: StageStats = { ...emptyStats(), packetsIn: this.packetsIn, packetsOut: this.packetsOut };
    for (let i = 0; i < this.stages.length; i++) {
      const key = this.keys[i]!;
      for (const [counter, value] of Object.entries(this.stages[i]!.stats())) {
        if (counter === 'dropped') {
          for (const [reason, n] of Object.entries(value as Record<string, number>)) {
            out.dropped[`${key}.${reason}`] = n;
          }
        } else out[`${key}.${counter}`] = typeof value === 'number' ? value : { ...value };
      }
    }
    return out;
  }
}

/** `new Pipeline(stages)`: the stages in series, as one stage. */
export function pipeline(...stages: Stage[]): Pipeline {
  return new Pipeline(stages);
}

function uniqueKeys(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((name) => {
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    return n === 1 ? name : `${name}#${n}`;
  });
}
