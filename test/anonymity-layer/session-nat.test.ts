import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NAT_NO_SESSION, SessionNat } from '../../src/anonymity-layer/session-nat.js';
import { ipv4String, parseIpv4 } from '../../src/codec/ip-address.js';

describe('SessionNat', () => {
  it('hands out the pool lowest first, one address per session, and finds the session by address', () => {
    const nat = new SessionNat('198.18.99.0/29');
    expect(nat.available).toBe(6);
    expect(ipv4String(nat.assign(7))).toBe('198.18.99.1');
    expect(ipv4String(nat.assign(3))).toBe('198.18.99.2');
    expect(ipv4String(nat.assign(7))).toBe('198.18.99.1');
    expect(nat.lookup(parseIpv4('198.18.99.2'))).toBe(3);
    expect(nat.lookup(parseIpv4('198.18.99.3'))).toBe(NAT_NO_SESSION);
    expect(nat.lookup(parseIpv4('198.18.99.0'))).toBe(NAT_NO_SESSION);
    expect(nat.lookup(parseIpv4('198.18.99.7'))).toBe(NAT_NO_SESSION);
    expect(nat.lookup(parseIpv4('198.18.98.1'))).toBe(NAT_NO_SESSION);
    expect(nat.describe(3)).toBe('198.18.99.2');
    expect(nat.describe(4)).toBe('none');
  });

  it('reuses a released address only after every other free one, and says when the pool is exhausted', () => {
    const nat = new SessionNat('198.18.99.0/30'); // two host addresses
    nat.assign(0);
    nat.assign(1);
    expect(nat.assign(2)).toBe(-1);
    expect(nat.release(0)).toBe(true);
    expect(nat.release(0)).toBe(false);
    expect(ipv4String(nat.assign(2))).toBe('198.18.99.1');
    expect(nat.lookup(parseIpv4('198.18.99.1'))).toBe(2);
  });

  it('matches a model under random assign/release', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 300 }),
        (ops) => {
          const nat = new SessionNat('198.18.99.0/27'); // 30 addresses
          const model = new Map<number, number>();
          for (const [assign, index] of ops) {
            if (assign) {
              const a = nat.assign(index);
              if (model.has(index)) expect(a).toBe(model.get(index));
              else if (model.size === 30) expect(a).toBe(-1);
              else {
                expect([...model.values()]).not.toContain(a);
                model.set(index, a);
              }
            } else expect(nat.release(index)).toBe(model.delete(index));
            for (const [i, a] of model) expect(nat.lookup(a)).toBe(i);
            expect(nat.available).toBe(30 - model.size);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses pools larger than a /16', () => {
    expect(() => new SessionNat('10.0.0.0/15')).toThrow(/larger than a \/16/);
  });
});
