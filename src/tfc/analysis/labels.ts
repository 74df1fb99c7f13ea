/**
 * Labels for a capture: which class of traffic was on the wire when, in the format of `pktveil analyze
 * --labels` (contracts/cli.md):
 *
 *   {"windowSeconds":1,"windows":[{"start":"1700000000.5","end":"1700000010.5","class":"voip"}]}
 *
 * Times are "<seconds>[.<fraction>]" since the Unix epoch, as `pktveil inspect` prints them, parsed exactly
 * to nanoseconds (no float rounding of the seconds); windows are half-open [start, end) and must not
 * overlap. `windowSeconds` is the length of the sub-windows each labelled window is cut into (the
 * classifier's samples).
 */
import { formatTimestamp } from '../../codec/describe.js';

export interface LabelWindow {
  /** Nanoseconds since the epoch. */
  start: bigint;
  end: bigint;
  class: string;
}

export interface Labels {
  /** Sub-window length in nanoseconds. */
  windowNs: bigint;
  /** Sorted by start, non-overlapping. */
  windows: LabelWindow[];
}

/** The JSON form, as read from and written to label files. */
export interface LabelsJson {
  windowSeconds: number | string;
  windows: { start: string; end: string; class: string }[];
}

const TIMESTAMP = /^(\d+)(?:\.(\d{1,9}))?$/;

/** "<seconds>[.<fraction>]" (up to 9 fraction digits) as nanoseconds; throws naming the text otherwise. */
export function parseTimestamp(text: string): bigint {
  const m = TIMESTAMP.exec(text);
  if (!m) {
    const why = /^\d+\.\d{10,}$/.test(text) ? ' (at most 9 fraction digits: nanoseconds)' : '';
    throw new Error(`${JSON.stringify(text)} is not a time in "<seconds>[.<fraction>]" form${why}`);
  }
  return BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** Checks a parsed label file; errors name `source` and the offending entry. */
export function parseLabels(json: unknown, source: string): Labels {
  const fail = (what: string): never => {
    throw new Error(`labels ${source}: ${what}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    fail('expected an object {"windowSeconds":N,"windows":[…]}');
  const obj = json as Record<string, unknown>;
  for (const key of Object.keys(obj))
    if (key !== 'windowSeconds' && key !== 'windows')
      fail(`unknown field '${key}' (the fields are windowSeconds and windows)`);
  const windowNs = parseDuration(obj.windowSeconds, fail);
  if (!Array.isArray(obj.windows) || obj.windows.length === 0) fail('windows must be a non-empty array');
  const windows = (obj.windows as unknown[]).map((entry, i): LabelWindow => {
    const where = `windows[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      fail(`${where} must be an object {"start","end","class"}`);
    const w = entry as Record<string, unknown>;
    for (const key of Object.keys(w))
      if (key !== 'start' && key !== 'end' && key !== 'class')
        fail(`${where}: unknown field '${key}' (the fields are start, end and class)`);
    const time = (field: 'start' | 'end'): bigint => {
      const v = w[field];
      if (typeof v !== 'string') fail(`${where}.${field} must be a string "<seconds>.<fraction>"`);
      try {
        return parseTimestamp(v as string);
      } catch (err) {
        return fail(`${where}.${field}: ${(err as Error).message}`);
      }
    };
    const start = time('start');
    const end = time('end');
    if (end <= start) fail(`${where}: end ${w.end} is not after start ${w.start}`);
    if (typeof w.class !== 'string' || w.class.length === 0)
      fail(`${where}.class must be a non-empty string`);
    return { start, end, class: w.class as string };
  });
  const sorted = [...windows].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (b.start < a.end)
      fail(
        `windows overlap: [${formatTimestamp(a.start)}, ${formatTimestamp(a.end)}) '${a.class}' and ` +
          `[${formatTimestamp(b.start)}, ${formatTimestamp(b.end)}) '${b.class}'`,
      );
  }
  return { windowNs, windows: sorted };
}

function parseDuration(v: unknown, fail: (what: string) => never): bigint {
  let ns: bigint | null = null;
  if (typeof v === 'string') {
    try {
      ns = parseTimestamp(v);
    } catch {
      ns = null;
    }
  } else if (typeof v === 'number' && Number.isFinite(v) && v > 0) {
    // A JSON number like 0.1 is not exact in binary; nanoseconds are what it means.
    ns = BigInt(Math.round(v * 1e9));
  }
  if (ns === null || ns <= 0n)
    return fail(
      `windowSeconds must be a positive number of seconds (at least 1 ns), got ${JSON.stringify(v)}`,
    );
  return ns;
}

/** Labels in their JSON form. */
export function labelsToJson(labels: Labels): LabelsJson {
  return {
    windowSeconds: Number(labels.windowNs) / 1e9,
    windows: labels.windows.map((w) => ({
      start: formatTimestamp(w.start),
      end: formatTimestamp(w.end),
      class: w.class,
    })),
  };
}
