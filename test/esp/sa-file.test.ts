/**
 * SA files (contracts/cli.md, "SA file"): the contract's example, the forms a field may take, and an error
 * naming the file and the field for every field that is wrong.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SecurityAssociation } from '../../src/esp/sa.js';
import { parseSaJson, readSaFile } from '../../src/esp/sa-file.js';
import { vectorsDir } from '../helpers/vectors.js';
import { mustSeal, open, sadOf, udpPacket } from './engine-fixtures.js';

/** The SA file example of the CLI contract, read from the contract itself so the two cannot drift. */
function contractExample(): Record<string, unknown> {
  const contract = readFileSync(join(dirname(vectorsDir()), 'contracts', 'cli.md'), 'utf8');
  const at = contract.indexOf('SA file (JSON, one object):');
  expect(at).toBeGreaterThan(0);
  const block = /```json\n([\s\S]*?)```/.exec(contract.slice(at));
  expect(block).not.toBeNull();
  return JSON.parse(block![1]!);
}

const dir = mkdtempSync(join(tmpdir(), 'pktveil-sa-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function saFile(json: unknown): string {
  const path = join(dir, `sa-${files++}.json`);
  writeFileSync(path, typeof json === 'string' ? json : JSON.stringify(json));
  return path;
}

describe('SA file', () => {
  it('parses the contract’s example into a working SA', () => {
    const example = contractExample();
    const config = readSaFile(saFile(example));
    expect(config).toEqual({
      spi: 0xa5f8,
      mode: 'tunnel',
      suite: 'aes-gcm-16',
      encKey: Buffer.from('feffe9928665731c6d6a8f9467308308cafebabe', 'hex'),
      authKey: Buffer.alloc(0),
      esn: false,
      seq: 1n,
      iv: Buffer.from('facedbaddecaf888', 'hex'),
      replayWindow: 64,
      tunnel: { src: '198.18.0.1', dst: '198.18.0.2' },
      tfcPadTo: 0,
    });
    const tx = new SecurityAssociation(config);
    const pkt = mustSeal(tx, udpPacket());
    expect(pkt.subarray(20, 36).toString('hex')).toBe('0000a5f800000001facedbaddecaf888');
    expect(open(sadOf(new SecurityAssociation(readSaFile(saFile(example)))), pkt)).toEqual(udpPacket());
  });

  it('takes the SPI as a number or a hex string', () => {
    const example = contractExample();
    for (const spi of [42488, '0x0000a5f8', '0xa5f8', '0XA5F8'])
      expect(parseSaJson({ ...example, spi }).spi).toBe(0xa5f8);
    expect(parseSaJson({ ...example, spi: '0xffffffff' }).spi).toBe(0xffffffff);
  });

  it('takes a sequence number above 2^32 (and 2^53) as a decimal string with ESN', () => {
    const example = contractExample();
    const config = parseSaJson({ ...example, esn: true, seq: '4294967296' });
    expect(config.seq).toBe(4294967296n);
    const tx = new SecurityAssociation(config);
    expect(tx.nextSeq).toBe(4294967296n);
    // Only the low half travels: 2^32 is sent as 0.
    expect(mustSeal(tx, udpPacket()).readUInt32BE(24)).toBe(0);
    expect(parseSaJson({ ...example, esn: true, seq: '18446744073709551615' }).seq).toBe(
      18446744073709551615n,
    );
    expect(parseSaJson({ ...example, seq: 4294967295 }).seq).toBe(4294967295n);
  });

  it('reads the optional fields: natt, tunnel TTL and DF, an empty or null IV, a backend', () => {
    const example = contractExample();
    const config = parseSaJson({
      ...example,
      natt: { srcPort: 4500, dstPort: 4501 },
      tunnel: { src: '198.18.0.1', dst: '198.18.0.2', ttl: 9, df: 'set' },
      backend: 'noble',
      replayWindow: 0,
    });
    expect(config).toMatchObject({
      natt: { srcPort: 4500, dstPort: 4501 },
      tunnel: { src: '198.18.0.1', dst: '198.18.0.2', ttl: 9, df: 'set' },
      backend: 'noble',
      replayWindow: 0,
    });
    expect(new SecurityAssociation(config).keys.backend).toBe('noble');
    for (const iv of ['', null]) expect(parseSaJson({ ...example, iv })).not.toHaveProperty('iv');
    expect(parseSaJson({ ...example, natt: null })).not.toHaveProperty('natt');
    expect(parseSaJson({ ...example, encKey: '0xfeffe9928665731c6d6a8f9467308308cafebabe' }).encKey).toEqual(
      Buffer.from('feffe9928665731c6d6a8f9467308308cafebabe', 'hex'),
    );
  });

  describe('a wrong field is named, with the file', () => {
    const example = contractExample();
    const cases: [string, Record<string, unknown>, string][] = [
      ['spi', { spi: 0 }, '"spi" must be a number or hex string 1..0xffffffff, got 0'],
      ['spi', { spi: '0x0' }, '"spi" must be a number or hex string 1..0xffffffff, got "0x0"'],
      ['spi', { spi: 'a5f8' }, '"spi" must be a number or hex string 1..0xffffffff, got "a5f8"'],
      ['spi', { spi: 4294967296 }, '"spi" must be a number or hex string 1..0xffffffff, got 4294967296'],
      ['spi', { spi: 1.5 }, '"spi" must be a number or hex string 1..0xffffffff, got 1.5'],
      ['spi', { spi: undefined }, '"spi" must be a number or hex string 1..0xffffffff, got undefined'],
      ['mode', { mode: 'tunel' }, '"mode" must be tunnel, transport or iptfs, got "tunel"'],
      ['suite', { suite: 'aes-gcm' }, '"suite" is not a known suite, got "aes-gcm"'],
      ['suite', { suite: 16 }, '"suite" is not a known suite, got 16'],
      ['encKey', { encKey: 'abc' }, '"encKey" must be an even number of hex digits, got "abc"'],
      ['encKey', { encKey: 'zz' }, '"encKey" must be an even number of hex digits, got "zz"'],
      ['encKey', { encKey: 1234 }, '"encKey" must be a hex string, got 1234'],
      ['authKey', { authKey: ['00'] }, '"authKey" must be a hex string, got ["00"]'],
      ['esn', { esn: 'yes' }, '"esn" must be true or false, got "yes"'],
      ['seq', { seq: 1.5 }, '"seq" must be an integer (a decimal string above 2^53), got 1.5'],
      ['seq', { seq: '0x10' }, '"seq" must be an integer (a decimal string above 2^53), got "0x10"'],
      [
        'seq',
        { seq: 2 ** 53 + 2 },
        '"seq" must be an integer (a decimal string above 2^53), got 9007199254740994',
      ],
      ['iv', { iv: 'facedbaddecaf88' }, '"iv" must be an even number of hex digits, got "facedbaddecaf88"'],
      [
        'replayWindow',
        { replayWindow: -1 },
        '"replayWindow" must be a non-negative integer (0 turns anti-replay off), got -1',
      ],
      [
        'replayWindow',
        { replayWindow: '64' },
        '"replayWindow" must be a non-negative integer (0 turns anti-replay off), got "64"',
      ],
      [
        'tunnel',
        { tunnel: '198.18.0.2' },
        '"tunnel" must be {"src": "a.b.c.d", "dst": "a.b.c.d"} or null, got "198.18.0.2"',
      ],
      [
        'tunnel',
        { tunnel: { src: '198.18.0.1' } },
        '"tunnel" must be {"src": "a.b.c.d", "dst": "a.b.c.d"} or null, got {"src":"198.18.0.1"}',
      ],
      [
        'tunnel',
        { tunnel: { src: '198.18.0.1', dst: '198.18.0.2', df: 'maybe' } },
        '"tunnel" df must be copy, set or clear, got {"src":"198.18.0.1","dst":"198.18.0.2","df":"maybe"}',
      ],
      ['tfcPadTo', { tfcPadTo: '100' }, '"tfcPadTo" must be a number of bytes (0 = off), got "100"'],
      [
        'natt',
        { natt: { srcPort: 4500 } },
        '"natt" must be {"srcPort": 4500, "dstPort": 4500} or null, got {"srcPort":4500}',
      ],
      ['natt', { natt: true }, '"natt" must be {"srcPort": 4500, "dstPort": 4500} or null, got true'],
      ['backend', { backend: 'openssl' }, '"backend" must be sodium, node or noble, got "openssl"'],
    ];

    it.each(cases)('%s: %j', (_field, change, message) => {
      const path = saFile({ ...example, ...change });
      expect(() => readSaFile(path)).toThrow(`${path}: ${message}`);
    });

    it('tunnel: a TTL that is not a number is named as the tunnel field, with the file', () => {
      const path = saFile({ ...example, tunnel: { src: '198.18.0.1', dst: '198.18.0.2', ttl: '64' } });
      const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      expect(() => new SecurityAssociation(readSaFile(path))).toThrow(
        new RegExp(`^${escaped}: "tunnel" .*ttl`),
      );
    });

    it('a file that is not JSON, not one object, or not there is named too', () => {
      const broken = saFile('{"spi": 1,');
      expect(() => readSaFile(broken)).toThrow(new RegExp(`^SA file ${broken}: .*JSON`));
      const array = saFile([contractExample()]);
      expect(() => readSaFile(array)).toThrow(`${array}: expected one JSON object`);
      const nothing = join(dir, 'missing.json');
      expect(() => readSaFile(nothing)).toThrow(`SA file ${nothing}: ENOENT`);
    });
  });
});

describe('SA file field names', () => {
  it('refuses a misspelt field instead of silently using the default', () => {
    expect(() => parseSaJson({ spi: 1, mode: 'tunnel', suite: 'null', tfcpadto: 500 }, 'x.json')).toThrow(
      'x.json: unknown field "tfcpadto"; the fields are spi, mode, suite,',
    );
  });
});
