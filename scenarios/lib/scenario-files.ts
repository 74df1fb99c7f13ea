/**
 * What each scenario orchestrator sets up the same way: a directory for its files, and one cleanup that
 * runs once, at the end or on SIGINT/SIGTERM.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The scenario's directory: PKTVEIL_CAPTURE_DIR when set (made if missing, kept afterwards), else a fresh
 * temporary directory `removeDir` deletes.
 */
export function scenarioDir(prefix: string): { dir: string; removeDir: () => void } {
  const kept = process.env.PKTVEIL_CAPTURE_DIR;
  if (kept) {
    mkdirSync(kept, { recursive: true });
    return { dir: kept, removeDir: () => {} };
  }
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, removeDir: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `steps` wrapped to run at most once, and run on SIGINT/SIGTERM before exiting with 130. */
export function cleanupOnce(steps: () => void, log: (text: string) => void): () => void {
  let cleaned = false;
  const cleanup = (): void => {
    if (cleaned) return;
    cleaned = true;
    steps();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      log(`${signal}: cleaning up`);
      cleanup();
      process.exit(130);
    });
  return cleanup;
}
