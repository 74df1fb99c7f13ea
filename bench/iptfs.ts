/**
 * IP-TFS (RFC 9347) throughput on one core, each figure beside plain ESP in the same run:
 *
 * - iptfs-encap: IptfsEncapStage aggregating and fragmenting inner packets into 1400-byte outer packets
 *   (AGGFRAG payloads sealed by the fastest backend), beside EspEncapStage wrapping the same inner packets
 *   one per ESP tunnel packet. Inner packets: an IMIX-like seeded mix (7 × 64, 4 × 576, 1 × 1400 bytes) and
 *   1400-byte packets alone. Figures are Gbit/s of inner bytes; the goal is ≥ 2 Gbit/s (the VPP IP-TFS plugin
 *   publishes about 1.9 Gbit/s per worker).
 * - iptfs-decap: IptfsDecapStage reassembling a ring of those outer packets (checked to give back every
 *   inner packet, byte for byte, before timing) beside EspDecapStage opening the plain ESP ring.
 *
 * Encapsulation runs in min-rate mode with every packet at one timestamp: an outer packet leaves as soon
 * as a whole payload is queued, so the loop measures aggregation and sealing, not pacing.
 */
import { EspDecapStage, EspEncapStage } from '../src/esp/esp-stages.js';
import { type SaConfig, SecurityAssociation } from '../src/esp/sa.js';
import type { Packet } from '../src/packet.js';
import type { Stage } from '../src/stages/stage.js';
import { IptfsDecapStage, IptfsEncapStage } from '../src/tfc/iptfs-stages.js';
import { type Bench, isMain, runAlone } from './lib/bench-context.js';
import { espCases, saConfig } from './lib/esp-cases.js';
import { innerPackets } from './lib/esp-packets.js';
import { figure } from './lib/report.js';
import { type LoopResult, timeAbba } from './lib/timed-loop.js';

const OUTER_SIZE = 1400;
const GOAL_GBIT = 2;
/** Inner packets per timed operation. */
const BATCH = 1200;
const T0 = 1_700_000_000_000_000_000n;

interface Mix {
  label: string;
  packets: Buffer[];
}

function mixes(): Mix[] {
  const small = innerPackets(64, BATCH);
  const medium = innerPackets(576, BATCH);
  const large = innerPackets(1400, BATCH);
  // IMIX's 7:4:1 by count, interleaved so every payload sees a mix.
  const imix = Array.from({ length: BATCH }, (_, i) => {
    const k = i % 12;
    return k < 7 ? small[i]! : k < 11 ? medium[i]! : large[i]!;
  });
  return [
    { label: 'imix', packets: imix },
    { label: '1400', packets: large },
  ];
}

function bits(packets: readonly Buffer[]): number {
  return packets.reduce((n, p) => n + p.length * 8, 0);
}

/** The fastest backend's chacha20-poly1305 (sodium where it loads), in the mode given. */
function config(mode: 'iptfs' | 'tunnel'): SaConfig {
  const c = espCases(['chacha20-poly1305'])[0];
  if (!c) throw new Error('iptfs bench: no backend offers chacha20-poly1305');
  return { ...saConfig(c), mode };
}

function asPackets(data: readonly Buffer[]): Packet[] {
  return data.map((d) => ({ data: d, ts: T0, link: 228 }));
}

/** Runs `input` through `stage` (tick, process; flush at the end) and counts what came out. */
function pass(stage: Stage, input: readonly Packet[], collect?: Buffer[]): number {
  let out = 0;
  const emit = collect ? (p: Packet) => collect.push(Buffer.from(p.data)) : () => void out++;
  for (const p of input) {
    stage.tick?.(p.ts, emit);
    stage.process(p, emit);
  }
  stage.flush?.(emit);
  return collect ? collect.length : out;
}

function iptfsEncapStage(): IptfsEncapStage {
  return new IptfsEncapStage(new SecurityAssociation(config('iptfs')), {
    packetSize: OUTER_SIZE,
    mode: { kind: 'min-rate', bitsPerSecond: 1_000_000 },
  });
}

function gbit(r: LoopResult, bitsPerOp: number): number {
  return (r.hz * bitsPerOp) / 1e9;
}

