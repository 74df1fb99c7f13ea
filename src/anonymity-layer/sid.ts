/**
 * Session IDs (SIDs) of the anonymity layer: 64-bit values, never 0, kept as (hi, lo) uint32 halves on the
 * hot path and as bigints where a value is handed to people or configuration (events, options, logs).
 */

import { randomFillSync } from 'node:crypto';
import { readU32 } from '../esp/esp-format.js';

/** A session ID as a value: 1 … 2^64 − 1. */
export type Sid = bigint;

const U64_MAX = (1n << 64n) - 1n;

export function sidOf(hi: number, lo: number): Sid {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export function sidHi(sid: Sid): number {
  return Number(sid >> 32n);
}

export function sidLo(sid: Sid): number {
  return Number(sid & 0xffffffffn);
}

/** The SID stored big-endian at buf[off, off + 8). */
export function sidFromBytes(buf: Uint8Array, off: number): Sid {
  return sidOf(readU32(buf, off), readU32(buf, off + 4));
}

/** 16 lowercase hex digits, as the CLI contract prints 64-bit values in hex. */
export function sidHex(sid: Sid): string {
  return sid.toString(16).padStart(16, '0');
}

/** Throws (a configuration error) unless `sid` is a valid session ID; `what` names the option. */
export function checkSid(what: string, sid: Sid): Sid {
  if (typeof sid !== 'bigint' || sid < 1n || sid > U64_MAX)
    throw new Error(`${what} must be a session ID from 1 to 2^64 − 1 (a bigint), got ${String(sid)}`);
  return sid;
}

/** Fills `out` with random bytes; the default is the operating system's CSPRNG. */
export type RandomSource = (out: Uint8Array) => void;

const POOL_BYTES = 256;
/** Draws before concluding the random source is broken (64-bit draws collide with 2^-64 odds each). */
const MAX_DRAWS = 32;

/**
 * Makes fresh random SIDs: never 0 and never one the caller says is in use. The result is left in
 * `hi`/`lo` (no allocation). Random bytes come from a pool refilled 256 bytes at a time.
 */
export class SidGenerator {
  hi = 0;
  lo = 0;
  private readonly pool = new Uint8Array(POOL_BYTES);
  private used = POOL_BYTES;

  constructor(private readonly random: RandomSource = randomFillSync) {}

  /** Draws until `inUse(hi, lo)` is false; throws only if the random source keeps repeating itself. */
  next(inUse: (hi: number, lo: number) => boolean): void {
    for (let draw = 0; draw < MAX_DRAWS; draw++) {
      if (this.used + 8 > POOL_BYTES) {
        this.random(this.pool);
        this.used = 0;
      }
      const hi = readU32(this.pool, this.used);
      const lo = readU32(this.pool, this.used + 4);
      this.used += 8;
      if ((hi === 0 && lo === 0) || inUse(hi, lo)) continue;
      this.hi = hi;
      this.lo = lo;
      return;
    }
    throw new Error(
      `session ID generator: ${MAX_DRAWS} random draws were all 0 or in use; the random source is broken`,
    );
  }
}
