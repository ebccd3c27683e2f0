// What a policy reload reports: rules added, removed and changed by name, allowlist entries, other
// settings with durations and rates as written, and the firewall settings only a restart changes.
import { describe, expect, it } from 'vitest';
import { describeDiff, diffPolicy } from '../../src/policy/policy-diff.js';
import { parsePolicy } from '../../src/policy/load-policy.js';

const base = `
allowlist: [127.0.0.0/8, 192.0.2.10]
rules:
  - {name: syn-flood, states: [SYN_RECV], threshold: 20}
  - {name: http-flood, ports: [80, 443], threshold: 100}
ban: {ttl: 10m}
`;
const policy = (text: string) => parsePolicy(text, 'p.yaml');

describe('diffPolicy', () => {
  it('finds nothing between a policy and itself', () => {
    const diff = diffPolicy(policy(base), policy(base));
    expect(describeDiff(diff)).toBe('nothing changed');
  });

  it('names rules added, removed and changed, allowlist entries and settings', () => {
    const next = policy(`
interval: 2s
allowlist: [127.0.0.0/8, 198.51.100.7]
rules:
  - {name: syn-flood, states: [SYN_RECV], threshold: 5}
  - {name: conn-flood, threshold: 150}
ban: {ttl: 20m, rate: 5/s}
`);
    const diff = diffPolicy(policy(base), next);
    expect(diff.rulesAdded).toEqual(['conn-flood']);
    expect(diff.rulesRemoved).toEqual(['http-flood']);
    expect(diff.rulesChanged).toEqual([{ name: 'syn-flood', changes: [{ key: 'threshold', from: '20', to: '5' }] }]);
    expect(diff.allowlistAdded).toEqual(['198.51.100.7']);
    expect(diff.allowlistRemoved).toEqual(['192.0.2.10']);
    expect(diff.settings).toEqual([
      { key: 'interval', from: '5s', to: '2s' },
      { key: 'ban.ttl', from: '10m', to: '20m' },
      { key: 'ban.rate', from: '20/s', to: '5/s' },
    ]);
    expect(diff.restartOnly).toEqual([]);
    expect(describeDiff(diff)).toBe(
      'rules added: conn-flood; rules removed: http-flood; rules changed: syn-flood (threshold 20 -> 5); allowlist added: 198.51.100.7; allowlist removed: 192.0.2.10; interval 5s -> 2s; ban.ttl 10m -> 20m; ban.rate 20/s -> 5/s',
    );
  });

  it('sets firewall changes apart: they need a restart', () => {
    const diff = diffPolicy(policy(base), policy(`${base}firewall: {backend: nftables}\n`));
    expect(diff.restartOnly).toEqual([{ key: 'firewall.backend', from: 'iptables', to: 'nftables' }]);
    expect(diff.settings).toEqual([]);
  });

  it('shows a reload hook added', () => {
    const diff = diffPolicy(policy(base), policy(`${base}reload: {command: [systemctl, reload, nginx]}\n`));
    expect(describeDiff(diff)).toBe(
      'reload.command (none) -> [systemctl, reload, nginx]; reload.debounce (none) -> 30s; reload.timeout (none) -> 10s',
    );
  });
});
