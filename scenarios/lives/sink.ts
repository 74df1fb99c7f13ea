/**
 * The LIVES server: receives the scenario's UDP flows and checks each datagram (datagram.ts): counted per
 * flow as received, intact, duplicated, out of order or damaged. Prints {"ready":true} once listening and,
 * on SIGTERM (or after `maxSeconds`), one JSON line:
 *   {"flows":[{"name","received","intact","duplicates","outOfOrder","damaged","highestSeq"}]}
 * Input: one JSON argument {"address":"198.18.22.2","maxSeconds":N}.
 */
import { createSocket, type Socket } from 'node:dgram';
import { FLOWS, readDatagram } from './datagram.js';

interface SinkJob {
  address: string;
  maxSeconds: number;
}

interface FlowCount {
  name: string;
  received: number;
  intact: number;
  duplicates: number;
  outOfOrder: number;
  damaged: Record<string, number>;
  highestSeq: number;
  seen: Set<number>;
}

const job = JSON.parse(process.argv[2]!) as SinkJob;
const counts = new Map<number, FlowCount>();
const sockets: Socket[] = [];

for (const flow of FLOWS) {
  const count: FlowCount = {
    name: flow.name,
    received: 0,
    intact: 0,
    duplicates: 0,
    outOfOrder: 0,
    damaged: {},
    highestSeq: -1,
    seen: new Set(),
  };
  counts.set(flow.id, count);
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  socket.on('message', (msg) => {
    count.received++;
    const d = readDatagram(msg);
    if (typeof d === 'string' || d.flowId !== flow.id) {
      const why = typeof d === 'string' ? d : 'wrong-flow';
      count.damaged[why] = (count.damaged[why] ?? 0) + 1;
      return;
    }
    if (count.seen.has(d.seq)) {
      count.duplicates++;
      return;
    }
    count.seen.add(d.seq);
    count.intact++;
    if (d.seq < count.highestSeq) count.outOfOrder++;
    else count.highestSeq = d.seq;
  });
  sockets.push(socket);
}

let finished = false;
function finish(): void {
  if (finished) return;
  finished = true;
  for (const s of sockets) s.close();
  const flows = [...counts.values()].map(({ seen: _, ...rest }) => rest);
  process.stdout.write(`${JSON.stringify({ flows })}\n`);
  process.exit(0);
}

await Promise.all(
  FLOWS.map(
    (flow, i) =>
      new Promise<void>((resolve, reject) => {
        sockets[i]!.once('error', reject);
        sockets[i]!.bind(flow.port, job.address, () => resolve());
      }),
  ),
);
process.on('SIGTERM', finish);
process.on('SIGINT', finish);
setTimeout(finish, job.maxSeconds * 1000).unref();
// Keeps the process up while the sockets are open; the timer above is the bound.
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
