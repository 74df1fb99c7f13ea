/** Test helpers for byte-level work. */

/** Bytes from a hex string; whitespace (as in tshark -x dumps) is ignored. */
export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

/** A buffer pre-filled with 0xa5, so a field an encoder forgot to write shows up (smoltcp's habit). */
export function junk(length: number): Buffer {
  return Buffer.alloc(length, 0xa5);
}
