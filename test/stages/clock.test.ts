import { describe, expect, it } from 'vitest';
import { RealClock, realClock, VirtualClock } from '../../src/stages/clock.js';

describe('VirtualClock', () => {
  it('takes its time from the first advance and never goes backwards', () => {
    const c = new VirtualClock();
    expect(c.isSet).toBe(false);
    expect(c.now()).toBe(0n);
    expect(c.advanceTo(1_700_000_000_000_000_000n)).toBe(1_700_000_000_000_000_000n);
    expect(c.isSet).toBe(true);
    expect(c.advanceTo(1_700_000_000_000_000_500n)).toBe(1_700_000_000_000_000_500n);
    expect(c.advanceTo(1_699_999_999_000_000_000n)).toBe(1_700_000_000_000_000_500n);
    expect(c.advanceTo(1_700_000_000_000_000_500n)).toBe(1_700_000_000_000_000_500n);
    expect(c.backwardSteps).toBe(1);
    expect(c.advanceBy(250n)).toBe(1_700_000_000_000_000_750n);
  });

  it('starts where told and refuses negative steps', () => {
    const c = new VirtualClock(10n);
    expect(c.isSet).toBe(true);
    expect(c.advanceTo(5n)).toBe(10n);
    expect(c.backwardSteps).toBe(1);
    expect(() => c.advanceBy(-1n)).toThrow('non-negative');
  });
});

describe('RealClock', () => {
  it('reads the wall clock in nanoseconds and never decreases', () => {
    const c = new RealClock();
    const wallBefore = BigInt(Date.now()) * 1_000_000n;
    let prev = c.now();
    let decreases = 0;
    for (let i = 0; i < 100_000; i++) {
      const t = c.now();
      if (t < prev) decreases++;
      prev = t;
    }
    expect(decreases).toBe(0);
    const wallAfter = BigInt(Date.now()) * 1_000_000n;
    // Anchored to Date.now() (ms resolution): within a few ms of the wall clock either side.
    expect(prev >= wallBefore - 5_000_000n).toBe(true);
    expect(prev <= wallAfter + 5_000_000n).toBe(true);
  });

  it('measures elapsed time like a stopwatch', async () => {
    const c = new RealClock();
    const t0 = c.now();
    await new Promise((r) => setTimeout(r, 30));
    const dt = c.now() - t0;
    expect(dt >= 29_000_000n).toBe(true);
    expect(dt < 2_000_000_000n).toBe(true);
  });

  it('is shared process-wide through realClock()', () => {
    expect(realClock()).toBe(realClock());
  });
});
