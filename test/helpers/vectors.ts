/**
 * The shared known-answer vectors (../shared/vectors relative to the project root, one source of truth,
 * never copied into the project). A clone that does not sit beside `shared/` can point to them with
 * PKTVEIL_VECTORS_DIR; otherwise the project's ancestors and /work/shared are searched.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function candidates(): string[] {
  const dirs: string[] = [];
  if (process.env.PKTVEIL_VECTORS_DIR) dirs.push(process.env.PKTVEIL_VECTORS_DIR);
  for (let dir = projectRoot; ; dir = dirname(dir)) {
    dirs.push(join(dirname(dir), 'shared', 'vectors'));
    if (dirname(dir) === dir) break;
  }
  dirs.push('/work/shared/vectors');
  return dirs;
}

/** Absolute path of the vectors directory; throws saying where it looked when there is none. */
export function vectorsDir(): string {
  const dirs = candidates();
  const found = dirs.find((d) => existsSync(join(d, 'README.md')));
  if (!found)
    throw new Error(`known-answer vectors not found; looked in ${dirs.join(', ')} (set PKTVEIL_VECTORS_DIR)`);
  return found;
}

/** A vectors file parsed as JSON. */
export function readVectors<T>(file: string): T {
  return JSON.parse(readFileSync(join(vectorsDir(), file), 'utf8')) as T;
}
