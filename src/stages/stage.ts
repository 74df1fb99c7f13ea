import type { Packet } from '../packet.js';

/** Hands a packet to whatever comes next. The receiver may only borrow `pkt` for the call (see Packet). */
export type Emit = (pkt: Packet) => void;

/** Plain counters; `dropped` counts packets a stage refused, by reason. */
export interface StageStats {
  packetsIn: number;
  packetsOut: number;
  dropped: Record<string, number>;
  [counter: string]: number | Record<string, number>;
}

/**
 * A packet-processing step (DESIGN.md §4). A stage takes packets and emits zero or more packets.
 * It never throws on bad packets: it drops or passes them and counts why in `stats().dropped`.
 * It throws only for programmer errors (bad configuration), saying what to change.
 */
export interface Stage {
  readonly name: string;
  /** Handles one packet; `pkt.data` is borrowed for this call only. */
  process(pkt: Packet, emit: Emit): void;
  /** Time-driven work (pacers, timers); `now` is nanoseconds on the pipeline's Clock. */
  tick?(now: bigint, emit: Emit): void;
  /** End of input: emit anything still held. */
  flush?(emit: Emit): void;
  stats(): StageStats;
}

/** Fresh counters for a stage's stats(). */
export function emptyStats(): StageStats {
  return { packetsIn: 0, packetsOut: 0, dropped: {} };
}

/** Adds one to `stats.dropped[reason]`. */
export function countDrop(stats: StageStats, reason: string, n = 1): void {
  stats.dropped[reason] = (stats.dropped[reason] ?? 0) + n;
}
