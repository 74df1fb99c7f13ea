/**
 * The configuration file of `pktveil agent` (JSON, one object), parsed and checked into what the agents
 * take. Two roles:
 *
 * host — an end host of a broadcast subnet:
 *   { "role": "host", "mode": "advanced" | "basic",
 *     "interface": "eth0",              subnet-side interface: replies are captured and packets sent here
 *     "outboundInterface": "pktveil0",  where the peers' routes point (a dummy interface): apps' packets
 *     "subnet": "198.18.5.0/24",        the subnet (its broadcast address is the source of everything sent)
 *     "address": "198.18.5.7",          this host's own address in it
 *     "protocol": 253,                  IP protocol of the anonymity layer (advanced mode)
 *     "peers": [ { "name": "server", "address": "198.18.9.2",
 *                  "secret": "<hex, ≥ 16 bytes>" | "secretFile": "<path of a file holding the hex>",
 *                  "listenSid": "<16 hex digits>" } ],      secret and listenSid: advanced mode only
 *     "rotation": { "packets": 1000, "ms": 10000 },          0 = not by that measure
 *     "minPacketsPerSid": 8,             default 8, or rotation.packets when smaller
 *     "idleTimeoutMs": 120000,
 *     "prefilter": "sids" | "protocol",  kernel filter: exact per SID/tuple (default), or protocol only
 *     "delivery": "stack" | { "file": "inner.pcap" },
 *     "sidLog": "<path>" }               optional: every SID used, written at exit
 *
 * responder — the server side of advanced mode:
 *   { "role": "responder", "address": "198.18.9.2",
 *     "replyInterface": "pktveil0",      where the routes to the virtual clients point (a dummy interface)
 *     "virtualClients": "198.18.99.0/24", session-NAT pool: one address per client session
 *     "listenSid": "<16 hex digits>", "protocol": 253,
 *     "peers": [ { "name": "h1", "secret": "<hex>" | "secretFile": "<path>" } ],
 *     "rotation", "minPacketsPerSid", "idleTimeoutMs", "delivery", "sidLog" as for a host }
 *
 * Both ends derive the keys from a peer's secret with HKDF (keys.ts; context "pktveil agent"); the host is
 * the initiator. Every message of a ConfigError names the field (`peers[0].secret`) and what to write.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseIpv4 } from '../codec/ip-address.js';
import { BroadcastSubnet } from './broadcast-subnet.js';
import { ANON_MIN_SECRET_LENGTH } from './keys.js';
import type { Sid } from './sid.js';

/** A mistake in the configuration: the message names the field. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type AgentMode = 'advanced' | 'basic';
export type AgentDelivery = { kind: 'stack' } | { kind: 'file'; path: string };

export interface AgentRotation {
  packets: number;
  ms: number;
}

interface CommonConfig {
  protocol: number;
  rotation: AgentRotation;
  minPacketsPerSid: number;
  idleTimeoutMs: number;
  delivery: AgentDelivery;
  sidLog: string | null;
}

export interface HostPeerConfig {
  name: string;
  address: number;
  /** Advanced mode: the shared secret and the server's listen SID; null in basic mode. */
  secret: Uint8Array | null;
  listenSid: Sid | null;
}

export interface HostAgentConfig extends CommonConfig {
  role: 'host';
  mode: AgentMode;
  interface: string;
  outboundInterface: string;
  subnet: BroadcastSubnet;
  address: number;
  peers: HostPeerConfig[];
  prefilter: 'sids' | 'protocol';
}

export interface ResponderPeerConfig {
  name: string;
  secret: Uint8Array;
}

export interface ResponderAgentConfig extends CommonConfig {
  role: 'responder';
  address: number;
  replyInterface: string;
  virtualClients: BroadcastSubnet;
  listenSid: Sid;
  peers: ResponderPeerConfig[];
}

export type AgentConfig = HostAgentConfig | ResponderAgentConfig;

export interface ParseConfigOptions {
  /** Directory relative paths (secretFile, delivery file, sidLog) are taken from; default the cwd. */
  baseDir?: string;
  /** Reads a secret file (default: fs.readFileSync as UTF-8). */
  readFile?: (path: string) => string;
}

type Obj = Record<string, unknown>;

const HOST_KEYS = [
  'role',
  'mode',
  'interface',
  'outboundInterface',
  'subnet',
  'address',
  'protocol',
  'peers',
  'rotation',
  'minPacketsPerSid',
  'idleTimeoutMs',
  'prefilter',
  'delivery',
  'sidLog',
];
const RESPONDER_KEYS = [
  'role',
  'address',
  'replyInterface',
  'virtualClients',
  'listenSid',
  'protocol',
  'peers',
  'rotation',
  'minPacketsPerSid',
  'idleTimeoutMs',
  'delivery',
  'sidLog',
];

