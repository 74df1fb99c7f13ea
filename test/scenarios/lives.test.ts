/**
 * The LIVES scenario end to end (`npm run scenario:lives`, scenarios/lives.ts), as a child process: a
 * live IP-TFS tunnel between network namespaces carries voip, web bursts and silence from a LAN host to a
 * server. Asserts the claims of its final JSON line: every datagram arrives intact; the last mile shows
 * one size at a constant rate and an observer's classifier at chance; the LAN's classifier is far above
 * chance; the gateway sends no ICMP.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { describeSystem } from '../helpers/system.js';

const root = resolve(import.meta.dirname, '../..');

interface Classifier {
  accuracy: number;
  chance: number;
  classes: string[];
  samples: number;
}

interface LivesResult {
  scenario: string;
  packetSize: number;
  rateBitsPerSecond: number;
  targetRateHz: number;
  flows: { name: string; sent: number; received: number; intact: number }[];
  wan: {
    packets: number;
    distinctSizes: number;
    sizes: number[];
    achievedRateHz: number;
    iatCv: number;
    gapP50Us: number;
    gapP99Us: number;
    classifier: Classifier;
    icmpFromGw: number;
  };
  lan: { distinctSizes: number; classifier: Classifier };
  overheadRatio: number;
  failures: string[];
  ok: boolean;
  error?: string;
  /** The tag in the names of the scenario's namespaces. */
  lab: string;
}

describeSystem(
  'LIVES scenario: a live IP-TFS last mile',
  ['root', 'netns', 'tcpdump', 'cap', 'raw-socket'],
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'pktveil-lives-test-'));
    let code: number | null;
    let stderr: string;
    let result: LivesResult;

    beforeAll(async () => {
      const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', 'scenarios/lives.ts'],
          {
            cwd: root,
            timeout: 240_000,
            killSignal: 'SIGINT', // the scenario cleans up its namespaces on SIGINT
            maxBuffer: 16 << 20,
            env: { ...process.env, PKTVEIL_CAPTURE_DIR: dir },
          },
          (err, stdout, stderr) =>
            done({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
      code = out.code;
      stderr = out.stderr;
      const last = out.stdout.trim().split('\n').pop() ?? '';
      result = JSON.parse(last) as LivesResult;
    }, 250_000);

    it('prints one JSON line that passes, and exits 0', () => {
      expect(result.error, stderr).toBeUndefined();
      expect(result.failures).toEqual([]);
      expect(result.ok).toBe(true);
      expect(code).toBe(0);
      for (const f of ['wan.pcap', 'lan.pcap', 'labels.json']) expect(existsSync(join(dir, f)), f).toBe(true);
    });

    it('every datagram of every flow arrives at the server, once and intact', () => {
      expect(result.flows.map((f) => f.name).sort()).toEqual(['voip', 'web']);
      for (const f of result.flows) {
        expect(f.sent, f.name).toBeGreaterThan(100);
        expect(f.received, f.name).toBe(f.sent);
        expect(f.intact, f.name).toBe(f.sent);
      }
    });

    it('the last mile shows one packet size at a constant rate', () => {
      const wan = result.wan;
      expect(wan.distinctSizes).toBe(1);
      expect(wan.sizes).toEqual([result.packetSize + 14]); // the outer IPv4 packet behind Ethernet
      expect(result.targetRateHz).toBe(result.rateBitsPerSecond / (8 * result.packetSize));
      expect(Math.abs(wan.achievedRateHz / result.targetRateHz - 1)).toBeLessThanOrEqual(0.01);
      const interval = 1e6 / result.targetRateHz;
      expect(Math.abs(wan.gapP50Us / interval - 1)).toBeLessThanOrEqual(0.01);
      expect(wan.gapP99Us).toBeLessThanOrEqual(interval * 1.1);
      // Some 50 s of tunnel at 1000 packets/s.
      expect(wan.packets).toBeGreaterThan(50 * result.targetRateHz);
      expect(wan.icmpFromGw).toBe(0);
    });

    it("an observer's classifier is at chance on the last mile, and far above it on the LAN", () => {
      const { wan, lan } = result;
      expect(wan.classifier.classes).toEqual(['silence', 'voip', 'web']);
      expect(wan.classifier.samples).toBe(450); // 3 rounds × 3 classes × 10 s in 0.2 s windows
      expect(wan.classifier.chance).toBeCloseTo(1 / 3, 6);
      expect(wan.classifier.accuracy).toBeLessThanOrEqual(wan.classifier.chance + 0.05);
      expect(lan.classifier.accuracy).toBeGreaterThanOrEqual(lan.classifier.chance + 0.4);
      expect(lan.distinctSizes).toBeGreaterThan(1);
      expect(result.overheadRatio).toBeGreaterThan(1);
    });

    it('leaves none of its namespaces behind', () => {
      rmSync(dir, { recursive: true, force: true });
      expect(result.lab).toMatch(/^[0-9a-z]+$/);
      const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
      expect(left.split('\n').filter((l) => l.startsWith(`pktveil-${result.lab}-`))).toEqual([]);
    });
  },
);
