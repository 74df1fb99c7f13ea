/**
 * The server's applications in the broadcast scenario, run inside the server namespace: a UDP echo and a
 * TCP line echo (each reply is "echo " + what arrived, so the content still names the host that sent it),
 * and a UDP sink that answers nothing (the basic-mode tuple-conflict probe goes there). All bound to the
 * server's address. Prints {"ready":true} once listening and, on SIGTERM, one JSON line of what it saw:
 * {"udp":N,"tcp":N,"tcpConnections":N,"probes":N,"clients":["addr:port",…]} — the clients as the server's
 * stack saw them (virtual client addresses in advanced mode, the broadcast address in basic mode).
 * Input: one JSON argument {"address","udpPort","tcpPort","probePort"}.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const job = JSON.parse(process.argv[2] ?? '{}') as {
  address: string;
  udpPort: number;
  tcpPort: number;
  probePort: number;
};
const seen = { udp: 0, tcp: 0, tcpConnections: 0, probes: 0 };
const clients = new Set<string>();

const udp = createSocket('udp4');
udp.on('message', (msg, from) => {
  seen.udp++;
  clients.add(`udp ${from.address}:${from.port}`);
  udp.send(Buffer.concat([Buffer.from('echo '), msg]), from.port, from.address);
});
const probe = createSocket('udp4');
probe.on('message', () => {
  seen.probes++;
});
const tcp = createServer((sock) => {
  seen.tcpConnections++;
  clients.add(`tcp ${sock.remoteAddress}:${sock.remotePort}`);
  let pending = '';
  sock.setNoDelay(true);
  sock.on('data', (chunk) => {
    pending += chunk.toString('latin1');
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      seen.tcp++;
      sock.write(`echo ${pending.slice(0, nl)}\n`);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
    }
  });
  sock.on('error', () => {});
});

let listening = 0;
const ready = () => {
  if (++listening === 3) process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
};
udp.bind(job.udpPort, job.address, ready);
probe.bind(job.probePort, job.address, ready);
tcp.listen(job.tcpPort, job.address, ready);

process.on('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify({ ...seen, clients: [...clients].sort() })}\n`);
  process.exit(0);
});
