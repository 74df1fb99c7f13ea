/**
 * The ESP engine under measurement: encapsulate() over a batch of inner packets, and decapsulate() over a
 * ring of valid ESP packets, each call checked so a refusal or drop can never count as throughput.
 */
import { type DecapInfo, decapsulate, newDecapInfo } from '../../src/esp/decapsulate.js';
import { encapsulate } from '../../src/esp/encapsulate.js';
import { type SaConfig, SecurityAssociation } from '../../src/esp/sa.js';
import { SecurityAssociationDatabase } from '../../src/esp/sad.js';

/** Room for the largest ESP packet the engine may write. */
const OUT_BYTES = 65_535;

/** Where the loops leave the lengths they produced, so no call is dead code. */
export const sink = { bytes: 0 };

/**
 * One timed operation: every packet of `inner` encapsulated by one SA (its sequence numbers keep counting
 * across operations); each must come out exactly `expectedLength` bytes long.
 */
export function encapEngineLoop(
  config: SaConfig,
  inner: readonly Buffer[],
  expectedLength: number,
): () => void {
  const sa = new SecurityAssociation(config);
  const out = Buffer.alloc(OUT_BYTES);
  return () => {
    let bytes = 0;
    for (let i = 0; i < inner.length; i++) {
      const p = inner[i]!;
      const n = encapsulate(sa, p, 0, p.length, out, 0);
      if (n !== expectedLength)
        throw new Error(
          typeof n === 'string'
            ? `encapsulate refused packet ${i}: ${n}`
            : `encapsulate wrote ${n} bytes, expected ${expectedLength}`,
        );
      bytes += n;
    }
    sink.bytes += bytes;
  };
}

/**
 * One timed operation: every packet of `ring` decapsulated by a fresh receiving SA of `config` (the ring's
 * sequence numbers 1..n are new to it, so its default 64-packet replay window accepts them all in order);
 * each must yield the inner packet, `innerLength` bytes. The SA and its database are made inside the
 * operation, so their cost is counted: measure it with saSetupSeconds and keep rings long.
 */
export function decapEngineLoop(config: SaConfig, ring: readonly Buffer[], innerLength: number): () => void {
  const out = Buffer.alloc(OUT_BYTES);
  const info: DecapInfo = newDecapInfo();
  return () => {
    const sad = new SecurityAssociationDatabase([new SecurityAssociation(config)]);
    let bytes = 0;
    for (let i = 0; i < ring.length; i++) {
      const p = ring[i]!;
      const n = decapsulate(sad, p, 0, p.length, out, 0, info);
      if (n !== innerLength)
        throw new Error(
          typeof n === 'string'
            ? `decapsulate dropped ring packet ${i}: ${n}`
            : `decapsulate returned ${n} bytes, expected ${innerLength}`,
        );
      bytes += n;
    }
    sink.bytes += bytes;
  };
}

/** Decapsulates `ring` once with a fresh SA and checks every inner packet is `inner[i]`, byte for byte. */
export function checkRingOpens(config: SaConfig, ring: readonly Buffer[], inner: readonly Buffer[]): void {
  const sad = new SecurityAssociationDatabase([new SecurityAssociation(config)]);
  const out = Buffer.alloc(OUT_BYTES);
  const info = newDecapInfo();
  ring.forEach((p, i) => {
    const n = decapsulate(sad, p, 0, p.length, out, 0, info);
    if (typeof n === 'string') throw new Error(`ring packet ${i} does not decapsulate: ${n}`);
    if (!out.subarray(0, n).equals(inner[i]!))
      throw new Error(`ring packet ${i} decapsulates to other bytes than the inner packet it was built from`);
  });
}

/** Seconds one decap operation spends making its receiving SA and database (median of `samples`). */
export function saSetupSeconds(config: SaConfig, samples = 201): number {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const began = performance.now();
    const sad = new SecurityAssociationDatabase([new SecurityAssociation(config)]);
    times.push(performance.now() - began);
    if (sad.size !== 1) throw new Error('the SA database did not take the SA');
  }
  times.sort((a, b) => a - b);
  return times[samples >> 1]! / 1000;
}
