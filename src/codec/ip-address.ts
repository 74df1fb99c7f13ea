/**
 * Text forms of IPv4 and IPv6 addresses: formatting for humans and JSON, parsing for configuration.
 *
 * Formatting never throws (any 32-bit value or 16 bytes is an address). Parsing is for text a person
 * or a config file wrote, so a bad address is a programmer error and throws with the offending text.
 */

/** Dotted-quad text of an IPv4 address held as an unsigned 32-bit number ("198.18.0.1"). */
export function ipv4String(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** The IPv4 address stored big-endian at buf[off, off+4) as an unsigned 32-bit number. */
export function readIpv4(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

/** Stores an IPv4 address (unsigned 32-bit number) big-endian at buf[off, off+4). */
export function writeIpv4(buf: Uint8Array, off: number, addr: number): void {
  buf[off] = addr >>> 24;
  buf[off + 1] = (addr >>> 16) & 0xff;
  buf[off + 2] = (addr >>> 8) & 0xff;
  buf[off + 3] = addr & 0xff;
}

const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * The IPv4 address in dotted-quad text as an unsigned 32-bit number. Only the four-part decimal form
 * is accepted: leading zeros are refused because inet_aton would read them as octal.
 */
export function parseIpv4(text: string): number {
  const addr = tryParseIpv4(text);
  if (addr === null) throw new Error(`not an IPv4 address in dotted-quad form: ${JSON.stringify(text)}`);
  return addr;
}

function tryParseIpv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let addr = 0;
  for (const part of parts) {
    if (!DECIMAL_OCTET.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    addr = addr * 256 + octet;
  }
  return addr;
}

/**
 * RFC 5952 text of the IPv6 address at buf[off, off+16): lowercase, no leading zeros, the longest run
 * of two or more zero groups (the first on a tie) written as "::", and IPv4-mapped addresses
 * (::ffff:0:0/96) in mixed notation as §5 recommends.
 */
export function ipv6String(buf: Uint8Array, off: number): string {
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed (§4.2.2)
  let runStart = -1;
  for (let g = 0; g <= 8; g++) {
    const isZero = g < 8 && buf[off + 2 * g] === 0 && buf[off + 2 * g + 1] === 0;
    if (isZero) {
      if (runStart < 0) runStart = g;
    } else if (runStart >= 0) {
      if (g - runStart > bestLen) {
        bestStart = runStart;
        bestLen = g - runStart;
      }
      runStart = -1;
    }
  }
  if (bestStart === 0 && bestLen === 5 && buf[off + 10] === 0xff && buf[off + 11] === 0xff) {
    return `::ffff:${ipv4String(readIpv4(buf, off + 12))}`;
  }
  let text = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      text += g === 0 ? '::' : ':';
      g += bestLen - 1;
      continue;
    }
    text += ((buf[off + 2 * g]! << 8) | buf[off + 2 * g + 1]!).toString(16);
    if (g < 7) text += ':';
  }
  return text;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Writes the IPv6 address in `text` (any RFC 4291 §2.2 form) at buf[off, off+16); throws when it is not one. */
export function writeIpv6(buf: Uint8Array, off: number, text: string): void {
  if (!tryWriteIpv6(buf, off, text)) throw new Error(`not an IPv6 address: ${JSON.stringify(text)}`);
}

/** The 16 bytes of the IPv6 address in `text` (any RFC 4291 §2.2 form); throws when it is not one. */
export function parseIpv6(text: string): Buffer {
  const buf = Buffer.alloc(16);
  writeIpv6(buf, 0, text);
  return buf;
}

function tryWriteIpv6(buf: Uint8Array, off: number, text: string): boolean {
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const compressed = halves.length === 2;
  const head = parseGroups(halves[0]!, !compressed);
  const tail = compressed ? parseGroups(halves[1]!, true) : [];
  if (head === null || tail === null) return false;
  const zeros = 8 - head.length - tail.length;
  if (compressed ? zeros < 1 : zeros !== 0) return false;
  const groups = [...head, ...new Array<number>(zeros).fill(0), ...tail];
  for (let g = 0; g < 8; g++) {
    buf[off + 2 * g] = groups[g]! >>> 8;
    buf[off + 2 * g + 1] = groups[g]! & 0xff;
  }
  return true;
}

/** 16-bit groups of one side of "::"; an embedded IPv4 address may only end the address. */
function parseGroups(text: string, mayEndWithIpv4: boolean): number[] | null {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (mayEndWithIpv4 && i === parts.length - 1 && part.includes('.')) {
      const v4 = tryParseIpv4(part);
      if (v4 === null) return null;
      groups.push(v4 >>> 16, v4 & 0xffff);
    } else {
      if (!HEX_GROUP.test(part)) return null;
      groups.push(Number.parseInt(part, 16));
    }
  }
  return groups;
}
