/** `pktveil agent`: the broadcast anonymity layer live on a host, or the server-side responder. */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type AgentConfig,
  ConfigError,
  type HostAgentConfig,
  parseAgentConfig,
  type ResponderAgentConfig,
} from '../anonymity-layer/agent-config.js';
import { LiveHostAgent, LiveResponderAgent } from '../anonymity-layer/agent-live.js';
import type { SidLogEntry } from '../anonymity-layer/agent-parts.js';
import { ipv4String } from '../codec/ip-address.js';
import type { StageStats } from '../stages/stage.js';
import { type Command, numberOption, UsageError } from './command.js';

const help = `Usage: pktveil agent --config FILE [--stats json] [--duration SECONDS]

Runs the broadcast anonymity layer live (root, or CAP_NET_RAW + CAP_NET_ADMIN) until SIGINT or SIGTERM
(or --duration), then shuts down cleanly. Prints "pktveil agent: ready …" on stderr once capturing.

  role "host": the host's packets to its peers leave from the subnet's broadcast address, and the
    replies broadcast back into the subnet reach only this host's stack.
    advanced mode: transport sealed in an anonymity-layer session per peer (IP protocol 253, session IDs
    rotating every rotation.packets packets / rotation.ms ms); the kernel prefilter passes only this
    host's current SIDs. basic mode: source rewritten (checksums updated), replies kept by their tuple
    (peer, peer port, local port, protocol); the peer needs no pktveil.
  role "responder": the server side of advanced mode. Each host's session is its own client to the
    server's stack (a virtual address from virtualClients); replies are sealed back to the subnet.

Setup (host): route the peers through a dummy interface, and through the router with a higher metric:
  ip link add pktveil0 type dummy; ip link set pktveil0 mtu 1400 up
  ethtool -K pktveil0 tx off sg off tso off gso off
  ip route add PEER/32 dev pktveil0 src HOST_ADDRESS
  ip route add PEER/32 via ROUTER dev eth0 metric 100
Apps should bind to the host's unicast address (a UDP socket on 0.0.0.0 also receives the raw
broadcast replies of basic mode). Setup (responder): the same dummy interface, and
  ip route add VIRTUAL_CLIENTS dev pktveil0
The router forwards directed broadcasts into the subnet: sysctl net.ipv4.conf.{all,WAN_IF}.bc_forwarding=1,
and rp_filter=0 on its subnet side (a source equal to the broadcast address fails the reverse-path check).

Config FILE (JSON object; relative paths are taken from the file's directory):
  role               "host" | "responder"
  mode               host: "advanced" (default) | "basic"
  interface          host: the subnet interface (replies captured, outer packets sent)
  outboundInterface  host: the dummy interface the peers' routes point to
  subnet             host: the subnet, "198.18.5.0/24" (its broadcast address is the source)
  address            host: its own address in the subnet; responder: the server's address
  replyInterface     responder: the dummy interface the virtual clients' route points to
  virtualClients     responder: session-NAT pool, "198.18.99.0/24" (one address per session)
  listenSid          responder: its listen session ID, 16 hex digits
  protocol           IP protocol of the anonymity layer (default 253)
  peers              host: [{"name","address","secret"|"secretFile","listenSid"}] (secret and
                     listenSid in advanced mode only); responder: [{"name","secret"|"secretFile"}].
                     secret: hex, at least 16 bytes, the same on both ends (keys by HKDF-SHA256);
                     secretFile: a file holding that hex
  rotation           {"packets": 1000, "ms": 10000}: rotate the own SID (0 = not by that measure)
  minPacketsPerSid   never rotate before this many packets under a SID: the loss tolerance
                     (default 8, or rotation.packets when that is smaller)
  idleTimeoutMs      end a session after this long without packets (default 120000; 0 = never)
  prefilter          host: "sids" (default: one kernel clause per SID or tuple) | "protocol"
  delivery           "stack" (default: inner packets to the local stack) | {"file": "inner.pcap"}
  sidLog             write every session ID used, per session and direction, here at exit

  --config FILE      the configuration (required)
  --stats json       print one JSON line of counters on stdout at exit:
                     {"packetsIn","packetsOut","dropped":{reason:count},...the agent's counters}
  --duration S       stop after S seconds
  -h, --help         this text

Exit status: 0 after a clean shutdown, 2 for a usage or configuration mistake, 1 for a runtime failure
(missing privileges or interface: the message says what to do).`;

