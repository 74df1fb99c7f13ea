import { readFileSync } from 'node:fs';
import type { EspMode, SaConfig } from './sa.js';
import { isSuiteName } from './suites.js';

/**
 * The SA file of the CLI contract (contracts/cli.md, "SA file"): one JSON object per file. Parsing is for
 * text a person wrote, so every mistake throws an Error naming the file and the field.
 */
export function readSaFile(path: string): SaConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`SA file ${path}: ${(err as Error).message}`);
  }
  return parseSaJson(json, path);
}

const SA_FILE_FIELDS = [
  'spi',
  'mode',
  'suite',
  'encKey',
  'authKey',
  'esn',
  'seq',
  'iv',
  'replayWindow',
  'tunnel',
  'tfcPadTo',
  'natt',
  'backend',
];

export function parseSaJson(json: unknown, where = 'SA'): SaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error(`${where}: expected one JSON object`);
  const o = json as Record<string, unknown>;
  // A misspelt field ("tfcpadto") would otherwise silently mean its default.
  for (const key of Object.keys(o))
    if (!SA_FILE_FIELDS.includes(key))
      throw new Error(`${where}: unknown field "${key}"; the fields are ${SA_FILE_FIELDS.join(', ')}`);
  const fail = (field: string, want: string): never => {
    throw new Error(`${where}: "${field}" ${want}, got ${JSON.stringify(o[field])}`);
  };

  const spi = typeof o.spi === 'string' ? Number(o.spi) : o.spi;
  if (typeof spi !== 'number' || !Number.isInteger(spi) || spi < 1 || spi > 0xffffffff)
    fail('spi', 'must be a number or hex string 1..0xffffffff');
  const mode = o.mode;
  if (mode !== 'tunnel' && mode !== 'transport' && mode !== 'iptfs')
    fail('mode', 'must be tunnel, transport or iptfs');
  if (typeof o.suite !== 'string' || !isSuiteName(o.suite)) fail('suite', 'is not a known suite');

  const config: SaConfig = {
    spi: spi as number,
    mode: mode as EspMode,
    suite: o.suite as SaConfig['suite'],
    encKey: hexField(o, 'encKey', fail),
    authKey: hexField(o, 'authKey', fail),
  };
  if (o.esn !== undefined) {
    if (typeof o.esn !== 'boolean') fail('esn', 'must be true or false');
    config.esn = o.esn as boolean;
  }
  if (o.seq !== undefined) {
    if (
      !(typeof o.seq === 'number' && Number.isSafeInteger(o.seq)) &&
      !(typeof o.seq === 'string' && /^[0-9]+$/.test(o.seq))
    )
      fail('seq', 'must be an integer (a decimal string above 2^53)');
    config.seq = BigInt(o.seq as number | string);
  }
  if (o.iv !== undefined && o.iv !== null && o.iv !== '') config.iv = hexField(o, 'iv', fail);
  if (o.replayWindow !== undefined) {
    if (typeof o.replayWindow !== 'number' || !Number.isInteger(o.replayWindow) || o.replayWindow < 0)
      fail('replayWindow', 'must be a non-negative integer (0 turns anti-replay off)');
    config.replayWindow = o.replayWindow as number;
  }
  if (o.tunnel !== undefined && o.tunnel !== null) {
    const t = o.tunnel as Record<string, unknown>;
    if (typeof t !== 'object' || typeof t.src !== 'string' || typeof t.dst !== 'string')
      fail('tunnel', 'must be {"src": "a.b.c.d", "dst": "a.b.c.d"} or null');
    config.tunnel = { src: t.src as string, dst: t.dst as string };
    if (t.ttl !== undefined) {
      if (typeof t.ttl !== 'number') fail('tunnel', 'ttl must be a number 1..255');
      config.tunnel.ttl = t.ttl as number;
    }
    if (t.df !== undefined) {
      if (t.df !== 'copy' && t.df !== 'set' && t.df !== 'clear')
        fail('tunnel', 'df must be copy, set or clear');
      config.tunnel.df = t.df as 'copy' | 'set' | 'clear';
    }
  }
  if (o.tfcPadTo !== undefined) {
    if (typeof o.tfcPadTo !== 'number') fail('tfcPadTo', 'must be a number of bytes (0 = off)');
    config.tfcPadTo = o.tfcPadTo as number;
  }
  if (o.natt !== undefined && o.natt !== null) {
    const n = o.natt as Record<string, unknown>;
    if (typeof n !== 'object' || typeof n.srcPort !== 'number' || typeof n.dstPort !== 'number')
      fail('natt', 'must be {"srcPort": 4500, "dstPort": 4500} or null');
    config.natt = { srcPort: n.srcPort as number, dstPort: n.dstPort as number };
  }
  if (o.backend !== undefined) {
    if (o.backend !== 'sodium' && o.backend !== 'node' && o.backend !== 'noble')
      fail('backend', 'must be sodium, node or noble');
    config.backend = o.backend as SaConfig['backend'];
  }
  return config;
}

function hexField(
  o: Record<string, unknown>,
  field: string,
  fail: (f: string, w: string) => never,
): Uint8Array {
  const v = o[field] ?? '';
  if (typeof v !== 'string') return fail(field, 'must be a hex string');
  const hex = v.startsWith('0x') ? v.slice(2) : v;
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex))
    return fail(field, 'must be an even number of hex digits');
  return Buffer.from(hex, 'hex');
}
