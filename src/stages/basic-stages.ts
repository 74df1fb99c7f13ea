/**
 * Small general-purpose stages: pass everything, transform each packet, keep only some.
 * They make pipelines and tests shorter; real work lives in the protocol stages.
 */
import type { Packet } from '../packet.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from './stage.js';

/** Emits every packet unchanged (a placeholder, or a counter at a point in a pipeline). */
export function passThrough(name = 'pass'): Stage {
  const counters = emptyStats();
  return {
    name,
    process(pkt: Packet, emit: Emit): void {
      counters.packetsIn++;
      counters.packetsOut++;
      emit(pkt);
    },
    stats: () => ({ ...counters, dropped: { ...counters.dropped } }),
  };
}

/**
 * Emits `fn(pkt)` for each packet; when `fn` returns null the packet is dropped and counted as
 * `dropped[dropReason]`. `fn` borrows `pkt` (see Packet) and may return it, changed or not.
 */
export function mapStage(name: string, fn: (pkt: Packet) => Packet | null, dropReason = 'unmapped'): Stage {
  const counters = emptyStats();
  return {
    name,
    process(pkt: Packet, emit: Emit): void {
      counters.packetsIn++;
      const out = fn(pkt);
      if (out === null) {
        countDrop(counters, dropReason);
        return;
      }
      counters.packetsOut++;
      emit(out);
    },
    stats: () => ({ ...counters, dropped: { ...counters.dropped } }),
  };
}

/** Emits the packets `keep` accepts; the others are dropped and counted as `dropped[dropReason]`. */
export function filterStage(name: string, keep: (pkt: Packet) => boolean, dropReason = 'filtered'): Stage {
  const counters = emptyStats();
  return {
    name,
    process(pkt: Packet, emit: Emit): void {
      counters.packetsIn++;
      if (!keep(pkt)) {
        countDrop(counters, dropReason);
        return;
      }
      counters.packetsOut++;
      emit(pkt);
    },
    stats: (): StageStats => ({ ...counters, dropped: { ...counters.dropped } }),
  };
}
