/**
 * A host's applications in the broadcast scenario, run inside the host's namespace: a UDP conversation
 * and a TCP conversation with the server at the same time, each `messages` requests of host-specific
 * content ("h1 udp 7 <nonce>") answered by the server's echo. Sockets are bound to the host's unicast
 * address and fixed local ports (the same on every host in advanced mode, to show that the responder keeps
 * the hosts apart). Each reply is judged by its content: the expected echo is `delivered`, an echo naming
 * another host `misdelivered`, anything else `unexpected`; a request without its reply within the timeout
 * is `lost` and the conversation moves on.
 *
 * With `probe` it only sends one UDP datagram from probe.localPort to the server's probe port (the
 * tuple-conflict probe of basic mode) and exits.
 *
 * Prints one JSON line: {"name","expected","delivered","misdelivered","lost","unexpected","ms"}.
 * Input: one JSON argument (HostAppJob).
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

export interface HostAppJob {
  name: string;
  /** Names of every host of the subnet: a reply naming another is misdelivered. */
  hosts: string[];
  address: string;
  server: string;
  udpPort: number;
  tcpPort: number;
  localUdpPort: number;
  localTcpPort: number;
  messages: number;
  replyTimeoutMs: number;
  probe?: { localPort: number; port: number };
}

const job = JSON.parse(process.argv[2] ?? '{}') as HostAppJob;
const tally = { delivered: 0, misdelivered: 0, lost: 0, unexpected: 0 };

function judge(reply: string, expected: string): boolean {
  if (reply === expected) {
    tally.delivered++;
    return true;
  }
  const named = /^echo (\S+) /.exec(reply)?.[1];
  if (named !== undefined && named !== job.name && job.hosts.includes(named)) tally.misdelivered++;
  else tally.unexpected++;
  return false;
}

/** Waits for `expected` on a source of replies (pushed into `inbox`), up to the timeout. */
class Inbox {
  private readonly queue: string[] = [];
  private wake: (() => void) | null = null;
  push(reply: string): void {
    this.queue.push(reply);
    this.wake?.();
  }
  async await(expected: string): Promise<void> {
    const deadline = Date.now() + job.replyTimeoutMs;
    for (;;) {
      while (this.queue.length > 0) if (judge(this.queue.shift()!, expected)) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        tally.lost++;
        return;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }
}

function message(kind: string, k: number): string {
  return `${job.name} ${kind} ${k} ${randomBytes(6).toString('hex')}`;
}

async function udpConversation(): Promise<void> {
  const sock = createSocket('udp4');
  const inbox = new Inbox();
  sock.on('message', (msg) => inbox.push(msg.toString('latin1')));
  await new Promise<void>((resolve) => sock.bind(job.localUdpPort, job.address, resolve));
  for (let k = 0; k < job.messages; k++) {
    const m = message('udp', k);
    sock.send(m, job.udpPort, job.server);
    await inbox.await(`echo ${m}`);
  }
  sock.close();
}

async function tcpConversation(): Promise<void> {
  const inbox = new Inbox();
  const sock = connect({
    host: job.server,
    port: job.tcpPort,
    localAddress: job.address,
    localPort: job.localTcpPort,
  });
  sock.setNoDelay(true);
  let pending = '';
  sock.on('data', (chunk) => {
    pending += chunk.toString('latin1');
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      inbox.push(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
    }
  });
  const failed = new Promise<Error>((resolve) => sock.once('error', resolve));
  const connected = new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  const first = await Promise.race([connected.then(() => null), failed]);
  if (first instanceof Error) {
    tally.lost += job.messages;
    process.stderr.write(`${job.name}: tcp connect failed: ${first.message}\n`);
    return;
  }
  for (let k = 0; k < job.messages; k++) {
    const m = message('tcp', k);
    sock.write(`${m}\n`);
    await inbox.await(`echo ${m}`);
  }
  sock.end();
  sock.destroy();
}

async function main(): Promise<void> {
  const started = Date.now();
  if (job.probe) {
    const sock = createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(job.probe!.localPort, job.address, resolve));
    await new Promise<void>((resolve) =>
      sock.send(`${job.name} probe`, job.probe!.port, job.server, () => resolve()),
    );
    sock.close();
    process.stdout.write(`${JSON.stringify({ name: job.name, probe: true })}\n`);
    return;
  }
  await Promise.all([udpConversation(), tcpConversation()]);
  process.stdout.write(
    `${JSON.stringify({ name: job.name, expected: 2 * job.messages, ...tally, ms: Date.now() - started })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${job.name}: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