export const agentCommand: Command = {
  name: 'agent',
  summary: 'run the broadcast anonymity layer live: host agent (advanced/basic) or server-side responder',
  help,
  options: {
    config: { type: 'string' },
    stats: { type: 'string' },
    duration: { type: 'string' },
  },
  async run(values, positionals) {
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const file = values.config as string | undefined;
    if (!file) throw new UsageError('give --config FILE');
    const statsFormat = values.stats as string | undefined;
    if (statsFormat !== undefined && statsFormat !== 'json')
      throw new UsageError(`--stats takes 'json', got '${statsFormat}'`);
    const duration = numberOption(values, 'duration');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read the config file ${file}: ${(err as Error).message}`);
    }
    let config: AgentConfig;
    try {
      config = parseAgentConfig(text, { baseDir: dirname(file) });
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(`config ${file}: ${err.message}`);
      throw err;
    }
    const live = config.role === 'host' ? hostAgent(config) : responderAgent(config);
    await live.start();
    process.stderr.write(`pktveil agent: ready: ${live.describe}\n`);
    await untilStopped(duration);
    const stats = await live.stop();
    if (config.sidLog) writeFileSync(config.sidLog, `${JSON.stringify({ sessions: live.sidLog() })}\n`);
    if (statsFormat === 'json') process.stdout.write(`${JSON.stringify(stats)}\n`);
    return 0;
  },
};

interface Running {
  describe: string;
  start(): Promise<void>;
  stop(): Promise<Record<string, unknown>>;
  sidLog(): SidLogEntry[];
}

function hostAgent(config: HostAgentConfig): Running {
  const live = new LiveHostAgent({
    agent: {
      mode: config.mode,
      subnet: config.subnet,
      hostAddress: config.address,
      peers: config.peers.map((p) => ({
        name: p.name,
        address: p.address,
        secret: p.secret ?? undefined,
        listenSid: p.listenSid ?? undefined,
      })),
      protocol: config.protocol,
      rotateEveryPackets: config.rotation.packets,
      rotateEveryMs: config.rotation.ms,
      minPacketsPerSid: config.minPacketsPerSid,
      idleTimeoutMs: config.idleTimeoutMs,
      prefilter: config.prefilter,
      recordSids: config.sidLog !== null,
    },
    interface: config.interface,
    outboundInterface: config.outboundInterface,
    delivery: config.delivery,
  });
  return {
    describe: `host ${ipv4String(config.address)} on ${config.interface} (${config.mode}; subnet ${config.subnet}, broadcast ${ipv4String(config.subnet.broadcast)}; ${config.peers.length} peer(s) via ${config.outboundInterface})`,
    start: () => live.start(),
    stop: async () => {
      const s = await live.stop();
      return {
        role: 'host',
        ...totals([s.outbound, s.inbound]),
        ...s,
      };
    },
    sidLog: () => live.agent.sidLog(),
  };
}

function responderAgent(config: ResponderAgentConfig): Running {
  const live = new LiveResponderAgent({
    agent: {
      address: config.address,
      virtualClients: config.virtualClients,
      listenSid: config.listenSid,
      peers: config.peers,
      protocol: config.protocol,
      rotateEveryPackets: config.rotation.packets,
      rotateEveryMs: config.rotation.ms,
      minPacketsPerSid: config.minPacketsPerSid,
      idleTimeoutMs: config.idleTimeoutMs,
      recordSids: config.sidLog !== null,
    },
    replyInterface: config.replyInterface,
    delivery: config.delivery,
  });
  return {
    describe: `responder ${ipv4String(config.address)} (protocol ${config.protocol}; ${config.peers.length} peer(s); virtual clients ${config.virtualClients} via ${config.replyInterface})`,
    start: () => live.start(),
    stop: async () => {
      const s = await live.stop();
      return { role: 'responder', ...totals([s.fromClients, s.fromServer]), ...s };
    },
    sidLog: () => live.agent.sidLog(),
  };
}

/** packetsIn, packetsOut and drops by reason over the agent's two stages. */
function totals(stages: StageStats[]): {
  packetsIn: number;
  packetsOut: number;
  dropped: Record<string, number>;
} {
  const dropped: Record<string, number> = {};
  let packetsIn = 0;
  let packetsOut = 0;
  for (const s of stages) {
    packetsIn += s.packetsIn;
    packetsOut += s.packetsOut;
    for (const [k, v] of Object.entries(s.dropped)) dropped[k] = (dropped[k] ?? 0) + v;
  }
  return { packetsIn, packetsOut, dropped };
}

/** Resolves on SIGINT or SIGTERM, or after `seconds`. */
function untilStopped(seconds: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      if (timer) clearTimeout(timer);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
    const timer = seconds === undefined ? null : setTimeout(done, seconds * 1000);
  });
}
