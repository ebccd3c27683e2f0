// `floodgate explain`: a target's ban and firewall rule, history, allowlist entry, grace period and
// live counts, from a state directory with no daemon and a captured kernel table.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { appendHistory, historyEntry } from '../../src/bans/ban-history.js';
import { BanStore } from '../../src/bans/ban-store.js';
import { explainCommand } from '../../src/cli/explain.js';
import { stateFile } from '../../src/daemon/state-dir.js';
import { UsageError } from '../../src/errors.js';

const TABLES = fileURLToPath(new URL('../fixtures/tables/mixed/', import.meta.url));
const POLICY = `allowlist: [198.51.100.200]
rules:
  - {name: syn-flood, states: [SYN_RECV], threshold: 20}
  - {name: conn-flood, threshold: 100}
  - {name: syn-net, per: net, states: [SYN_RECV], threshold: 50, min_sources: 5}
`;

let dir: string;
let stateDir: string;
let policy: string;
let stdout: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-explain-'));
  stateDir = join(dir, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  policy = join(dir, 'policy.yaml');
  writeFileSync(policy, POLICY);
  // The mixed capture as this host's live table.
  mkdirSync(join(dir, 'proc', 'net'), { recursive: true });
  copyFileSync(join(TABLES, 'proc-tcp.txt'), join(dir, 'proc', 'net', 'tcp'));
  copyFileSync(join(TABLES, 'proc-tcp6.txt'), join(dir, 'proc', 'net', 'tcp6'));
  vi.stubEnv('FLOODGATE_PROC_ROOT', join(dir, 'proc'));
  stdout = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

const explainJson = async (target: string) => {
  stdout = '';
  await explainCommand(target, { stateDir, policy, json: true });
  return JSON.parse(stdout) as Record<string, unknown> & {
    counts: { rule: string; count: number; threshold: number; over: boolean; key: string | null }[];
    history: { event: string; target: string; reason: string | null }[];
  };
};

describe('explain with no daemon', () => {
  it('shows a ban with its firewall rule, its history, and its counts against each rule', async () => {
    const now = Date.now();
    const store = BanStore.load(stateFile(stateDir, 'enforce'), { ttl: 600_000, maxTtl: 86_400_000 });
    store.add({ target: '198.51.100.77', rule: 'conn-flood', count: 120, createdAt: now }, 600_000);
    store.save();
    const event = (name: string, target: string, extra: Record<string, unknown> = {}) =>
      historyEntry(
        {
          level: 'info',
          msg: '',
          fields: { event: name, target, rule: 'conn-flood', count: 120, ttl: '10m', dryRun: false, ...extra },
        },
        now,
      )!;
    appendHistory(stateDir, [
      event('ban', '198.51.100.77'),
      event('expire', '198.51.100.77'),
      event('ban', '203.0.113.9'),
      event('ban', '198.51.100.77', { reason: 'again' }),
    ]);

    const x = await explainJson('198.51.100.77');
    expect(x).toMatchObject({ target: '198.51.100.77', banned: true, daemon: null, allowlisted: null, grace: null });
    expect(x.ban).toMatchObject({ target: '198.51.100.77', rule: 'conn-flood', count: 120, dryRun: false });
    expect(x.firewall).toEqual({
      applied: true,
      command: expect.stringMatching(/^iptables .*198\.51\.100\.77.*floodgate/),
    });
    expect(x.history.map((e) => [e.event, e.reason])).toEqual([
      ['ban', null],
      ['expire', null],
      ['ban', 'again'],
    ]);
    expect(x.counts).toEqual([
      { rule: 'syn-flood', per: 'ip', key: null, count: 0, threshold: 20, over: false },
      { rule: 'conn-flood', per: 'ip', key: '198.51.100.77', count: 120, threshold: 100, over: true },
      { rule: 'syn-net', per: 'net', key: '198.51.100.0/24', count: 30, threshold: 50, over: false },
    ]);

    stdout = '';
    await explainCommand('198.51.100.77', { stateDir, policy });
    expect(stdout).toContain('banned:       yes: rule conn-flood, 120 sockets at the time');
    expect(stdout).toMatch(/firewall: {5}iptables /);
    expect(stdout).toContain('history:      3 recorded (oldest first):');
    expect(stdout).toContain('  conn-flood (per ip): 120 socket(s), threshold 100: OVER, the detector flags it');
  });

  it('says an address is allowlisted, by which entry, and a network that holds one is partly', async () => {
    const x = await explainJson('198.51.100.200');
    expect(x).toMatchObject({
      banned: false,
      ban: null,
      allowlisted: { entry: '198.51.100.200', source: 'policy', covers: true },
      history: [],
    });
    expect(x.counts.find((c) => c.rule === 'conn-flood')).toMatchObject({ count: 60, over: false });
    expect((await explainJson('198.51.100.0/24')).allowlisted).toEqual({
      entry: '198.51.100.200',
      source: 'policy',
      covers: false,
    });
    expect((await explainJson('127.0.0.1')).allowlisted).toEqual({
      entry: '127.0.0.0/8',
      source: 'loopback',
      covers: true,
    });
  });

  it('shows a grace period left by an unban, and the network ban that holds an address', async () => {
    const now = Date.now();
    const store = BanStore.load(stateFile(stateDir, 'dry-run'), { ttl: 600_000, maxTtl: 86_400_000 });
    store.setGrace('192.0.2.9', now + 3_600_000);
    store.add({ target: '203.0.113.0/24', rule: 'manual', count: 0, createdAt: now }, 600_000);
    store.save();
    expect((await explainJson('192.0.2.9')).grace).toEqual({ until: new Date(now + 3_600_000).toISOString() });
    const x = await explainJson('203.0.113.7');
    expect(x).toMatchObject({
      banned: true,
      ban: { target: '203.0.113.0/24', dryRun: true },
      firewall: { applied: false },
    });
    stdout = '';
    await explainCommand('203.0.113.7', { stateDir, policy });
    expect(stdout).toContain('banned:       yes (the ban of 203.0.113.0/24, which holds it): rule manual');
    expect(stdout).toContain('firewall:     none: a dry-run ban');
  });

  it('refuses what is not an address or network, naming it', async () => {
    await expect(explainCommand('not-an-ip', { stateDir, policy })).rejects.toThrow(
      new UsageError(
        'expected an IPv4 or IPv6 address or a network like 192.0.2.7 or 198.51.100.0/24, got "not-an-ip"',
      ),
    );
  });
});
