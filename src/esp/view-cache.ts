/**
 * Reused Uint8Array views of one buffer's regions, for crypto calls that take a view per argument
 * (sodium-native, the AeadKey interface). Making a view costs about as much as sealing 64 bytes (≈80 ns
 * measured on the bench machine, whatever the buffer), while a stage writes its packets into one buffer at
 * one offset: the same few (start, length) regions come back packet after packet, and their views can too.
 */
import { view } from './esp-format.js';

/** Distinct regions kept before starting over: bounds the memory when lengths vary without end. */
const MAX_REGIONS = 512;

export class ViewCache {
  private buffer: Uint8Array | null = null;
  private readonly regions = new Map<number, Uint8Array>();

  /**
   * buf[start, start + length) as a Uint8Array: the same object each time for the same buffer, start and
   * length. Another buffer than last time empties the cache, so regions of many buffers (e.g. each input
   * packet) make a fresh view each time and gain nothing; use it for the caller's own output buffer.
   */
  view(buf: Uint8Array, start: number, length: number): Uint8Array {
    if (buf !== this.buffer) {
      this.buffer = buf;
      this.regions.clear();
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
