/**
 * How figures leave a benchmark: JSON lines on stdout (`--json`, the contract in contracts/cli.md) or a
 * table for people. Notes (skipped baselines, progress) go to stderr so stdout stays parseable.
 */

/** One figure measured beside its baseline in the same run. `ratio` is always value / baselineValue. */
export interface Figure {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
}

/** Extra words for the table only (spread, sample counts); never part of the JSON line. */
export interface FigureDetail {
  detail?: string;
}

/**
 * Whole numbers stay exact (byte counts); large rates are rounded to whole units and small ones to 6
 * significant digits, which is more than any of these measurements can claim.
 */
function round(value: number): number {
  if (!Number.isFinite(value) || Number.isInteger(value)) return value;
  return Math.abs(value) >= 1e5 ? Math.round(value) : Number(value.toPrecision(6));
}

export function figure(
  name: string,
  unit: string,
  value: number,
  baseline: string,
  baselineValue: number,
): Figure {
  return {
    name,
    unit,
    value: round(value),
    baseline,
    baselineValue: round(baselineValue),
    ratio: round(value / baselineValue),
  };
}

/** The JSON line for a figure, keys in the contract's order. */
export function jsonLine(f: Figure): string {
  return JSON.stringify({
    name: f.name,
    unit: f.unit,
    value: f.value,
    baseline: f.baseline,
    baselineValue: f.baselineValue,
    ratio: f.ratio,
  });
}

export class Reporter {
  private readonly rows: (Figure & FigureDetail)[] = [];

  constructor(
    readonly json: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  /** Emits a figure at once in JSON mode; keeps it for the table otherwise. */
  figure(f: Figure, extra: FigureDetail = {}): void {
    if (this.json) this.out.write(`${jsonLine(f)}\n`);
    else this.rows.push({ ...f, ...extra });
  }

  /** A line for people: why a baseline was skipped, what is being measured now. */
  note(text: string): void {
    this.err.write(`# ${text}\n`);
  }

  /** Prints the table of every figure kept (nothing in JSON mode). */
  finish(): void {
    if (this.json || this.rows.length === 0) return;
    const header = ['benchmark', 'value', 'unit', 'baseline', 'baseline value', 'ratio', 'detail'];
    const lines = this.rows.map((r) => [
      r.name,
      formatNumber(r.value),
      r.unit,
      r.baseline,
      formatNumber(r.baselineValue),
      `${formatNumber(r.ratio)}×`,
      r.detail ?? '',
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    // Text columns align left, numbers right.
    const numeric = [false, true, false, false, true, true, false];
    const format = (cells: string[]) =>
      cells
        .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd();
    this.out.write(`${format(header)}\n${format(widths.map((w) => '-'.repeat(w)))}\n`);
    for (const l of lines) this.out.write(`${format(l)}\n`);
  }
}

/** Thousands grouped for big figures, three decimals for small ones. */
function formatNumber(v: number): string {
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return Number(v.toFixed(3)).toString();
}
