/**
 * `npm run scenario:broadcast [-- --mode basic] [-- --messages N]` (root): the broadcast anonymity scheme
 * live in network namespaces.
 *
 *   h1 .11 ┐
 *   h2 .12 ├─ bridge ── .1 router .1 ══(WAN 198.18.41.0/24)══ .2 server
 *   h3 .13 ┘  (subnet 198.18.40.0/24, broadcast 198.18.40.255)
 *
 * The router is the kernel: it forwards, and forwards directed broadcasts into the subnet (bc_forwarding);
 * rp_filter is off, since a source equal to the subnet's broadcast address fails the reverse-path check.
 * Each host runs `pktveil agent` (role host): its packets to the server leave from the broadcast address,
 * and the replies the router broadcasts into the subnet reach only the host they belong to. Advanced mode
 * (default): the server runs `pktveil agent` (role responder) and all three hosts use the same local ports,
 * which the responder's session-NAT keeps apart; SIDs rotate every 10 packets. Basic mode: no header, the
 * server runs no pktveil, hosts use distinct ports; then h1 and h2 send one datagram each from the same
 * port to the server's probe port, and a router-side check of the subnet capture (TupleMatcher.reportUse by
 * MAC) must report exactly that tuple as contested.
 *
 * Every host holds a UDP and a TCP conversation with the server at once (echoes with host-specific
 * content, judged by the host's apps). tcpdump records the router's WAN link (wan.pcap) and subnet link
 * (lan.pcap); the hosts' agents log every SID their sessions used (sids.json). The guard
 * (BroadcastGuardStage) is run over the WAN capture in user space: the router here is the kernel, so the
 * guard reports what it would have dropped of what the router let into the subnet.
 *
 * Prints ONE JSON line last: {"mode","broadcast","server","hosts":[{"name","expected","delivered",
 * "misdelivered"}],"rotations","dropped",…,"ok","failures"}, and exits 1 when a pass criterion fails:
 * every host delivered = expected and misdelivered = 0; every subnet→WAN packet on the WAN has the broadcast
 * source; advanced: every SID in sids.json appears in clear on the WAN, in the order of its session's list
 * (none before the one before it), ≥ 2 SIDs per session and direction; basic: the probe's conflict and no
 * other. With PKTVEIL_CAPTURE_DIR set, wan.pcap, lan.pcap, sids.json, the configs and agent stats stay there.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BroadcastSubnet } from '../src/anonymity-layer/broadcast-subnet.js';
import { BroadcastGuardStage } from '../src/filter/broadcast-guard.js';
import { describeTuple, TupleMatcher } from '../src/filter/tuple-matcher.js';
import { readCapture } from '../src/io/capture-file.js';
import type { HostAppJob } from './broadcast/host-app.js';
import { analyzeWan, type WanAnalysis } from './broadcast/wan-check.js';
import {
  collect,
  type Endpoint,
  lastJson,
  NetnsLab,
  type RunResult,
  tsxCommand,
  waitForOutput,
} from './lib/netns-lab.js';
import { cleanupOnce, scenarioDir } from './lib/scenario-files.js';

const SUBNET = '198.18.40.0/24';
const ROUTER_LAN = '198.18.40.1';
const HOSTS = [
  { name: 'h1', address: '198.18.40.11' },
  { name: 'h2', address: '198.18.40.12' },
  { name: 'h3', address: '198.18.40.13' },
];
const ROUTER_WAN = '198.18.41.1';
const SERVER = '198.18.41.2';
const VIRTUAL_CLIENTS = '198.18.99.0/24';
const PORTS = { udp: 7000, tcp: 7001, probe: 7002 };
const PROBE_LOCAL_PORT = 40999;
const ROTATE_EVERY_PACKETS = 10;
/** The dummy interfaces' MTU: an inner packet of this size sealed (+ 41 + 20) still fits 1500 bytes. */
const INNER_MTU = 1400;

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const SCRIPTS = {
  cli: here('../src/cli/main.ts'),
  hostApp: here('./broadcast/host-app.ts'),
  echo: here('./broadcast/echo-server.ts'),
};

type Mode = 'advanced' | 'basic';

