import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'pktveil-agent-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, body: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
  return file;
}

const host = {
  role: 'host',
  mode: 'basic',
  interface: 'nosuchif0',
  outboundInterface: 'nosuchif1',
  subnet: '198.18.5.0/24',
  address: '198.18.5.7',
  peers: [{ name: 'server', address: '198.18.9.2' }],
};

describe('pktveil agent', () => {
  it('--help documents the roles, the setup and every config field', async () => {
    const r = await runCli(['agent', '--help']);
    expect(r.code).toBe(0);
    for (const field of [
      'role',
      'mode',
      'interface',
      'outboundInterface',
      'subnet',
      'address',
      'replyInterface',
      'virtualClients',
      'listenSid',
      'protocol',
      'peers',
      'rotation',
      'minPacketsPerSid',
      'idleTimeoutMs',
      'prefilter',
      'delivery',
      'sidLog',
    ])
      expect(r.stdout).toMatch(new RegExp(`^  ${field} `, 'm'));
    expect(r.stdout).toContain('bc_forwarding');
    expect(r.stdout).toContain('--stats json');
  });

  it('exits 2 on usage and configuration mistakes, naming them', async () => {
    const missing = await runCli(['agent']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('give --config FILE');
    const bad = await runCli(['agent', '--config', config('bad.json', { ...host, address: '198.18.6.1' })]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/config .*bad\.json: address 198\.18\.6\.1 is not a host address of subnet/);
    const stats = await runCli(['agent', '--config', config('ok.json', host), '--stats', 'yaml']);
    expect(stats.code).toBe(2);
    expect(stats.stderr).toContain("--stats takes 'json'");
  });

  it('exits 1 when the config cannot be read or the interfaces cannot be used, saying why', async () => {
    const unreadable = await runCli(['agent', '--config', join(dir, 'absent.json')]);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toMatch(/cannot read the config file .*absent\.json/);
    const live = await runCli(['agent', '--config', config('live.json', host), '--duration', '1']);
    expect(live.code).toBe(1);
    // As root: the interface does not exist; otherwise: the privileges are missing.
    expect(live.stderr).toMatch(/nosuchif0|privilege|CAP_NET_RAW|permission/i);
  });
});
