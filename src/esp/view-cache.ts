/**
 * Reused Uint8Array views of one buffer's regions, for crypto calls that take a view per argument
 * (sodium-native, the AeadKey interface). Making a view costs about as much as sealing 64 bytes (≈80 ns
 * measured on the bench machine, whatever the buffer), while a stage writes its packets into one buffer at
 * one offset: the same few (start, length) regions come back packet after packet, and their views can too.
 */
import { view } from './esp-format.js';

/** Distinct regions kept before starting over: bounds the memory when lengths vary without end. */
const MAX_REGIONS = 512;
/** Calls in a row with one buffer before its views are kept. */
const STABLE_CALLS = 4;

export class ViewCache {
  private buffer: Uint8Array | null = null;
  /** Calls in a row with `buffer`, counted up to STABLE_CALLS. */
  private calls = 0;
  private readonly regions = new Map<number, Uint8Array>();

  /**
   * buf[start, start + length) as a Uint8Array: the same object each time for the same buffer, start and
   * length, once the buffer has been the same for a few calls in a row. Another buffer empties the cache:
   * the gain is for a caller writing into one buffer of its own.
   */
  view(buf: Uint8Array, start: number, length: number): Uint8Array {
    if (buf !== this.buffer) {
      this.buffer = buf;
      this.calls = 0;
      if (this.regions.size > 0) this.regions.clear();
    }
    // Until the buffer has stayed the same a few calls, plain views: a buffer per packet (a seal in each
    // packet's own buffer makes two calls) then costs what plain views cost, with no map work.
    if (this.calls < STABLE_CALLS) {
      this.calls++;
      return view(buf, start, start + length);
    }
    if (length >= 0x20000) return view(buf, start, start + length); // longer than any packet: not kept
    const key = start * 0x20000 + length; // exact: start < 2^36 in any buffer
    let v = this.regions.get(key);
    if (v === undefined) {
      if (this.regions.size >= MAX_REGIONS) this.regions.clear();
      v = view(buf, start, start + length);
      this.regions.set(key, v);
    }
    return v;
  }
}
