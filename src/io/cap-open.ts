/**
 * Opening a libpcap handle through cap 0.2.1 without tripping over its failure paths, and naming its
 * link types as LINKTYPE_* numbers.
 */
import { type LinkType, LinkType as LinkTypes } from '../packet.js';
import { type CapHandle, type CapModule, capDeviceNames, loadCap } from './addons.js';
import { errorText, explainFailure, LiveIoError, noSuchInterface } from './live-io-error.js';

/**
 * Handles whose `open` threw. cap 0.2.1 leaves such a handle half-initialised: closing it, or letting
 * the garbage collector destroy it, runs uv_poll_stop on a poll handle that was never started and
 * aborts the whole process. So they are kept reachable for the life of the process. When the failure
 * came after libpcap had activated the handle (a filter that does not compile), its socket and kernel
 * buffer stay open too; interfaces are checked beforehand so the common mistakes never get that far.
 */
const failedHandles: CapHandle[] = [];

/** How many failed handles are being kept alive (see above); for tests and diagnostics. */
export function failedCapHandleCount(): number {
  return failedHandles.length;
}

/** cap's names for link types (from binding.cc) and their LINKTYPE_* numbers. */
const CAP_LINK_NAMES: Record<string, LinkType> = {
  NULL: 0,
  ETHERNET: LinkTypes.ETHERNET,
  IEEE802_11_RADIO: 127,
  LINKTYPE_LINUX_SLL: LinkTypes.LINUX_SLL,
  // cap reports DLT_RAW, whose value differs by platform; the file format number is 101.
  RAW: LinkTypes.RAW,
};

/**
 * The LINKTYPE_* number for cap's link-type name. Types cap does not name come back as
 * "Unknown linktype N" with N the DLT value, which equals the LINKTYPE value for every type Linux
 * produces other than DLT_RAW (named above); null when the name is neither.
 */
export function linkTypeFromCapName(name: string): LinkType | null {
  const known = CAP_LINK_NAMES[name];
  if (known !== undefined) return known;
  const m = /^Unknown linktype (\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

export interface CapOpenRequest {
  /** What the handle is for, for messages: "live capture", "frame injection". */
  action: string;
  interface: string;
  filter: string;
  bufferSize: number;
  /** Receives every captured packet (cap copies into it; see CapHandle). */
  buffer: Buffer;
}

export interface OpenedCap {
  cap: CapModule;
  handle: CapHandle;
  /** cap's name for the link type. */
  linkName: string;
  link: LinkType;
}

/**
 * Opens a capture handle on `interface` with `filter`, or throws a LiveIoError that says what to do:
 * addon missing, no such interface (listing the ones there are), missing privileges, bad filter.
 */
export function openCap(req: CapOpenRequest): OpenedCap {
  const action = `${req.action} on ${req.interface}`;
  const cap = loadCap();
  const names = capDeviceNames(cap);
  if (names && !names.includes(req.interface)) throw noSuchInterface(req.action, req.interface, names);

  const handle = new cap.Cap();
  let linkName: string;
  try {
    linkName = handle.open(req.interface, req.filter, req.bufferSize, req.buffer);
  } catch (err) {
    failedHandles.push(handle);
    const text = errorText(err);
    if (/filter|syntax error|parse|unknown (host|port|protocol)|illegal/i.test(text) && req.filter) {
      throw new LiveIoError(
        'bad-filter',
        `${action}: the filter ${JSON.stringify(req.filter)} does not compile (${text}); it takes tcpdump/pcap-filter(7) syntax`,
        { cause: err },
      );
    }
    throw explainFailure(action, err, req.interface);
  }
  const link = linkTypeFromCapName(linkName);
  if (link === null) {
    handle.close();
    throw new LiveIoError('failed', `${action}: cap reported a link type pktveil cannot name: ${linkName}`);
  }
  return { cap, handle, linkName, link };
}