export const iptfsEncapBench: Bench = {
  name: 'iptfs-encap',
  description: 'IP-TFS encapsulation into 1400-byte packets (chacha20-poly1305) vs. plain ESP tunnel encap',
  async run({ quick, reporter }) {
    const backend = config('iptfs').backend;
    for (const mix of mixes()) {
      const input = asPackets(mix.packets);
      const iptfs = iptfsEncapStage();
      const esp = new EspEncapStage([new SecurityAssociation(config('tunnel'))]);
      const [a, b] = timeAbba(
        () => pass(iptfs, input),
        () => pass(esp, input),
        [`iptfs-encap ${mix.label}`, `esp-encap ${mix.label}`],
        quick,
      );
      const perOp = bits(mix.packets);
      const value = gbit(a, perOp);
      const name = `iptfs-encap/chacha20-poly1305/${backend}/${mix.label}`;
      reporter.figure(
        figure(name, 'Gbit/s', value, 'ESP tunnel encap, one packet per inner packet', gbit(b, perOp)),
        {
          detail: `inner bits; ±${a.rme.toFixed(1)}% / ±${b.rme.toFixed(1)}%; goal ≥ ${GOAL_GBIT}: ${value >= GOAL_GBIT ? 'met' : 'MISSED'}`,
        },
      );
      reporter.note(
        `${name}: ${value.toFixed(2)} Gbit/s of inner packets, goal ≥ ${GOAL_GBIT}: ${value >= GOAL_GBIT ? 'met' : 'missed'}`,
      );
    }
  },
};

export const iptfsDecapBench: Bench = {
  name: 'iptfs-decap',
  description: 'IP-TFS reassembly from 1400-byte packets (chacha20-poly1305) vs. plain ESP tunnel decap',
  async run({ quick, reporter }) {
    const backend = config('iptfs').backend;
    for (const mix of mixes()) {
      const input = asPackets(mix.packets);
      const iptfsRing: Buffer[] = [];
      pass(iptfsEncapStage(), input, iptfsRing);
      const espRing: Buffer[] = [];
      pass(new EspEncapStage([new SecurityAssociation(config('tunnel'))]), input, espRing);
      // Every inner packet back, byte for byte, or the figure would measure something broken.
      const back: Buffer[] = [];
      pass(new IptfsDecapStage([new SecurityAssociation(config('iptfs'))]), asPackets(iptfsRing), back);
      if (back.length !== mix.packets.length || back.some((p, i) => !p.equals(mix.packets[i]!)))
        throw new Error(`iptfs-decap ${mix.label}: the ring does not reassemble to its inner packets`);
      const outerIptfs = asPackets(iptfsRing);
      const outerEsp = asPackets(espRing);
      // A fresh SA per pass: the ring's sequence numbers are new to it (its replay window is counted).
      const [a, b] = timeAbba(
        () => pass(new IptfsDecapStage([new SecurityAssociation(config('iptfs'))]), outerIptfs),
        () => pass(new EspDecapStage([new SecurityAssociation(config('tunnel'))]), outerEsp),
        [`iptfs-decap ${mix.label}`, `esp-decap ${mix.label}`],
        quick,
      );
      const perOp = bits(mix.packets);
      const value = gbit(a, perOp);
      const name = `iptfs-decap/chacha20-poly1305/${backend}/${mix.label}`;
      reporter.figure(
        figure(name, 'Gbit/s', value, 'ESP tunnel decap, one packet per inner packet', gbit(b, perOp)),
        {
          detail: `inner bits, ${iptfsRing.length} outer packets for ${mix.packets.length} inner; ±${a.rme.toFixed(1)}% / ±${b.rme.toFixed(1)}%; goal ≥ ${GOAL_GBIT}: ${value >= GOAL_GBIT ? 'met' : 'MISSED'}`,
        },
      );
      reporter.note(
        `${name}: ${value.toFixed(2)} Gbit/s of inner packets, goal ≥ ${GOAL_GBIT}: ${value >= GOAL_GBIT ? 'met' : 'missed'}`,
      );
    }
  },
};

export const iptfsBenches = [iptfsEncapBench, iptfsDecapBench];

if (isMain(import.meta.url)) runAlone(...iptfsBenches);
