/**
 * What the benchmark format tests share: running bench/run.ts, reading its --json lines, and the bench
 * contract every figure must keep (contracts/cli.md, `bench`): exactly name, unit, value, baseline,
 * baselineValue, ratio, with positive finite numbers and ratio = value / baselineValue.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

export const FIGURE_KEYS = ['name', 'unit', 'value', 'baseline', 'baselineValue', 'ratio'];

export interface BenchOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** `node [nodeFlags] --import tsx bench/run.ts ARGS` from the project root; a non-zero exit is returned, not thrown. */
export async function runBench(
  args: string[],
  timeoutMs: number,
  nodeFlags: string[] = [],
): Promise<BenchOutcome> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [...nodeFlags, '--import', 'tsx', 'bench/run.ts', ...args],
      { cwd: root, timeout: timeoutMs, maxBuffer: 16 << 20 },
    );
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** One figure per non-empty stdout line. */
export function parseFigures(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every figure keeps the contract: its keys in order, strings and positive finite numbers, a true ratio. */
export function expectWellFormed(figures: readonly Record<string, unknown>[]): void {
  for (const f of figures) {
    expect(Object.keys(f)).toEqual(FIGURE_KEYS);
    expect(typeof f.name).toBe('string');
    expect(typeof f.unit).toBe('string');
    expect(typeof f.baseline).toBe('string');
    for (const key of ['value', 'baselineValue', 'ratio']) {
      const v = f[key];
      expect(typeof v === 'number' && Number.isFinite(v) && v > 0, `${String(f.name)}.${key} = ${v}`).toBe(
        true,
      );
    }
    const ratio = (f.value as number) / (f.baselineValue as number);
    expect(Math.abs((f.ratio as number) - ratio) / ratio, `${String(f.name)} ratio`).toBeLessThan(1e-4);
  }
}

/** Whether the optional sodium-native addon loads here (then it offers ChaCha20-Poly1305). */
export function sodiumLoads(): boolean {
  try {
    createRequire(import.meta.url)('sodium-native');
    return true;
  } catch {
    return false;
  }
}
