/**
 * Throwaway network labs for system tests and live scenarios (scenarios/): network namespaces joined by
 * veth pairs or a bridge, with 198.18.0.0/15 addresses, links up and tx checksum offload off (so captured
 * checksums are the real ones).
 *
 * Every name carries this process's pid and a random tag, so parallel test files never collide.
 * `cleanup()` kills what the lab spawned and deletes its namespaces (which deletes their links); it is
 * idempotent, safe to call after a failed setup, and also runs on process exit as a last resort.
 * Use: `const lab = new NetnsLab(); afterAll(() => lab.cleanup());` inside a describeSystem(['netns', …]).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

export interface Endpoint {
  /** Namespace the interface lives in. */
  ns: string;
  ifname: string;
  /** MAC address, lowercase colon-separated, as the kernel reports it. */
  mac: string;
  /** IPv4 address without prefix length. */
  address: string;
  prefixLength: number;
}

export interface VethPair {
  a: Endpoint;
  b: Endpoint;
}

export interface LinkOptions {
  /** IPv4 addresses for the two ends (or, for a bridge, the members in order); default 198.18.<n>.<1…>. */
  addresses?: string[];
  prefixLength?: number;
  mtu?: number;
  /** Leave tx checksum offload on (default: off, so captures carry computed checksums). */
  keepTxOffload?: boolean;
  /** Turn IPv6 off on the new interfaces, so no router/neighbour solicitations show up in captures. */
  disableIpv6?: boolean;
}