/** Parses the text of a configuration file. Throws ConfigError naming the field that is wrong. */
export function parseAgentConfig(text: string, options: ParseConfigOptions = {}): AgentConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`not valid JSON: ${(err as Error).message}`);
  }
  const o = object(json, 'the configuration');
  const role = o.role;
  if (role === 'host') return parseHost(o, options);
  if (role === 'responder') return parseResponder(o, options);
  throw new ConfigError(`role must be "host" or "responder", got ${JSON.stringify(role)}`);
}

function parseHost(o: Obj, options: ParseConfigOptions): HostAgentConfig {
  unknownKeys(o, HOST_KEYS, '');
  const mode = o.mode ?? 'advanced';
  if (mode !== 'advanced' && mode !== 'basic')
    throw new ConfigError(`mode must be "advanced" or "basic", got ${JSON.stringify(mode)}`);
  const subnet = subnetField(o, 'subnet');
  const address = addressField(o, 'address');
  if (!subnet.isHost(address))
    throw new ConfigError(`address ${o.address} is not a host address of subnet ${subnet}`);
  const peersRaw = o.peers;
  if (!Array.isArray(peersRaw) || peersRaw.length === 0)
    throw new ConfigError('peers must be a non-empty array of { "name", "address", … }');
  const names = new Set<string>();
  const addresses = new Set<number>();
  const peers = peersRaw.map((raw, i): HostPeerConfig => {
    const where = `peers[${i}]`;
    const p = object(raw, where);
    unknownKeys(p, ['name', 'address', 'secret', 'secretFile', 'listenSid'], `${where}.`);
    const name = nameField(p, where, names);
    const peerAddress = addressField(p, 'address', where);
    if (subnet.contains(peerAddress))
      throw new ConfigError(
        `${where}.address ${p.address} lies inside the subnet ${subnet}: peers are reached through the router`,
      );
    if (addresses.has(peerAddress)) throw new ConfigError(`${where}.address ${p.address} appears twice`);
    addresses.add(peerAddress);
    if (mode === 'basic') {
      if (p.secret !== undefined || p.secretFile !== undefined || p.listenSid !== undefined)
        throw new ConfigError(
          `${where}: basic mode has no anonymity header; remove secret, secretFile and listenSid`,
        );
      return { name, address: peerAddress, secret: null, listenSid: null };
    }
    return {
      name,
      address: peerAddress,
      secret: secretField(p, where, options),
      listenSid: sidField(p, 'listenSid', where),
    };
  });
  const prefilter = o.prefilter ?? 'sids';
  if (prefilter !== 'sids' && prefilter !== 'protocol')
    throw new ConfigError(`prefilter must be "sids" or "protocol", got ${JSON.stringify(prefilter)}`);
  return {
    role: 'host',
    mode,
    interface: stringField(o, 'interface'),
    outboundInterface: stringField(o, 'outboundInterface'),
    subnet,
    address,
    peers,
    prefilter,
    ...common(o, options),
  };
}

function parseResponder(o: Obj, options: ParseConfigOptions): ResponderAgentConfig {
  unknownKeys(o, RESPONDER_KEYS, '');
  const peersRaw = o.peers;
  if (!Array.isArray(peersRaw) || peersRaw.length === 0)
    throw new ConfigError('peers must be a non-empty array of { "name", "secret" | "secretFile" }');
  const names = new Set<string>();
  const peers = peersRaw.map((raw, i): ResponderPeerConfig => {
    const where = `peers[${i}]`;
    const p = object(raw, where);
    unknownKeys(p, ['name', 'secret', 'secretFile'], `${where}.`);
    return { name: nameField(p, where, names), secret: secretField(p, where, options) };
  });
  const virtualClients = subnetField(o, 'virtualClients');
  const address = addressField(o, 'address');
  if (virtualClients.contains(address))
    throw new ConfigError(`address ${o.address} lies inside virtualClients ${virtualClients}`);
  return {
    role: 'responder',
    address,
    replyInterface: stringField(o, 'replyInterface'),
    virtualClients,
    listenSid: sidField(o, 'listenSid', ''),
    peers,
    ...common(o, options),
  };
}

function common(o: Obj, options: ParseConfigOptions): CommonConfig {
  const protocol = integerField(o, 'protocol', 253, 0, 255);
  const rotationRaw = o.rotation === undefined ? {} : object(o.rotation, 'rotation');
  unknownKeys(rotationRaw, ['packets', 'ms'], 'rotation.');
  const rotation = {
    packets: integerField(rotationRaw, 'packets', 1000, 0, 2 ** 31, 'rotation.'),
    ms: integerField(rotationRaw, 'ms', 10_000, 0, 2 ** 31, 'rotation.'),
  };
  const minPacketsPerSid = integerField(
    o,
    'minPacketsPerSid',
    Math.min(8, rotation.packets || 8),
    1,
    2 ** 31,
  );
  if (rotation.packets !== 0 && rotation.packets < minPacketsPerSid)
    throw new ConfigError(
      `rotation.packets ${rotation.packets} is below minPacketsPerSid ${minPacketsPerSid}; raise it or lower minPacketsPerSid`,
    );
  return {
    protocol,
    rotation,
    minPacketsPerSid,
    idleTimeoutMs: integerField(o, 'idleTimeoutMs', 120_000, 0, 2 ** 31),
    delivery: deliveryField(o, options),
    sidLog: o.sidLog === undefined ? null : path(stringField(o, 'sidLog'), options),
  };
}

