// The ipset backend's reading of `ipset save`: every entry of both sets, whatever surrounds it.
import { describe, expect, it } from 'vitest';
import { IpsetBackend } from '../../src/firewall/ipset.js';
import { formatCidr } from '../../src/net/ip.js';
import { RecordingRunner } from '../support/recording-runner.js';

const OPTIONS = { chain: 'INPUT', table: 'filter', target: 'DROP', maxElements: 65536 } as const;

describe('IpsetBackend.list', () => {
  it('reads the entries of both sets, addresses and networks, and nothing else', async () => {
    const runner = new RecordingRunner()
      .on(['ipset', 'save', 'floodgate4'], {
        stdout: [
          'create floodgate4 hash:net family inet hashsize 1024 maxelem 65536 timeout 0',
          'add floodgate4 198.51.100.7 timeout 3599',
          'add floodgate4 203.0.113.0/24 timeout 120',
          'add floodgate4 192.0.2.9',
          'add floodgate40 192.0.2.10 timeout 5', // another set whose name starts alike
          '',
        ].join('\n'),
      })
      .on(['ipset', 'save', 'floodgate6'], {
        stdout: 'add floodgate6 2001:db8::/64 timeout 60\nadd floodgate6 2001:db8:1::66 timeout 60',
      });
    const listed = await new IpsetBackend(runner, OPTIONS).list();
    expect(listed.map(formatCidr)).toEqual([
      '198.51.100.7',
      '203.0.113.0/24',
      '192.0.2.9',
      '2001:db8::/64',
      '2001:db8:1::66',
    ]);
  });

  it('reads a listing that starts with an entry, and a missing set as empty', async () => {
    const runner = new RecordingRunner()
      .on(['ipset', 'save', 'floodgate4'], { stdout: 'add floodgate4 198.51.100.1 timeout 9' })
      .on(['ipset', 'save', 'floodgate6'], {
        exitCode: 1,
        stderr: 'ipset v7.17: The set with the given name does not exist',
      });
    expect((await new IpsetBackend(runner, OPTIONS).list()).map(formatCidr)).toEqual(['198.51.100.1']);
  });
});

describe('IpsetBackend.repair', () => {
  it('inserts a missing set rule once when two repairs run at the same time (a flush’s and a reconcile’s)', async () => {
    const present = new Set<string>();
    const rule = (argv: readonly string[]) =>
      argv.filter((_word, i) => i !== 2 && !(argv[2] === '-I' && i === 4)).join(' ');
    const runner = new RecordingRunner()
      .on(['ipset', 'list'], { stdout: 'Header: family inet hashsize 1024 maxelem 65536 timeout 0\n' })
      .on(['iptables'], (call) => {
        if (call.argv[2] === '-C') return { exitCode: present.has(rule(call.argv)) ? 0 : 1 };
        if (call.argv[2] === '-I') present.add(rule(call.argv));
        return {};
      })
      .on(['ip6tables'], (call) => {
        if (call.argv[2] === '-C') return { exitCode: present.has(rule(call.argv)) ? 0 : 1 };
        if (call.argv[2] === '-I') present.add(rule(call.argv));
        return {};
      });
    const backend = new IpsetBackend(runner, OPTIONS);
    const restored = await Promise.all([backend.repair(), backend.repair()]);
    expect(restored).toEqual([2, 0]);
    expect(runner.commands.filter((c) => c.includes(' -I '))).toEqual([
      'iptables -w -I INPUT 1 -m set --match-set floodgate4 src -m comment --comment floodgate -j DROP',
      'ip6tables -w -I INPUT 1 -m set --match-set floodgate6 src -m comment --comment floodgate -j DROP',
    ]);
  });
});
