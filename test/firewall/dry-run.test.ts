// Dry-run: the exact command the real backend would run for each change, would-be rules for list(),
// and never a command.
import { describe, expect, it } from 'vitest';
import type { FirewallChange } from '../../src/firewall/backend.js';
import { DryRunBackend } from '../../src/firewall/dry-run.js';
import { IptablesBackend, type IptablesOptions } from '../../src/firewall/iptables.js';
import { type Cidr, formatCidr, parseCidr } from '../../src/net/ip.js';
import { RecordingRunner } from '../support/recording-runner.js';

const cidr = (text: string): Cidr => parseCidr(text)!;

function setup(existing: Cidr[] = [], options: IptablesOptions = { chain: 'INPUT', target: 'DROP' }) {
  const runner = new RecordingRunner();
  const real = new IptablesBackend(runner, options);
  const shown: { op: FirewallChange['op']; command: string }[] = [];
  const backend = new DryRunBackend(
    real,
    (change, argv) => shown.push({ op: change.op, command: argv.join(' ') }),
    existing,
  );
  return { runner, backend, shown };
}

describe('DryRunBackend', () => {
  it('shows the real backend’s exact command for each change, IPv4 and IPv6', async () => {
    const { backend, shown } = setup();
    backend.add(cidr('198.51.100.7'));
    backend.add(cidr('2001:db8::7'));
    backend.add(cidr('203.0.113.0/24'));
    await backend.commit();
    expect(shown).toEqual([
      { op: 'add', command: 'iptables -w -A INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j DROP' },
      { op: 'add', command: 'ip6tables -w -A INPUT -s 2001:db8::7/128 -m comment --comment floodgate -j DROP' },
      { op: 'add', command: 'iptables -w -A INPUT -s 203.0.113.0/24 -m comment --comment floodgate -j DROP' },
    ]);
  });

  it('shows the delete command when a would-be rule is lifted', async () => {
    const { backend, shown } = setup([cidr('2001:db8::7')]);
    backend.delete(cidr('2001:db8::7'));
    await backend.commit();
    expect(shown).toEqual([
      { op: 'delete', command: 'ip6tables -w -D INPUT -s 2001:db8::7/128 -m comment --comment floodgate -j DROP' },
    ]);
  });

  it('follows the real backend’s chain and target', async () => {
    const { backend, shown } = setup([], { chain: 'FLOODGATE', target: 'REJECT' });
    backend.add(cidr('198.51.100.7'));
    await backend.commit();
    expect(shown[0]!.command).toBe(
      'iptables -w -A FLOODGATE -s 198.51.100.7/32 -m comment --comment floodgate -j REJECT',
    );
    expect(backend.command({ op: 'delete', target: cidr('198.51.100.7') })).toEqual([
      'iptables',
      '-w',
      '-D',
      'FLOODGATE',
      '-s',
      '198.51.100.7/32',
      '-m',
      'comment',
      '--comment',
      'floodgate',
      '-j',
      'REJECT',
    ]);
  });

  it('keeps would-be rules for list(), including those of a previous run', async () => {
    const { backend } = setup([cidr('192.0.2.50')]);
    backend.add(cidr('198.51.100.7'));
    backend.add(cidr('2001:db8::/64'));
    await backend.commit();
    expect((await backend.list()).map(formatCidr)).toEqual(['192.0.2.50', '198.51.100.7', '2001:db8::/64']);
    backend.delete(cidr('198.51.100.7'));
    await backend.commit();
    expect((await backend.list()).map(formatCidr)).toEqual(['192.0.2.50', '2001:db8::/64']);
  });

  it('does not show a rule twice, nor the lifting of a rule that is not there', async () => {
    const { backend, shown } = setup([cidr('192.0.2.50')]);
    backend.add(cidr('192.0.2.50'));
    backend.delete(cidr('198.51.100.7'));
    const result = await backend.commit();
    expect(shown).toEqual([]);
    expect(result.failed).toEqual([]);
    expect((await backend.list()).map(formatCidr)).toEqual(['192.0.2.50']);
  });

  it('flush shows the removal of every would-be rule and empties the list', async () => {
    const { backend, shown } = setup([cidr('192.0.2.50'), cidr('2001:db8::7')]);
    await backend.flush();
    expect(shown.map((s) => s.command)).toEqual([
      'iptables -w -D INPUT -s 192.0.2.50/32 -m comment --comment floodgate -j DROP',
      'ip6tables -w -D INPUT -s 2001:db8::7/128 -m comment --comment floodgate -j DROP',
    ]);
    expect(await backend.list()).toEqual([]);
  });

  it('never calls the runner, whatever it is asked to do', async () => {
    const { backend, runner } = setup([cidr('192.0.2.50')]);
    await backend.init();
    backend.add(cidr('198.51.100.7'));
    backend.delete(cidr('192.0.2.50'));
    await backend.commit();
    await backend.list();
    await backend.flush();
    expect(runner.calls).toEqual([]);
    expect(backend.dryRun).toBe(true);
    expect(backend.kind).toBe('iptables');
  });
});
