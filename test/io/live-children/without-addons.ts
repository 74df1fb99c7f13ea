/**
 * Child process for addons.test.ts, run with block-addons.cjs preloaded: the library must import and
 * work without the addons, and live I/O must say how to get them. Prints one JSON line.
 */
import * as root from '../../../src/index.js';
import * as io from '../../../src/io/index.js';
import * as stages from '../../../src/stages/index.js';

function attempt(fn: () => unknown): { kind?: string; message: string } | null {
  try {
    fn();
    return null;
  } catch (err) {
    return { kind: (err as { kind?: string }).kind, message: (err as Error).message };
  }
}

// Something that needs no addon still works: a pipeline over a file-less source.
const out: number[] = [];
await stages.runStage(
  [{ data: Buffer.from([1, 2, 3]), ts: 0n, link: 1 }],
  stages.pipeline(stages.passThrough()),
  (p) => out.push(p.data.length),
);

process.stdout.write(
  `${JSON.stringify({
    imported: typeof root === 'object' && typeof io.LiveCapture === 'function',
    piped: out,
    capture: attempt(() => new io.LiveCapture({ interface: 'lo' })),
    frameSink: attempt(() => new io.FrameSink({ interface: 'lo' })),
    rawSink: attempt(() => new io.RawIpv4Sink()),
    interfaces: attempt(() => io.listInterfaces()),
  })}\n`,
);