function deliveryField(o: Obj, options: ParseConfigOptions): AgentDelivery {
  const d = o.delivery ?? 'stack';
  if (d === 'stack') return { kind: 'stack' };
  if (typeof d === 'object' && d !== null && !Array.isArray(d)) {
    const f = d as Obj;
    unknownKeys(f, ['file'], 'delivery.');
    if (typeof f.file === 'string' && f.file !== '') return { kind: 'file', path: path(f.file, options) };
  }
  throw new ConfigError(`delivery must be "stack" or { "file": "PATH.pcap" }, got ${JSON.stringify(d)}`);
}

function secretField(p: Obj, where: string, options: ParseConfigOptions): Uint8Array {
  if ((p.secret === undefined) === (p.secretFile === undefined))
    throw new ConfigError(`${where}: give exactly one of secret (hex) and secretFile (a path)`);
  let text: string;
  let what: string;
  if (p.secret !== undefined) {
    if (typeof p.secret !== 'string') throw new ConfigError(`${where}.secret must be a hex string`);
    text = p.secret;
    what = `${where}.secret`;
  } else {
    if (typeof p.secretFile !== 'string' || p.secretFile === '')
      throw new ConfigError(`${where}.secretFile must be a path`);
    const file = path(p.secretFile, options);
    try {
      text = (options.readFile ?? ((f: string) => readFileSync(f, 'utf8')))(file);
    } catch (err) {
      throw new ConfigError(`${where}.secretFile ${file} cannot be read: ${(err as Error).message}`);
    }
    what = `${where}.secretFile ${file}`;
  }
  const hex = text.trim();
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new ConfigError(`${what} must be hex digits (an even number)`);
  if (hex.length / 2 < ANON_MIN_SECRET_LENGTH)
    throw new ConfigError(
      `${what} is ${hex.length / 2} bytes; give at least ${ANON_MIN_SECRET_LENGTH} (openssl rand -hex 32)`,
    );
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function sidField(o: Obj, key: string, where: string): Sid {
  const v = o[key];
  const name = where ? `${where}.${key}` : key;
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{16}$/.test(v))
    throw new ConfigError(`${name} must be a session ID of 16 hex digits, got ${JSON.stringify(v)}`);
  const sid = BigInt(`0x${v}`);
  if (sid === 0n) throw new ConfigError(`${name} must not be 0`);
  return sid;
}

function nameField(p: Obj, where: string, names: Set<string>): string {
  const name = p.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name))
    throw new ConfigError(`${where}.name must be 1-64 of [A-Za-z0-9_.-], got ${JSON.stringify(name)}`);
  if (names.has(name)) throw new ConfigError(`${where}.name "${name}" appears twice`);
  names.add(name);
  return name;
}

function object(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ConfigError(`${what} must be a JSON object`);
  return v as Obj;
}

function unknownKeys(o: Obj, known: string[], prefix: string): void {
  for (const k of Object.keys(o))
    if (!known.includes(k))
      throw new ConfigError(
        `unknown field ${prefix}${k} (known: ${known.map((x) => prefix + x).join(', ')})`,
      );
}

function stringField(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${key} must be a non-empty string`);
  return v;
}

function addressField(o: Obj, key: string, where = ''): number {
  const v = o[key];
  const name = where ? `${where}.${key}` : key;
  if (typeof v !== 'string') throw new ConfigError(`${name} must be an IPv4 address string ("198.18.5.7")`);
  try {
    return parseIpv4(v);
  } catch {
    throw new ConfigError(`${name} ${JSON.stringify(v)} is not an IPv4 address`);
  }
}

function subnetField(o: Obj, key: string): BroadcastSubnet {
  const v = o[key];
  if (typeof v !== 'string') throw new ConfigError(`${key} must be a subnet string ("198.18.5.0/24")`);
  try {
    return BroadcastSubnet.parse(v);
  } catch (err) {
    throw new ConfigError(`${key}: ${(err as Error).message}`);
  }
}

function integerField(o: Obj, key: string, fallback: number, min: number, max: number, prefix = ''): number {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new ConfigError(
      `${prefix}${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
    );
  return v;
}

function path(p: string, options: ParseConfigOptions): string {
  return isAbsolute(p) ? p : resolve(options.baseDir ?? process.cwd(), p);
}
