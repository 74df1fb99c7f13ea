/**
 * The inbound SA database: lookup by SPI, SAs sharing an SPI told apart by destination, duplicates
 * refused, and SAs removed and added back while packets flow through a decapsulation stage.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/codec/ipv4.js';
import { newDecapInfo } from '../../src/esp/decapsulate.js';
import { EspDecapStage } from '../../src/esp/esp-stages.js';
import { SecurityAssociation } from '../../src/esp/sa.js';
import { SecurityAssociationDatabase } from '../../src/esp/sad.js';
import { keysFor, mustSeal, open, rawPacket, runOnce, saConfig, udpPacket } from './engine-fixtures.js';

const A = parseIpv4('198.18.0.2');
const B = parseIpv4('198.18.0.3');

function tunnelSa(spi: number, dst: string, seed = 0, natt = false): SecurityAssociation {
  return new SecurityAssociation(
    saConfig('aes-gcm-16', 'tunnel', {
      spi,
      ...keysFor('aes-gcm-16', seed),
      tunnel: { src: '198.18.0.1', dst },
      ...(natt ? { natt: { srcPort: 4500, dstPort: 4500 + seed } } : {}),
    }),
  );
}

describe('SecurityAssociationDatabase', () => {
  it('finds an SA by SPI, and with one SA on an SPI does not compare the destination (NAT may rewrite it)', () => {
    const one = tunnelSa(0x100, '198.18.0.2');
    const two = tunnelSa(0x200, '198.18.0.3');
    const sad = new SecurityAssociationDatabase([one, two]);
    expect(sad.lookup(0x100, A)).toBe(one);
    expect(sad.lookup(0x100, B)).toBe(one);
    expect(sad.lookup(0x200, 0)).toBe(two);
    expect(sad.lookup(0x300, A)).toBeUndefined();
    expect(sad.size).toBe(2);
    expect([...sad]).toEqual([one, two]);
  });

  it('tells two SAs on one SPI apart by destination, and finds neither for a third destination', () => {
    const toA = tunnelSa(0x100, '198.18.0.2', 0);
    const toB = tunnelSa(0x100, '198.18.0.3', 1);
    const sad = new SecurityAssociationDatabase([toA, toB]);
    expect(sad.lookup(0x100, A)).toBe(toA);
    expect(sad.lookup(0x100, B)).toBe(toB);
    expect(sad.lookup(0x100, parseIpv4('198.18.0.4'))).toBeUndefined();
    expect(sad.size).toBe(2);

    // Each peer's packets open with its own keys only.
    const txA = tunnelSa(0x100, '198.18.0.2', 0);
    const txB = tunnelSa(0x100, '198.18.0.3', 1);
    const info = newDecapInfo();
    expect(open(sad, mustSeal(txA, udpPacket()), info)).toEqual(udpPacket());
    expect(info.sa).toBe(toA);
    expect(open(sad, mustSeal(txB, udpPacket()), info)).toEqual(udpPacket());
    expect(info.sa).toBe(toB);
    // Sent to A's address with B's keys: A's SA is chosen, and the ICV refuses it.
    const misdirected = mustSeal(txB, udpPacket());
    misdirected.writeUInt32BE(A, 16);
    expect(open(sad, misdirected)).toBe('icv');
    // To an address neither SA has: no SA, although the SPI is known.
    const elsewhere = mustSeal(txA, udpPacket());
    elsewhere.writeUInt32BE(parseIpv4('198.18.0.9'), 16);
    expect(open(sad, elsewhere)).toBe('unknown-spi');
  });

  it('refuses a second SA with the same SPI and destination, saying which', () => {
    const sad = new SecurityAssociationDatabase([tunnelSa(0xa5f8, '198.18.0.2')]);
    expect(() => sad.add(tunnelSa(0xa5f8, '198.18.0.2', 1))).toThrow(
      'an SA with SPI 0x0000a5f8 and destination 198.18.0.2 is already in the database',
    );
    sad.add(tunnelSa(0xa5f8, '198.18.0.3'));
    expect(() => sad.add(tunnelSa(0xa5f8, '198.18.0.3'))).toThrow(
      'an SA with SPI 0x0000a5f8 and destination 198.18.0.3 is already in the database',
    );
    expect(
      () => new SecurityAssociationDatabase([tunnelSa(1, '198.18.0.2'), tunnelSa(1, '198.18.0.2')]),
    ).toThrow('an SA with SPI 0x00000001 and destination 198.18.0.2 is already in the database');
    expect(sad.size).toBe(2);
  });

  it('removes SAs (only those it holds) and keeps the NAT-T ports of the rest', () => {
    const plain = tunnelSa(0x100, '198.18.0.2');
    const natt1 = tunnelSa(0x101, '198.18.0.2', 1, true);
    const natt2a = tunnelSa(0x102, '198.18.0.2', 2, true);
    const natt2b = tunnelSa(0x102, '198.18.0.3', 2, true);
    const sad = new SecurityAssociationDatabase([plain, natt1, natt2a, natt2b]);
    expect([...sad.nattPorts].sort()).toEqual([4501, 4502]);
    expect(sad.remove(natt1)).toBe(true);
    expect(sad.remove(natt1)).toBe(false);
    expect(sad.remove(tunnelSa(0x100, '198.18.0.2'))).toBe(false); // an equal SA, not the one held
    expect([...sad.nattPorts]).toEqual([4502]);
    expect(sad.remove(natt2a)).toBe(true);
    // One SA left on the SPI: the destination is no longer compared.
    expect(sad.lookup(0x102, B)).toBe(natt2b);
    expect(sad.lookup(0x102, A)).toBe(natt2b);
    expect([...sad.nattPorts]).toEqual([4502]);
    expect(sad.remove(natt2b)).toBe(true);
    expect(sad.nattPorts.size).toBe(0);
    expect([...sad]).toEqual([plain]);
  });

  it('can lose and regain an SA while packets flow: unknown-spi in between, accepted after', () => {
    const config = saConfig('aes-cbc-hmac-sha256-128', 'tunnel');
    const tx = new SecurityAssociation(config);
    const rx = new SecurityAssociation(config);
    const other = tunnelSa(0x777, '198.18.0.2');
    const stage = new EspDecapStage(new SecurityAssociationDatabase([rx, other]));
    const verdicts: string[] = [];
    for (let i = 1; i <= 30; i++) {
      if (i === 11) expect(stage.sad.remove(rx)).toBe(true);
      if (i === 21) stage.sad.add(rx);
      const inner = udpPacket({ id: i });
      const { emitted, dropped } = runOnce(stage, rawPacket(mustSeal(tx, inner)));
      if (emitted.length === 1) expect(emitted[0]!.data).toEqual(inner);
      verdicts.push(emitted.length === 1 ? 'ok' : dropped.join());
    }
    expect(verdicts).toEqual([
      ...Array(10).fill('ok'),
      ...Array(10).fill('unknown-spi'),
      ...Array(10).fill('ok'),
    ]);
    expect(stage.stats()).toMatchObject({ packetsIn: 30, packetsOut: 20, dropped: { 'unknown-spi': 10 } });
    // The other SA was there all along.
    expect(stage.sad.lookup(0x777, A)).toBe(other);
  });
});