export interface RunOptions {
  /** Kill the command (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this user (via runuser), e.g. 'nobody', to test what an unprivileged user sees. */
  user?: string;
  /**
   * Run without these capabilities (e.g. ['net_raw', 'net_admin']), via setpriv's bounding set: still
   * root, so the repository stays readable wherever it is checked out, but refused what they grant.
   */
  dropCapabilities?: string[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const labs = new Set<NetnsLab>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers may only do synchronous work, which is all cleanup() does.
  process.on('exit', () => {
    for (const lab of labs) lab.cleanup();
  });
}

function ip(args: string[], timeoutMs = DEFAULT_TIMEOUT_MS): string {
  return execFileSync('ip', args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Error text of a failed execFileSync, with the command's stderr. */
function describeFailure(cmd: string, args: string[], err: unknown): Error {
  const e = err as { stderr?: Buffer | string; message?: string };
  const stderr = e.stderr ? e.stderr.toString().trim() : '';
  return new Error(`${cmd} ${args.join(' ')} failed: ${stderr || e.message || String(err)}`);
}

export class NetnsLab {
  /** Unique per lab: pid in base 36 plus 4 random hex digits (≤ 10 characters). */
  readonly tag: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private links = 0;
  private subnets = 0;

  constructor() {
    this.tag = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
    labs.add(this);
    installExitHook();
  }

  /** Creates a namespace with loopback up and returns its name. */
  addNamespace(label: string): string {
    if (!/^[a-z0-9]{1,12}$/.test(label))
      throw new Error(`namespace label '${label}' must be 1-12 of [a-z0-9]`);
    const name = `pktveil-${this.tag}-${label}`;
    try {
      ip(['netns', 'add', name]);
    } catch (err) {
      throw describeFailure('ip', ['netns', 'add', name], err);
    }
    this.namespaces.push(name);
    this.ipIn(name, ['link', 'set', 'lo', 'up']);
    return name;
  }

  /** A fresh interface name, unique to this lab and ≤ 15 characters (the kernel's IFNAMSIZ - 1). */
  interfaceName(): string {
    const name = `v${this.tag}${(this.links++).toString(36)}`;
    if (name.length > 15) throw new Error(`interface name ${name} exceeds 15 characters`);
    return name;
  }

  /** A veth pair with one end in each namespace, addressed, up, tx checksum offload off. */
  addVethPair(nsA: string, nsB: string, options: LinkOptions = {}): VethPair {
    const subnet = this.subnets++;
    const prefixLength = options.prefixLength ?? 24;
    const [addrA, addrB] = options.addresses ?? [`198.18.${subnet}.1`, `198.18.${subnet}.2`];
    const ifA = this.interfaceName();
    const ifB = this.interfaceName();
    // Created directly inside the namespaces, so the root namespace never sees the names.
    this.ipRoot(['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
    const a = this.configure(nsA, ifA, addrA!, prefixLength, options);
    const b = this.configure(nsB, ifB, addrB!, prefixLength, options);
    return { a, b };
  }

  /**
   * A bridge in `bridgeNs` with one veth to each member namespace; returns the members' endpoints in
   * order (addresses 198.18.<n>.1, .2, … on one subnet). The bridge ports themselves carry no address.
   */
  addBridge(bridgeNs: string, members: string[], options: LinkOptions = {}): Endpoint[] {
    const subnet = this.subnets++;
    const prefixLength = options.prefixLength ?? 24;
    const bridge = this.interfaceName();
    this.ipIn(bridgeNs, ['link', 'add', bridge, 'type', 'bridge']);
    if (options.disableIpv6) this.exec(bridgeNs, 'sysctl', ['-qw', `net.ipv6.conf.${bridge}.disable_ipv6=1`]);
    this.ipIn(bridgeNs, ['link', 'set', bridge, 'up']);
    return members.map((ns, i) => {
      const port = this.interfaceName();
      const inner = this.interfaceName();
      this.ipRoot([
        'link',
        'add',
        port,
        'netns',
        bridgeNs,
        'type',
        'veth',
        'peer',
        'name',
        inner,
        'netns',
        ns,
      ]);
      this.ipIn(bridgeNs, ['link', 'set', port, 'master', bridge]);
      if (options.mtu) this.ipIn(bridgeNs, ['link', 'set', port, 'mtu', String(options.mtu)]);
      if (options.disableIpv6) this.exec(bridgeNs, 'sysctl', ['-qw', `net.ipv6.conf.${port}.disable_ipv6=1`]);
      this.ipIn(bridgeNs, ['link', 'set', port, 'up']);
      const address = options.addresses?.[i] ?? `198.18.${subnet}.${i + 1}`;
      return this.configure(ns, inner, address, prefixLength, options);
    });
  }

  /** Runs `ip -n ns …` and returns its stdout; throws with ip's stderr on failure. */
  ipIn(ns: string, args: string[]): string {
    return this.ipRoot(['-n', ns, ...args]);
  }

  /** Runs a command inside `ns` and waits for it; throws (with stderr) on non-zero exit or timeout. */
  exec(ns: string, cmd: string, args: string[] = [], options: RunOptions = {}): string {
    const argv = this.argv(ns, cmd, args, options);
    try {
      return execFileSync(argv[0]!, argv.slice(1), {
        encoding: 'utf8',
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        input: options.input,
        env: options.env,
        cwd: options.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      throw describeFailure(cmd, args, err);
    }
  }

  /** Runs a command inside `ns` and resolves with its output and exit status (never rejects on failure). */
  run(ns: string, cmd: string, args: string[] = [], options: RunOptions = {}): Promise<RunResult> {
    const child = this.spawn(ns, cmd, args, options);
    return collect(child, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.input);
  }

  /**
   * Starts a command inside `ns` without waiting (stdin/stdout/stderr piped). The lab kills it in
   * cleanup() if it is still running; use `collect()` to wait for it with a timeout.
   */
  spawn(ns: string, cmd: string, args: string[] = [], options: RunOptions = {}): ChildProcess {
    const argv = this.argv(ns, cmd, args, options);
    const child = spawn(argv[0]!, argv.slice(1), {
      env: options.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  /** Kills what this lab started and deletes its namespaces. Idempotent; never throws. */
  cleanup(): void {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    this.children.clear();
    for (const ns of this.namespaces.splice(0).reverse()) {
      // Processes started inside the namespace by other means (e.g. exec's children) hold it alive;
      // the namespace name is unique to this lab, so every pid in it is ours.
      try {
        const pids = ip(['netns', 'pids', ns], 5_000).split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
      } catch {
        // Namespace already gone or ip failed; still try to delete.
      }
      try {
        ip(['netns', 'del', ns], 10_000);
      } catch {
        // Already deleted.
      }
    }
    labs.delete(this);
  }

  private ipRoot(args: string[]): string {
    try {
      return ip(args);
    } catch (err) {
      throw describeFailure('ip', args, err);
    }
  }

  private configure(
    ns: string,
    ifname: string,
    address: string,
    prefixLength: number,
    options: LinkOptions,
  ): Endpoint {
    if (options.mtu) this.ipIn(ns, ['link', 'set', ifname, 'mtu', String(options.mtu)]);
    if (options.disableIpv6) this.exec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${ifname}.disable_ipv6=1`]);
    this.ipIn(ns, ['addr', 'add', `${address}/${prefixLength}`, 'dev', ifname]);
    this.ipIn(ns, ['link', 'set', ifname, 'up']);
    if (!options.keepTxOffload) this.exec(ns, 'ethtool', ['-K', ifname, 'tx', 'off']);
    const info = JSON.parse(this.ipIn(ns, ['-j', 'link', 'show', 'dev', ifname])) as { address: string }[];
    return { ns, ifname, mac: info[0]!.address, address, prefixLength };
  }

  private argv(ns: string, cmd: string, args: string[], options: RunOptions): string[] {
    const asUser = options.user ? ['runuser', '-u', options.user, '--'] : [];
    const drop = options.dropCapabilities?.length
      ? ['setpriv', `--bounding-set=${options.dropCapabilities.map((c) => `-${c}`).join(',')}`, '--']
      : [];
    return ['ip', 'netns', 'exec', ns, ...drop, ...asUser, cmd, ...args];
  }
}

/** Waits for a child to exit, collecting its output; SIGKILLs it after `timeoutMs`. */
export function collect(
  child: ChildProcess,
  timeoutMs = DEFAULT_TIMEOUT_MS,
  input?: string | Buffer,
): Promise<RunResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code,
        signal,
        timedOut,
      });
    };
    child.once('close', finish);
    child.once('error', (e) => {
      err.push(Buffer.from(String(e)));
      finish(null, null);
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/**
 * Resolves once `child`'s output (stdout or stderr) matches `ready`, e.g. tcpdump's "listening on";
 * rejects when the child exits first or after `timeoutMs` (default 15 s).
 */
export function waitForOutput(
  child: ChildProcess,
  ready: RegExp,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (ready.test(seen)) done();
    };
    const onExit = (code: number | null) => done(new Error(`${what} exited (${code}) before ready: ${seen}`));
    const timer = setTimeout(
      () => done(new Error(`${what} not ready within ${timeoutMs} ms: ${seen}`)),
      timeoutMs,
    );
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** [command, args] that run a TypeScript file with this Node and the repository's tsx, from any cwd or user. */
export function tsxCommand(script: string, args: string[] = []): [string, string[]] {
  return [process.execPath, ['--import', tsxLoader, script, ...args]];
}

/** The last line a finished child printed on stdout, as JSON (its result); throws with its stderr when there is none. */
export function lastJson<T>(r: RunResult, what: string): T {
  const line = r.stdout.trim().split('\n').pop();
  try {
    return JSON.parse(line ?? '') as T;
  } catch {
    throw new Error(
      `${what} printed no result (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(-2000)}`,
    );
  }
}
