// Every state directory is its own owner in the firewall: the exact argv each backend writes for a
// non-default instance, and that ownership is by whole name, never by prefix (`floodgate` is not
// `floodgate-<id>`'s and the other way round). Nothing here runs a firewall tool.
import { describe, expect, it } from 'vitest';
import { createBackend, removeOtherBackends } from '../../src/firewall/create-backend.js';
import { DEFAULT_INSTANCE, firewallInstance } from '../../src/firewall/instance.js';
import { IpsetBackend } from '../../src/firewall/ipset.js';
import { IptablesBackend } from '../../src/firewall/iptables.js';
import { NftablesBackend } from '../../src/firewall/nftables.js';
import { type Cidr, formatCidr, parseCidr } from '../../src/net/ip.js';
import { loadPolicy } from '../../src/policy/load-policy.js';
import { RecordingRunner } from '../support/recording-runner.js';

const cidr = (text: string): Cidr => parseCidr(text)!;
const A = firewallInstance('1a2b3c4d');
const B = firewallInstance('1a2b3c4e');
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

describe('firewallInstance', () => {
  it('keeps the plain names for the default state directory', () => {
    expect(DEFAULT_INSTANCE).toEqual({
      id: null,
      tag: 'floodgate',
      sets: { 4: 'floodgate4', 6: 'floodgate6' },
      table: 'floodgate',
    });
  });

  it('derives every name from the id, within ipset’s 31 characters even with the resize suffix', () => {
    expect(A).toEqual({
      id: '1a2b3c4d',
      tag: 'floodgate-1a2b3c4d',
      sets: { 4: 'floodgate-1a2b3c4d-4', 6: 'floodgate-1a2b3c4d-6' },
      table: 'floodgate-1a2b3c4d',
    });
    expect(`${A.sets[6]}-next`.length).toBeLessThanOrEqual(31);
  });

  it('refuses an id that is not 8 lowercase hex digits', () => {
    for (const bad of ['', '1a2b3c4', '1A2B3C4D', '1a2b3c4d5', '../x', '1a2b 3c4'])
      expect(() => firewallInstance(bad)).toThrow(/expected 8 lowercase hex digits/);
  });
});

describe('iptables: an instance’s rules', () => {
  const options = { chain: 'INPUT', target: 'DROP', instance: A } as const;

  it('carry the instance tag as their comment', () => {
    expect(
      new IptablesBackend(new RecordingRunner(), options).command({ op: 'add', target: cidr('198.51.100.7') }),
    ).toEqual([
      'iptables',
      '-w',
      '-A',
      'INPUT',
      '-s',
      '198.51.100.7/32',
      '-m',
      'comment',
      '--comment',
      'floodgate-1a2b3c4d',
      '-j',
      'DROP',
    ]);
  });

  const chain = [
    '-P INPUT ACCEPT',
    '-A INPUT -s 192.0.2.1/32 -m comment --comment floodgate -j DROP',
    '-A INPUT -s 192.0.2.2/32 -m comment --comment floodgate-1a2b3c4d -j DROP',
    '-A INPUT -s 192.0.2.3/32 -m comment --comment floodgate-1a2b3c4e -j DROP',
    '-A INPUT -s 192.0.2.4/32 -m comment --comment floodgate-1a2b3c4d5 -j DROP',
    '-A INPUT -s 192.0.2.5/32 -m comment --comment floodgate-1a2b -j DROP',
  ].join('\n');
  const runner = () =>
    new RecordingRunner()
      .on(['iptables', '-w', '-S', 'INPUT'], { stdout: chain })
      .on(['ip6tables', '-w', '-S', 'INPUT'], { stdout: '-P INPUT ACCEPT' });

  it('are told apart by the whole comment: each instance lists only its own', async () => {
    expect((await new IptablesBackend(runner(), options).list()).map(formatCidr)).toEqual(['192.0.2.2']);
    expect((await new IptablesBackend(runner(), { ...options, instance: B }).list()).map(formatCidr)).toEqual([
      '192.0.2.3',
    ]);
    expect((await new IptablesBackend(runner(), { chain: 'INPUT', target: 'DROP' }).list()).map(formatCidr)).toEqual([
      '192.0.2.1',
    ]);
  });

  it('flush deletes only the instance’s own rule', async () => {
    const r = runner();
    await new IptablesBackend(r, options).flush();
    const restores = r.calls.filter((c) => c.argv[0] === 'iptables-restore').map((c) => c.input);
    expect(restores[0]).toBe(
      '*filter\n-D INPUT -s 192.0.2.2/32 -m comment --comment floodgate-1a2b3c4d -j DROP\nCOMMIT\n',
    );
  });
});

