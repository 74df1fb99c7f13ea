/**
 * Benchmarks that run the built CLI (`node dist/cli/main.js`) must not time a stale build: this finds
 * src files newer than their compiled output (or without one) and runs `npm run build` when there are.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_MAIN = join(ROOT, 'dist', 'cli', 'main.js');

function mtime(path: string): number | null {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

/** The first src/*.ts (declaration files aside) whose dist/*.js is missing or older, or null. */
export function staleSource(): string | null {
  const src = join(ROOT, 'src');
  const walk = (dir: string): string | null => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        const found = walk(path);
        if (found) return found;
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const built = mtime(join(ROOT, 'dist', relative(src, path)).replace(/\.ts$/, '.js'));
        if (built === null || built < (mtime(path) ?? 0)) return relative(ROOT, path);
      }
    }
    return null;
  };
  return walk(src);
}

/** Runs `npm run build` if dist is stale; returns what was done, for the report. Throws if the build fails. */
export function ensureFreshBuild(): string {
  const stale = staleSource();
  if (stale === null) return 'dist is up to date';
  const result = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  if (result.error) throw result.error;
  if (result.status !== 0)
    throw new Error(
      `npm run build failed (exit ${result.status}); a stale or broken dist would be timed:\n${result.stdout}${result.stderr}`,
    );
  return `built dist (${stale} was newer than its output)`;
}