interface HostResult {
  name: string;
  expected: number;
  delivered: number;
  misdelivered: number;
  lost: number;
  unexpected: number;
  ms: number;
}

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

function log(text: string): void {
  process.stderr.write(`# broadcast: ${text}\n`);
}

const modeArg = argument('--mode') ?? 'advanced';
if (modeArg !== 'advanced' && modeArg !== 'basic') {
  process.stderr.write(`--mode must be advanced or basic, got ${modeArg}\n`);
  process.exit(2);
}
const mode: Mode = modeArg;
const messages = Number(argument('--messages') ?? 40);
if (!Number.isInteger(messages) || messages < 1 || messages > 1000) {
  process.stderr.write(`--messages must be an integer 1..1000, got ${argument('--messages')}\n`);
  process.exit(2);
}

const lab = new NetnsLab();
const { dir, removeDir } = scenarioDir('pktveil-broadcast-');
const cleanup = cleanupOnce(() => {
  lab.cleanup();
  removeDir();
}, log);

interface Started {
  child: ChildProcess;
  done: Promise<RunResult>;
}

/** A program in `ns`, resolved once its output matches `ready`. */
async function start(
  ns: string,
  script: string,
  args: string[],
  ready: RegExp,
  what: string,
): Promise<Started> {
  const [node, nodeArgs] = tsxCommand(script, args);
  const child = lab.spawn(ns, node, nodeArgs);
  const done = collect(child, 120_000);
  // Generous: four programs start at once through tsx on what may be a busy 2-core machine.
  await waitForOutput(child, ready, what, 60_000);
  return { child, done };
}

async function startTcpdump(ns: string, ifname: string, file: string): Promise<Started> {
  // --immediate-mode: without it the last ring block (up to a second of packets) is lost at SIGINT.
  const child = lab.spawn(ns, 'tcpdump', [
    '-i',
    ifname,
    '-n',
    '-U',
    '--immediate-mode',
    '-Z',
    'root',
    '-w',
    file,
    'ip',
  ]);
  const done = collect(child, 600_000);
  await waitForOutput(child, /listening on/, `tcpdump on ${ifname}`);
  return { child, done };
}

function sysctl(ns: string, settings: string[]): void {
  lab.exec(ns, 'sysctl', ['-qw', ...settings]);
}

/**
 * The interface the agent captures on, where the routes to the server (or the virtual clients) point.
 * This kernel has no dummy module, so it is one end of a veth pair whose other end is up in the same
 * namespace: what the kernel sends there arrives at the other end and is dropped (no forwarding, so no
 * ICMP). ARP off: the kernel sends without resolving a neighbour. Offloads off: real checksums, no
 * super-packets.
 */
