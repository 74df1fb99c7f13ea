/**
 * The optional native addons live I/O rests on, loaded only when first needed so the rest of pktveil
 * imports and runs without them: `cap` (libpcap: capture and sending whole frames) and `raw-socket`
 * (raw IPv4 sockets). The types below describe the parts of their APIs pktveil uses (cap 0.2.1,
 * raw-socket 1.8).
 */
import { createRequire } from 'node:module';
import { errorText, LiveIoError } from './live-io-error.js';

/** One interface as cap's deviceList() (pcap_findalldevs) reports it. */
export interface CapDevice {
  name: string;
  description?: string;
  addresses: { addr?: string; netmask?: string; broadaddr?: string; dstaddr?: string }[];
  flags?: string;
}

/**
 * A libpcap handle. `open` starts capturing at once (promiscuous, snaplen 65535, immediate mode) and
 * returns cap's name for the link type; each packet is copied into `buffer` (the one given to open,
 * reused for every packet) and announced as `('packet', nbytes, truncated)`, with no timestamp.
 */
export interface CapHandle {
  open(device: string, filter: string, bufferSize: number, buffer: Buffer): string;
  close(): boolean;
  send(buffer: Buffer, length?: number): void;
  on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): this;
  removeAllListeners(event?: string): this;
}

export interface CapModule {
  Cap: {
    new (): CapHandle;
    deviceList(): CapDevice[];
    findDevice(ip?: string): string | undefined;
  };
}

/** raw-socket's Socket: sends are queued and completed from the event loop, results by callback. */
export interface RawSocket {
  send(
    buffer: Buffer,
    offset: number,
    length: number,
    address: string,
    afterSend: (error: Error | null, bytes: number) => void,
  ): this;
  setOption(level: number, option: number, value: number): void;
  setOption(level: number, option: number, value: Buffer, length: number): void;
  close(): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: 'close', listener: () => void): this;
  pauseRecv(): this;
}

export interface RawSocketModule {
  createSocket(options: { protocol?: number; addressFamily?: number; bufferSize?: number }): RawSocket;
  AddressFamily: { IPv4: number; IPv6: number };
  SocketLevel: { SOL_SOCKET: number; IPPROTO_IP: number; IPPROTO_IPV6: number };
  SocketOption: { SO_BROADCAST: number; SO_BINDTODEVICE?: number; SO_SNDBUF: number; IP_HDRINCL: number };
}

/** How to get each addon working, for the error when it will not load. */
const HOW_TO_ENABLE = {
  cap: {
    purpose: "live capture and frame injection need the optional 'cap' addon",
    fix: 'it builds against libpcap: apt-get install libpcap-dev && npm rebuild cap (or npm install cap if it is not installed)',
  },
  'raw-socket': {
    purpose: "raw IPv4 injection needs the optional 'raw-socket' addon",
    fix: 'it needs a C++ toolchain to build: apt-get install build-essential python3 && npm rebuild raw-socket (or npm install raw-socket if it is not installed)',
  },
} as const;

export type AddonName = keyof typeof HOW_TO_ENABLE;

type Require = (id: string) => unknown;

const nodeRequire: Require = createRequire(import.meta.url);
const loaded = new Map<AddonName, unknown>();

/**
 * Loads an optional addon once (later calls return the same module). Throws a LiveIoError of kind
 * 'addon-missing' naming the fix when it is absent or its native part is not built. `load` replaces
 * Node's require, for tests.
 */
export function loadAddon<T>(name: AddonName, load: Require = nodeRequire): T {
  const cached = loaded.get(name);
  if (cached !== undefined && load === nodeRequire) return cached as T;
  let mod: unknown;
  try {
    mod = load(name);
  } catch (err) {
    const { purpose, fix } = HOW_TO_ENABLE[name];
    throw new LiveIoError(
      'addon-missing',
      `${purpose}, which did not load (${firstLine(errorText(err))}); ${fix}`,
      {
        cause: err,
      },
    );
  }
  if (load === nodeRequire) loaded.set(name, mod);
  return mod as T;
}

export function loadCap(): CapModule {
  return loadAddon<CapModule>('cap');
}

export function loadRawSocket(): RawSocketModule {
  return loadAddon<RawSocketModule>('raw-socket');
}

/** Names of the interfaces libpcap can open (cap's deviceList), or null when it cannot list them. */
export function capDeviceNames(cap: CapModule): string[] | null {
  try {
    return cap.Cap.deviceList().map((d) => d.name);
  } catch {
    return null;
  }
}

function firstLine(text: string): string {
  const nl = text.indexOf('\n');
  return nl < 0 ? text : text.slice(0, nl);
}