describe('ipset: an instance’s sets and rule', () => {
  const options = { chain: 'INPUT', table: 'filter', target: 'DROP', maxElements: 1000, instance: A } as const;

  it('are named after the instance in every command', async () => {
    const runner = new RecordingRunner()
      .on(['ipset', 'list'], { exitCode: 1 })
      .on(['iptables', '-w', '-C'], { exitCode: 1 })
      .on(['ip6tables', '-w', '-C'], { exitCode: 1 });
    const backend = new IpsetBackend(runner, options, () => NOW);
    await backend.repair();
    expect(runner.commands).toEqual([
      'ipset list floodgate-1a2b3c4d-4 -t',
      'ipset create floodgate-1a2b3c4d-4 hash:net family inet timeout 0 maxelem 1000 -exist',
      'iptables -w -C INPUT -m set --match-set floodgate-1a2b3c4d-4 src -m comment --comment floodgate-1a2b3c4d -j DROP',
      'iptables -w -I INPUT 1 -m set --match-set floodgate-1a2b3c4d-4 src -m comment --comment floodgate-1a2b3c4d -j DROP',
      'ipset list floodgate-1a2b3c4d-6 -t',
      'ipset create floodgate-1a2b3c4d-6 hash:net family inet6 timeout 0 maxelem 1000 -exist',
      'ip6tables -w -C INPUT -m set --match-set floodgate-1a2b3c4d-6 src -m comment --comment floodgate-1a2b3c4d -j DROP',
      'ip6tables -w -I INPUT 1 -m set --match-set floodgate-1a2b3c4d-6 src -m comment --comment floodgate-1a2b3c4d -j DROP',
    ]);
    expect(backend.command({ op: 'add', target: cidr('2001:db8::7'), expiresAt: NOW + 1000 })).toEqual([
      'ipset',
      'add',
      'floodgate-1a2b3c4d-6',
      '2001:db8::7',
      'timeout',
      '601',
      '-exist',
    ]);
  });

  it('flush removes the instance’s rule and destroys only its sets', async () => {
    const runner = new RecordingRunner()
      .on(['iptables', '-w', '-D'], { exitCode: 1 })
      .on(['ip6tables', '-w', '-D'], { exitCode: 1 });
    runner.once(['iptables', '-w', '-D'], {});
    await new IpsetBackend(runner, options).flush();
    expect(runner.commands.filter((c) => c.startsWith('ipset'))).toEqual([
      'ipset destroy floodgate-1a2b3c4d-4',
      'ipset destroy floodgate-1a2b3c4d-6',
    ]);
    expect(runner.commands.filter((c) => c.includes(' -D '))).toEqual([
      'iptables -w -D INPUT -m set --match-set floodgate-1a2b3c4d-4 src -m comment --comment floodgate-1a2b3c4d -j DROP',
      'iptables -w -D INPUT -m set --match-set floodgate-1a2b3c4d-4 src -m comment --comment floodgate-1a2b3c4d -j DROP',
      'ip6tables -w -D INPUT -m set --match-set floodgate-1a2b3c4d-6 src -m comment --comment floodgate-1a2b3c4d -j DROP',
    ]);
  });
});

describe('nftables: an instance’s table', () => {
  const options = { hook: 'input', target: 'DROP', maxElements: 1000, instance: A } as const;

  it('is named after the instance in the table script, element commands, listing and flush', async () => {
    const runner = new RecordingRunner().on(['nft', '-j', 'list'], { stdout: JSON.stringify({ nftables: [] }) });
    const backend = new NftablesBackend(runner, options, () => NOW);
    expect(
      backend
        .tableScript()
        .split('\n')
        .filter((l) => l !== '')
        .every((line) => / inet floodgate-1a2b3c4d( |$)/.test(line)),
    ).toBe(true);
    expect(backend.command({ op: 'delete', target: cidr('198.51.100.0/24') })).toEqual([
      'nft',
      'delete',
      'element',
      'inet',
      'floodgate-1a2b3c4d',
      'nets4',
      '{',
      '198.51.100.0/24',
      '}',
    ]);
    backend.delete(cidr('198.51.100.7'));
    await backend.commit();
    await backend.flush();
    expect(runner.commands).toEqual([
      'nft -j list table inet floodgate-1a2b3c4d',
      'nft delete table inet floodgate-1a2b3c4d',
    ]);
  });
});

describe('removeOtherBackends for an instance', () => {
  it('looks for the instance’s own sets and table by whole name, and leaves the default instance’s alone', async () => {
    const { policy } = loadPolicy();
    const runner = new RecordingRunner()
      .on(['iptables', '-w', '-S'], {
        stdout: '-P INPUT ACCEPT\n-A INPUT -s 192.0.2.1/32 -m comment --comment floodgate -j DROP',
      })
      .on(['ip6tables', '-w', '-S'], { stdout: '-P INPUT ACCEPT' })
      .on(['ipset', 'save'], { exitCode: 1 })
      .on(['ipset', 'list', '-n'], { stdout: 'floodgate4\nfloodgate6\nfloodgate-1a2b3c4e-4\nfloodgate-1a2b3c4d-4x\n' })
      .on(['nft', '-j', 'list'], { exitCode: 1 })
      .on(['nft', 'list', 'table'], { exitCode: 1 });
    for (const backend of ['nftables', 'ipset'] as const)
      expect(await removeOtherBackends({ ...policy, firewall: { ...policy.firewall, backend } }, runner, A)).toEqual(
        [],
      );
    expect(runner.commands.filter((c) => /^(ipset (destroy|del)|ip6?tables.* -D |nft delete)/.test(c))).toEqual([]);
    expect(runner.commands).toContain('ipset list -n');
    expect(runner.commands).toContain('nft list table inet floodgate-1a2b3c4d');
  });

  it('createBackend hands the instance to the backend it makes', () => {
    const { policy } = loadPolicy();
    const backend = createBackend(
      { ...policy, firewall: { ...policy.firewall, backend: 'ipset' } },
      new RecordingRunner(),
      A,
    );
    expect(backend.command({ op: 'delete', target: cidr('198.51.100.7') })).toEqual([
      'ipset',
      'del',
      'floodgate-1a2b3c4d-4',
      '198.51.100.7',
      '-exist',
    ]);
  });
});
