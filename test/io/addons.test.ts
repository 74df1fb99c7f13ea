import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/io/addons.js';
import { LiveIoError } from '../../src/io/live-io-error.js';
import { tsxCommand } from '../helpers/netns.js';

const CAP_MISSING =
  "live capture and frame injection need the optional 'cap' addon, which did not load (Cannot find module 'cap'); it builds against libpcap: apt-get install libpcap-dev && npm rebuild cap (or npm install cap if it is not installed)";
const RAW_MISSING =
  "raw IPv4 injection needs the optional 'raw-socket' addon, which did not load (Cannot find module 'raw-socket'); it needs a C++ toolchain to build: apt-get install build-essential python3 && npm rebuild raw-socket (or npm install raw-socket if it is not installed)";

function missing(id: string): never {
  throw Object.assign(new Error(`Cannot find module '${id}'\nRequire stack:\n- /somewhere`), {
    code: 'MODULE_NOT_FOUND',
  });
}

describe('optional addons', () => {
  it('names the fix when an addon does not load', () => {
    let thrown: unknown;
    try {
      loadAddon('cap', missing);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(LiveIoError);
    expect(thrown).toMatchObject({ kind: 'addon-missing', message: CAP_MISSING });
    expect(() => loadAddon('raw-socket', missing)).toThrow(RAW_MISSING);
  });

  it('names a native part that was not built', () => {
    const unbuilt = () => {
      throw new Error("Cannot find module '../build/Release/cap.node'");
    };
    expect(() => loadAddon('cap', unbuilt)).toThrow(
      "did not load (Cannot find module '../build/Release/cap.node')",
    );
  });

  it('lets the library import and run without them, and live I/O say how to get them', async () => {
    const child = fileURLToPath(new URL('./live-children/without-addons.ts', import.meta.url));
    const blocker = fileURLToPath(new URL('./live-children/block-addons.cjs', import.meta.url));
    const [node, args] = tsxCommand(child);
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(node, ['--require', blocker, ...args], { timeout: 30_000 }, (err, out, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(out),
      );
    });
    expect(JSON.parse(stdout)).toEqual({
      imported: true,
      piped: [3],
      capture: { kind: 'addon-missing', message: CAP_MISSING },
      frameSink: { kind: 'addon-missing', message: CAP_MISSING },
      rawSink: { kind: 'addon-missing', message: RAW_MISSING },
      interfaces: { kind: 'addon-missing', message: CAP_MISSING },
    });
  });
});
