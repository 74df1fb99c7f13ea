/** Runs the pktveil CLI from source (through tsx), so tests never see a stale build. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cliMain = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', cliMain, ...args],
      { maxBuffer: 1 << 28, timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `pktveil inspect FILE --json`, parsed: one object per packet. */
export async function inspectJson(file: string): Promise<Record<string, unknown>[]> {
  const r = await runCli(['inspect', file, '--json']);
  if (r.code !== 0) throw new Error(`pktveil inspect exited ${r.code}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
}
