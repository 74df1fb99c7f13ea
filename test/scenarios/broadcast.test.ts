/**
 * The broadcast scenario end to end (`npm run scenario:broadcast`, scenarios/broadcast.ts) in both modes,
 * as a child process. Its JSON line is read, and its claims are checked again from the files it leaves
 * (PKTVEIL_CAPTURE_DIR), with code of this test's own: every packet from the subnet on the router's WAN
 * link has the broadcast source; in advanced mode every SID of sids.json appears in clear on the WAN, and
 * none before the SID its session used before it (so no SID was ever shown ahead of its use), and every
 * session rotated; every host got all its replies and none of the others'.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCaptureBuffer } from '../../src/io/capture-file.js';
import { describeSystem } from '../helpers/system.js';

const root = resolve(import.meta.dirname, '../..');
const BROADCAST = '198.18.40.255';
const SUBNET_PREFIX = '198.18.40.';

interface BroadcastResult {
  mode: string;
  broadcast: string;
  server: string;
  hosts: { name: string; expected: number; delivered: number; misdelivered: number }[];
  rotations: number;
  dropped: Record<string, number>;
  conflicts: { tuple: string; hosts: string[] }[];
  serverClients: string[];
  ok: boolean;
  failures: string[];
}

interface SidsFile {
  sessions: { host: string; direction: 'out' | 'in'; sids: string[] }[];
}

/** The IPv4 packets of an Ethernet capture, in order: addresses, protocol, and the 8 bytes after the header. */
function wanPackets(file: string): { src: string; dst: string; protocol: number; firstBytes: string }[] {
  const out = [];
  for (const pkt of parseCaptureBuffer(readFileSync(file))) {
    const d = pkt.data;
    if (d.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (d[14]! & 0x0f) * 4;
    const dotted = (o: number) => [...d.subarray(o, o + 4)].join('.');
    out.push({
      src: dotted(26),
      dst: dotted(30),
      protocol: d[23]!,
      firstBytes: d.toString('hex', 14 + ihl, 14 + ihl + 8),
    });
  }
  return out;
}

function runScenario(
  mode: string,
  dir: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scenarios/broadcast.ts', '--mode', mode],
      {
        cwd: root,
        env: { ...process.env, PKTVEIL_CAPTURE_DIR: dir },
        timeout: 170_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) =>
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describeSystem(
  'broadcast scenario: hosts behind the broadcast address',
  ['root', 'netns', 'tcpdump', 'ethtool', 'cap', 'raw-socket'],
  () => {
    for (const mode of ['advanced', 'basic'] as const)
      describe(`${mode} mode`, () => {
        const dir = mkdtempSync(join(tmpdir(), `pktveil-broadcast-${mode}-`));
        let run: { code: number | null; stdout: string; stderr: string };
        let result: BroadcastResult;

        beforeAll(async () => {
          run = await runScenario(mode, dir);
          const line = run.stdout.trim().split('\n').pop() ?? '';
          try {
            result = JSON.parse(line) as BroadcastResult;
          } catch {
            throw new Error(`no JSON line (exit ${run.code}): ${run.stderr.slice(-3000)}`);
          }
        }, 180_000);
        afterAll(() => rmSync(dir, { recursive: true, force: true }));

        it('exits 0 with ok and no failures, naming the mode, broadcast address and server', () => {
          expect(result.failures).toEqual([]);
          expect(result.ok).toBe(true);
          expect(run.code).toBe(0);
          expect(result).toMatchObject({ mode, broadcast: BROADCAST, server: '198.18.41.2' });
        });

        it('every host got all its replies and none of the others', () => {
          expect(result.hosts.map((h) => h.name)).toEqual(['h1', 'h2', 'h3']);
          for (const h of result.hosts) {
            expect(h.expected).toBeGreaterThan(0);
            expect(h.delivered).toBe(h.expected);
            expect(h.misdelivered).toBe(0);
          }
        });

        it('every packet from the subnet on the WAN has the broadcast source', () => {
          const packets = wanPackets(join(dir, 'wan.pcap'));
          const fromSubnet = packets.filter((p) => p.src.startsWith(SUBNET_PREFIX));
          const toSubnet = packets.filter((p) => p.dst.startsWith(SUBNET_PREFIX));
          // Each host's requests and replies crossed the WAN: at least one packet per message each way.
          const expected = result.hosts.reduce((n, h) => n + h.expected, 0);
          expect(fromSubnet.length).toBeGreaterThanOrEqual(expected);
          expect(toSubnet.length).toBeGreaterThanOrEqual(expected);
          expect(fromSubnet.filter((p) => p.src !== BROADCAST)).toEqual([]);
          expect(toSubnet.filter((p) => p.dst !== BROADCAST)).toEqual([]);
          if (mode === 'advanced') expect(packets.filter((p) => p.protocol !== 253)).toEqual([]);
          else expect(packets.filter((p) => p.protocol === 253)).toEqual([]);
        });

        if (mode === 'advanced') {
          it('shows every SID in clear only in its session order, and every session rotated both ways', () => {
            const sids = JSON.parse(readFileSync(join(dir, 'sids.json'), 'utf8')) as SidsFile;
            expect(sids.sessions.map((s) => `${s.host} ${s.direction}`).sort()).toEqual([
              'h1 in',
              'h1 out',
              'h2 in',
              'h2 out',
              'h3 in',
              'h3 out',
            ]);
            const clear = wanPackets(join(dir, 'wan.pcap'))
              .filter((p) => p.protocol === 253)
              .map((p) => p.firstBytes);
            for (const s of sids.sessions) {
              expect(s.sids.length, `${s.host} ${s.direction} rotated`).toBeGreaterThanOrEqual(2);
              expect(new Set(s.sids).size).toBe(s.sids.length);
              for (let k = 0; k < s.sids.length; k++) {
                const first = clear.indexOf(s.sids[k]!);
                expect(first, `${s.host} ${s.direction} SID ${k} on the WAN`).toBeGreaterThanOrEqual(0);
                // No later SID of the session was in clear before this one first was.
                const before = clear.slice(0, first);
                for (const later of s.sids.slice(k + 1))
                  expect(
                    before.includes(later),
                    `${s.host} ${s.direction}: ${later} before ${s.sids[k]}`,
                  ).toBe(false);
              }
            }
            expect(result.rotations).toBeGreaterThanOrEqual(2 * sids.sessions.length);
          });

          it('the server saw one virtual client per host, though all hosts used the same ports', () => {
            const udp = result.serverClients.filter((c) => c.startsWith('udp '));
            expect(udp).toEqual(['udp 198.18.99.1:40000', 'udp 198.18.99.2:40000', 'udp 198.18.99.3:40000']);
          });
        } else {
          it('the router-side check found the probe tuple two hosts shared, and nothing else', () => {
            expect(result.conflicts).toEqual([
              { tuple: 'udp 198.18.41.2:7002 ↔ local port 40999', hosts: ['h1', 'h2'] },
            ]);
            expect(result.serverClients.every((c) => c.includes(` ${BROADCAST}:`))).toBe(true);
          });
        }
      });
  },
);
