/**
 * ViewCache: the same view object for the same region of a buffer that stays the same, always the right
 * bytes, and plain views while buffers change.
 */
import { describe, expect, it } from 'vitest';
import { ViewCache } from '../../src/esp/view-cache.js';

describe('ViewCache', () => {
  it('hands back one view per (start, length) of a buffer, covering exactly that region', () => {
    const cache = new ViewCache();
    const frame = Buffer.from('00112233445566778899', 'hex');
    const buf = frame.subarray(2); // a buffer that itself starts inside its ArrayBuffer
    const first = cache.view(buf, 3, 4);
    expect(Buffer.from(first).toString('hex')).toBe('55667788');
    for (let i = 0; i < 4; i++) cache.view(buf, 0, 1); // the buffer stays: its views are kept from now on
    const v = cache.view(buf, 3, 4);
    expect(Buffer.from(v).toString('hex')).toBe('55667788');
    expect(cache.view(buf, 3, 4)).toBe(v);
    expect(cache.view(buf, 3, 5)).not.toBe(v);
    v[0] = 0xee; // a view, not a copy
    expect(buf[3]).toBe(0xee);
  });

  it('starts over for another buffer, so a view never points into the wrong one', () => {
    const cache = new ViewCache();
    const a = Buffer.alloc(16, 1);
    const b = Buffer.alloc(16, 2);
    let va = cache.view(a, 0, 8);
    for (let i = 0; i < 5; i++) va = cache.view(a, 0, 8);
    expect(cache.view(a, 0, 8)).toBe(va); // kept
    const vb = cache.view(b, 0, 8);
    expect(vb).not.toBe(va);
    expect(vb.every((x) => x === 2)).toBe(true);
    expect(cache.view(a, 0, 8).every((x) => x === 1)).toBe(true);
  });

  it('stays correct when lengths vary without end (regions are dropped, not mixed up)', () => {
    const cache = new ViewCache();
    const buf = new Uint8Array(4096).map((_, i) => i & 0xff);
    for (let len = 1; len < 2000; len++) {
      const v = cache.view(buf, 7, len);
      expect(v.length).toBe(len);
      expect(v[len - 1]).toBe((7 + len - 1) & 0xff);
    }
  });

  it('makes a region longer than any packet afresh each time', () => {
    const cache = new ViewCache();
    const buf = new Uint8Array(0x30000);
    for (let i = 0; i < 5; i++) cache.view(buf, 0, 1);
    const v = cache.view(buf, 0, 0x20000);
    expect(v.length).toBe(0x20000);
    expect(cache.view(buf, 0, 0x20000)).not.toBe(v);
  });

  it('keeps nothing while the buffer changes every call or two (a buffer per packet)', () => {
    const cache = new ViewCache();
    const buffers = Array.from({ length: 4 }, (_, i) => Buffer.alloc(32, i));
    for (let round = 0; round < 3; round++)
      for (const b of buffers) {
        const a = cache.view(b, 0, 16);
        expect(cache.view(b, 0, 16)).not.toBe(a);
        expect(a[0]).toBe(b[0]);
      }
  });
});
