// scan --policy: what the daemon would do with a capture at one tick, nothing banned yet.
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { scanCommand } from '../../src/cli/scan.js';
import { whatIf } from '../../src/detect/what-if.js';
import { ConfigError, UsageError } from '../../src/errors.js';
import { loadPolicy, parsePolicy } from '../../src/policy/load-policy.js';
import type { SocketRow } from '../../src/table/socket-row.js';
import { SocketTable } from '../../src/table/socket-table.js';
import { procAllRows } from '../table/fixture-tables.js';

const POLICY_FILE = fileURLToPath(new URL('../../policies/default.yaml', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/tables/mixed/', import.meta.url));
const defaultPolicy = loadPolicy(POLICY_FILE).policy;
const mixed = SocketTable.from(procAllRows('mixed'));

const halfOpen = (remote: string, count: number): SocketRow[] =>
  Array.from({ length: count }, (_, i) => ({
    proto: 'tcp' as const,
    state: 'SYN_RECV' as const,
    localPort: 80,
    remote,
    remotePort: 20_000 + i,
  }));

describe('whatIf', () => {
  it('lists the bans the daemon would make, targets without /32 or /128, with the first ban’s ttl', () => {
    const { bans, attack } = whatIf(mixed, defaultPolicy);
    expect([...bans].sort((a, b) => a.rule.localeCompare(b.rule) || a.target.localeCompare(b.target))).toEqual([
      { target: '198.51.100.77', rule: 'http-flood', count: 120, ttl: '10m' },
      { target: '198.51.100.66', rule: 'syn-flood', count: 30, ttl: '10m' },
      { target: '2001:db8:2::66', rule: 'syn-flood', count: 25, ttl: '10m' },
      { target: '2001:db8:1::/64', rule: 'syn-flood-subnet', count: 120, ttl: '10m' },
      { target: '203.0.113.0/24', rule: 'syn-flood-subnet', count: 200, ttl: '10m' },
    ]);
    expect(attack).toBeUndefined();
  });

  it('spares the candidates no ban covers: under threshold, or allowlisted', () => {
    const policy = { ...defaultPolicy, allowlist: ['198.51.100.10'] };
    const { spared } = whatIf(mixed, policy, [
      '198.51.100.77',
      '198.51.100.200',
      '203.0.113.1',
      '198.51.100.10',
      '198.51.100.0/24',
    ]);
    expect(spared).toEqual([
      { target: '198.51.100.200', reason: 'under threshold' },
      { target: '198.51.100.10', reason: 'allowlist' },
      { target: '198.51.100.0/24', reason: 'allowlist' },
    ]);
  });

  it('spares a source over a threshold when the allowlist holds it', () => {
    const policy = { ...defaultPolicy, allowlist: ['198.51.100.77'] };
    const { bans, spared } = whatIf(mixed, policy);
    expect(bans.map((b) => b.target)).not.toContain('198.51.100.77');
    expect(spared).toEqual([{ target: '198.51.100.77', reason: 'allowlist' }]);
  });

  it('spares a network over its threshold from fewer than min_sources sources', () => {
    const rows = SocketTable.from([...halfOpen('203.0.113.1', 20), ...halfOpen('203.0.113.2', 20)]);
    const lowNet = {
      ...defaultPolicy,
      rules: defaultPolicy.rules.map((rule) => (rule.per === 'net' ? { ...rule, threshold: 30 } : rule)),
    };
    expect(whatIf(rows, lowNet)).toEqual({ bans: [], spared: [{ target: '203.0.113.0/24', reason: 'min_sources' }] });
  });

  it('spares the bans past ban.max_active', () => {
    const rows = SocketTable.from(['198.51.100.1', '198.51.100.2', '198.51.100.3'].flatMap((ip) => halfOpen(ip, 25)));
    const { bans, spared } = whatIf(rows, { ...defaultPolicy, ban: { ...defaultPolicy.ban, max_active: 2 } });
    expect(bans.map((b) => b.target)).toEqual(['198.51.100.1', '198.51.100.2']);
    expect(spared).toEqual([{ target: '198.51.100.3', reason: 'max_active' }]);
  });

  it('reports a flood with nobody to ban from the half-open total', () => {
    const rows = SocketTable.from(
      Array.from({ length: 300 }, (_, i) => halfOpen(`198.18.${i >> 8}.${i & 255}`, 1)).flat(),
    );
    const policy = parsePolicy(
      'rules:\n  - name: syn\n    states: [SYN_RECV]\n    threshold: 20\nflood_signal: {syn_recv_total: 200}\n',
      'p.yaml',
    );
    expect(whatIf(rows, policy).attack?.reasons).toEqual(['300 half-open connections']);
  });
});

async function scanJson(options: Record<string, unknown>): Promise<Record<string, unknown>> {
  let out = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    await scanCommand({ by: 'ip', prefix4: 24, prefix6: 64, proto: 'all', top: 3, ...options });
  } finally {
    write.mockRestore();
  }
  return (options.json ? JSON.parse(out) : { text: out }) as Record<string, unknown>;
}

describe('scan --input … --policy FILE', () => {
  const input = [`${FIXTURES}proc-tcp.txt`, `${FIXTURES}proc-tcp6.txt`];

  it('adds "bans" and "spared" to the JSON', async () => {
    const out = await scanJson({ input, policy: POLICY_FILE, json: true });
    expect(out.bans).toEqual(whatIf(mixed, defaultPolicy).bans.map((b) => expect.objectContaining(b)));
    expect(out.spared).toEqual([{ target: '198.51.100.200', reason: 'under threshold' }]);
    expect(Object.keys((out.bans as object[])[0]!)).toEqual(['target', 'rule', 'count', 'ttl']);
  });

  it('prints a readable table without --json', async () => {
    const { text } = await scanJson({ input, policy: POLICY_FILE });
    expect(text).toMatch(/^5 bans$/m);
    expect(text).toMatch(/^203\.0\.113\.0\/24\s+syn-flood-subnet\s+200\s+10m$/m);
    expect(text).toMatch(/^198\.51\.100\.200\s+under threshold/m);
  });

  it('has no what-if without --policy', async () => {
    const out = await scanJson({ input, json: true });
    expect(out).not.toHaveProperty('bans');
    expect(out).not.toHaveProperty('spared');
  });

  it('refuses --policy on the live table, and a bad policy file, before reading anything', async () => {
    await expect(scanJson({ policy: POLICY_FILE })).rejects.toThrow(UsageError);
    await expect(scanJson({ input: ['/nonexistent'], policy: `${FIXTURES}proc-tcp.txt` })).rejects.toThrow(ConfigError);
  });
});