function addDummy(ns: string): void {
  lab.ipIn(ns, ['link', 'add', 'pktveil0', 'type', 'veth', 'peer', 'name', 'pktveil0p']);
  for (const ifname of ['pktveil0', 'pktveil0p']) {
    lab.exec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${ifname}.disable_ipv6=1`]);
    lab.ipIn(ns, ['link', 'set', ifname, 'mtu', String(INNER_MTU), 'arp', 'off', 'up']);
  }
  lab.exec(ns, 'ethtool', ['-K', 'pktveil0', 'tx', 'off', 'sg', 'off', 'tso', 'off', 'gso', 'off']);
}

async function main(): Promise<Record<string, unknown>> {
  const subnet = BroadcastSubnet.parse(SUBNET);
  const broadcast = '198.18.40.255';
  const ns = {
    sw: lab.addNamespace('sw'),
    router: lab.addNamespace('router'),
    server: lab.addNamespace('server'),
    hosts: HOSTS.map((h) => lab.addNamespace(h.name)),
  };
  const link = { disableIpv6: true, prefixLength: 24 };
  const lan: Endpoint[] = lab.addBridge(ns.sw, [...ns.hosts, ns.router], {
    ...link,
    addresses: [...HOSTS.map((h) => h.address), ROUTER_LAN],
  });
  const routerLan = lan[3]!;
  const wan = lab.addVethPair(ns.router, ns.server, { ...link, addresses: [ROUTER_WAN, SERVER] });

  // Router: forward, including directed broadcasts into the subnet; no reverse-path filter.
  sysctl(ns.router, [
    'net.ipv4.ip_forward=1',
    'net.ipv4.conf.all.bc_forwarding=1',
    'net.ipv4.conf.default.bc_forwarding=1',
    `net.ipv4.conf.${routerLan.ifname}.bc_forwarding=1`,
    `net.ipv4.conf.${wan.a.ifname}.bc_forwarding=1`,
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
    `net.ipv4.conf.${routerLan.ifname}.rp_filter=0`,
    `net.ipv4.conf.${wan.a.ifname}.rp_filter=0`,
  ]);
  lab.ipIn(ns.server, ['route', 'add', SUBNET, 'via', ROUTER_WAN]);
  sysctl(ns.server, ['net.ipv4.conf.all.rp_filter=0', `net.ipv4.conf.${wan.b.ifname}.rp_filter=0`]);
  HOSTS.forEach((h, i) => {
    const hns = ns.hosts[i]!;
    addDummy(hns);
    lab.ipIn(hns, ['route', 'add', `${SERVER}/32`, 'dev', 'pktveil0', 'src', h.address]);
    lab.ipIn(hns, [
      'route',
      'add',
      `${SERVER}/32`,
      'via',
      ROUTER_LAN,
      'dev',
      lan[i]!.ifname,
      'metric',
      '100',
    ]);
  });
  if (mode === 'advanced') {
    addDummy(ns.server);
    lab.ipIn(ns.server, ['route', 'add', VIRTUAL_CLIENTS, 'dev', 'pktveil0']);
  }

  // Keys and configs.
  const listenSid = randomBytes(8).toString('hex');
  const secrets = HOSTS.map(() => randomBytes(32).toString('hex'));
  const rotation = { packets: ROTATE_EVERY_PACKETS, ms: 0 };
  const hostConfigs = HOSTS.map((h, i) => {
    const file = join(dir, `${h.name}.agent.json`);
    const peer =
      mode === 'advanced'
        ? { name: 'server', address: SERVER, secret: secrets[i], listenSid }
        : { name: 'server', address: SERVER };
    const config = {
      role: 'host',
      mode,
      interface: lan[i]!.ifname,
      outboundInterface: 'pktveil0',
      subnet: SUBNET,
      address: h.address,
      peers: [peer],
      rotation,
      sidLog: `${h.name}.sids.json`,
    };
    writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
    return file;
  });

  const wanPcap = join(dir, 'wan.pcap');
  const lanPcap = join(dir, 'lan.pcap');
  const tcpdumps = [
    await startTcpdump(ns.router, wan.a.ifname, wanPcap),
    await startTcpdump(ns.router, routerLan.ifname, lanPcap),
  ];
  const echo = await start(
    ns.server,
    SCRIPTS.echo,
    [JSON.stringify({ address: SERVER, udpPort: PORTS.udp, tcpPort: PORTS.tcp, probePort: PORTS.probe })],
    /"ready":true/,
    'echo server',
  );

  const ready = /pktveil agent: ready/;
  let responder: Started | null = null;
  if (mode === 'advanced') {
    const file = join(dir, 'server.agent.json');
    const config = {
      role: 'responder',
      address: SERVER,
      replyInterface: 'pktveil0',
      virtualClients: VIRTUAL_CLIENTS,
      listenSid,
      peers: HOSTS.map((h, i) => ({ name: h.name, secret: secrets[i] })),
      rotation,
      sidLog: 'server.sids.json',
    };
    writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
    responder = await start(
      ns.server,
      SCRIPTS.cli,
      ['agent', '--config', file, '--stats', 'json'],
      ready,
      'responder',
    );
  }
  const agents = await Promise.all(
    HOSTS.map((h, i) =>
      start(
        ns.hosts[i]!,
        SCRIPTS.cli,
        ['agent', '--config', hostConfigs[i]!, '--stats', 'json'],
        ready,
        `${h.name} agent`,
      ),
    ),
  );
  log(`${mode} mode: agents ready; ${messages} UDP and ${messages} TCP messages per host`);

  const appJob = (i: number): HostAppJob => ({
    name: HOSTS[i]!.name,
    hosts: HOSTS.map((h) => h.name),
    address: HOSTS[i]!.address,
    server: SERVER,
    udpPort: PORTS.udp,
    tcpPort: PORTS.tcp,
    // Advanced: one pair of ports on every host (the responder keeps them apart); basic: distinct ones.
    localUdpPort: mode === 'advanced' ? 40000 : 40000 + 10 * (i + 1),
    localTcpPort: mode === 'advanced' ? 40001 : 40001 + 10 * (i + 1),
    messages,
    replyTimeoutMs: 3000,
  });
  const runApp = (i: number, job: HostAppJob) => {
    const [node, args] = tsxCommand(SCRIPTS.hostApp, [JSON.stringify(job)]);
    return lab.run(ns.hosts[i]!, node, args, { timeoutMs: 60_000 });
  };
  const appRuns = await Promise.all(HOSTS.map((_, i) => runApp(i, appJob(i))));
  const hosts = appRuns.map((r, i) => lastJson<HostResult>(r, `${HOSTS[i]!.name} apps`));
  if (mode === 'basic') {
    for (const i of [0, 1])
      lastJson(
        await runApp(i, { ...appJob(i), probe: { localPort: PROBE_LOCAL_PORT, port: PORTS.probe } }),
        `${HOSTS[i]!.name} probe`,
      );
    await new Promise((r) => setTimeout(r, 300));
  }

  // Stop everything and collect.
  const stopAll = async (list: Started[], signal: NodeJS.Signals) => {
    for (const s of list) s.child.kill(signal);
    return Promise.all(list.map((s) => s.done));
  };
  const agentRuns = await stopAll(agents, 'SIGTERM');
  const agentStats = agentRuns.map((r, i) => lastJson<AgentStats>(r, `${HOSTS[i]!.name} agent`));
  const responderStats = responder
    ? lastJson<AgentStats>((await stopAll([responder], 'SIGTERM'))[0]!, 'responder')
    : null;
  const echoStats = lastJson<{ clients: string[] }>((await stopAll([echo], 'SIGTERM'))[0]!, 'echo server');
  await new Promise((r) => setTimeout(r, 200));
  await stopAll(tcpdumps, 'SIGINT');
  writeFileSync(
    join(dir, 'agents.json'),
    `${JSON.stringify({ hosts: agentStats, responder: responderStats })}\n`,
  );

  const sessions = HOSTS.flatMap((h) => {
    const logged = JSON.parse(readFileSync(join(dir, `${h.name}.sids.json`), 'utf8')) as {
      sessions: { peer: string; direction: 'out' | 'in'; sids: string[] }[];
    };
    return logged.sessions.map((s) => ({ host: h.name, direction: s.direction, sids: s.sids }));
  });
  writeFileSync(join(dir, 'sids.json'), `${JSON.stringify({ sessions })}\n`);

  // What the WAN shows, what the guard would drop, and (basic) the router's view of tuples on the subnet.
  const wanView: WanAnalysis = await analyzeWan(wanPcap, subnet, sessions);
  const guard = new BroadcastGuardStage({ subnets: [subnet] });
  for await (const pkt of readCapture(wanPcap)) guard.process(pkt, () => {});
  const guardStats = guard.stats();
  const conflicts = mode === 'basic' ? await tupleConflicts(lanPcap, subnet, lan.slice(0, 3)) : [];

  const dropped: Record<string, number> = {};
  for (const s of [...agentStats, ...(responderStats ? [responderStats] : [])])
    for (const [k, v] of Object.entries(s.dropped)) dropped[k] = (dropped[k] ?? 0) + v;
  const rotations = agentStats.reduce((n, s) => n + (s.rotations ?? 0), 0) + (responderStats?.rotations ?? 0);

  const failures: string[] = [];
  for (const h of hosts) {
    if (h.delivered !== h.expected) failures.push(`${h.name} delivered ${h.delivered} of ${h.expected}`);
    if (h.misdelivered !== 0) failures.push(`${h.name} got ${h.misdelivered} replies of other hosts`);
  }
  if (wanView.fromSubnet === 0) failures.push('no packet from the subnet on the WAN');
  if (wanView.fromSubnetNotBroadcast > 0)
    failures.push(
      `${wanView.fromSubnetNotBroadcast} packets from the subnet on the WAN without the broadcast source`,
    );
  if (mode === 'advanced') {
    failures.push(...wanView.sidFailures);
    for (const s of sessions)
      if (s.sids.length < 2) failures.push(`${s.host} ${s.direction}: ${s.sids.length} SID(s), no rotation`);
    if (sessions.length !== 2 * HOSTS.length)
      failures.push(`sids.json has ${sessions.length} sessions, expected 6`);
    const virtual = new Set(
      echoStats.clients.filter((c) => c.startsWith('udp')).map((c) => c.split(' ')[1]!.split(':')[0]),
    );
    if (virtual.size !== HOSTS.length)
      failures.push(`the server saw ${virtual.size} UDP clients, expected one virtual client per host`);
  } else {
    const probe = `udp ${SERVER}:${PORTS.probe} ↔ local port ${PROBE_LOCAL_PORT}`;
    const want = JSON.stringify([{ tuple: probe, hosts: ['h1', 'h2'] }]);
    if (JSON.stringify(conflicts) !== want)
      failures.push(`tuple conflicts ${JSON.stringify(conflicts)}, expected ${want}`);
  }
  return {
    mode,
    broadcast,
    server: SERVER,
    hosts: hosts.map(({ name, expected, delivered, misdelivered, lost, unexpected }) => ({
      name,
      expected,
      delivered,
      misdelivered,
      lost,
      unexpected,
    })),
    rotations,
    dropped,
    wan: {
      packets: wanView.packets,
      fromSubnet: wanView.fromSubnet,
      fromSubnetWithBroadcastSource: wanView.fromSubnet - wanView.fromSubnetNotBroadcast,
      toBroadcast: wanView.toBroadcast,
      anonPackets: wanView.anonPackets,
    },
    guard: { allowed: guardStats.allowed, dropped: guardStats.dropped },
    conflicts,
    serverClients: echoStats.clients,
    prefilterRebuilds: agentStats.map((s) => s.prefilter?.rebuilds ?? 0),
    ok: failures.length === 0,
    failures,
  };
}

interface AgentStats {
  dropped: Record<string, number>;
  rotations?: number;
  prefilter?: { rebuilds: number };
}

/**
 * The router's view of the subnet capture: each packet sent from the broadcast address is attributed to a
 * host by its source MAC and reported to a TupleMatcher; tuples two hosts used come back as conflicts.
 */
async function tupleConflicts(
  file: string,
  subnet: BroadcastSubnet,
  hosts: Endpoint[],
): Promise<{ tuple: string; hosts: string[] }[]> {
  const matcher = new TupleMatcher();
  const found = new Map<string, Set<string>>();
  matcher.on('tuple-conflict', (c) => {
    const key = describeTuple(c.tuple);
    const set = found.get(key) ?? new Set<string>();
    set.add(HOSTS[c.owner]!.name).add(HOSTS[c.claimant]!.name);
    found.set(key, set);
  });
  for await (const pkt of readCapture(file)) {
    const d = pkt.data;
    if (d.length < 14 + 24 || d.readUInt16BE(12) !== 0x0800) continue;
    const ip = 14;
    if (d.readUInt32BE(ip + 12) !== subnet.broadcast) continue;
    const protocol = d[ip + 9]!;
    if (protocol !== 6 && protocol !== 17) continue;
    const mac = [...d.subarray(6, 12)].map((b) => b.toString(16).padStart(2, '0')).join(':');
    const owner = hosts.findIndex((h) => h.mac === mac);
    if (owner < 0) continue;
    const t = ip + ((d[ip]! & 0x0f) << 2);
    matcher.reportUse(
      {
        remoteAddress: d.readUInt32BE(ip + 16),
        remotePort: d.readUInt16BE(t + 2),
        localPort: d.readUInt16BE(t),
        protocol,
      },
      owner,
    );
  }
  return [...found].map(([tuple, set]) => ({ tuple, hosts: [...set].sort() }));
}

const deadline = setTimeout(() => {
  log('took longer than 150 s: giving up');
  cleanup();
  process.exit(1);
}, 150_000);

main()
  .then((result) => {
    cleanup();
    clearTimeout(deadline);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(result.ok ? 0 : 1);
  })
  .catch((err) => {
    cleanup();
    clearTimeout(deadline);
    process.stderr.write(`scenario:broadcast failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
