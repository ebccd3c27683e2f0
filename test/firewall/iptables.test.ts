// The iptables backend's exact command lines for IPv4 and IPv6, what it owns, and how it fails.
// Nothing here runs iptables: the backend talks to a recording runner. ExecaRunner's retry and
// missing-tool behaviour is shown with harmless commands (sh, a name that does not exist).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError, CommandFailedError } from '../../src/errors.js';
import type { FirewallChange } from '../../src/firewall/backend.js';
import { IptablesBackend, type IptablesOptions } from '../../src/firewall/iptables.js';
import { type Cidr, type Family, formatCidr, parseCidr } from '../../src/net/ip.js';
import { ExecaRunner, installHint, isTransient } from '../../src/system/command-runner.js';
import { RecordingRunner } from '../support/recording-runner.js';

const cidr = (text: string): Cidr => parseCidr(text)!;
const add = (text: string): FirewallChange => ({ op: 'add', target: cidr(text) });
const del = (text: string): FirewallChange => ({ op: 'delete', target: cidr(text) });
const DEFAULTS: IptablesOptions = { chain: 'INPUT', target: 'DROP' };
const tool = (family: Family) => (family === 4 ? 'iptables' : 'ip6tables');

/** A stateful stand-in for one family's chain: -S prints it, iptables-restore edits it. */
function fakeChain(runner: RecordingRunner, family: Family, rules: string[], chain = 'INPUT'): { rules: string[] } {
  const state = { rules: [...rules] };
  runner.on([tool(family), '-w', '-S', chain], () => ({
    stdout: [`-P ${chain} ACCEPT`, ...state.rules].map((l) => `${l}\n`).join(''),
  }));
  runner.on([`${tool(family)}-restore`, '-w', '--noflush'], (call) => {
    for (const line of (call.input ?? '').split('\n')) {
      if (line.startsWith('-A ')) state.rules.push(line);
      if (line.startsWith('-D ')) {
        const at = state.rules.indexOf(`-A ${line.slice(3)}`);
        if (at < 0) return { exitCode: 1, stderr: `iptables-restore: line 2 failed: ${line}` };
        state.rules.splice(at, 1);
      }
    }
    return {};
  });
  return state;
}

const ruleLine = (source: string, chain = 'INPUT', target = 'DROP') =>
  `-A ${chain} -s ${source} -m comment --comment floodgate -j ${target}`;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('IptablesBackend.command', () => {
  const backend = new IptablesBackend(new RecordingRunner(), DEFAULTS);

  it('writes an IPv4 host as a /32 rule tagged floodgate in INPUT with DROP', () => {
    expect(backend.command(add('198.51.100.7'))).toEqual([
      'iptables',
      '-w',
      '-A',
      'INPUT',
      '-s',
      '198.51.100.7/32',
      '-m',
      'comment',
      '--comment',
      'floodgate',
      '-j',
      'DROP',
    ]);
  });

  it('deletes with the same specification and -D', () => {
    expect(backend.command(del('198.51.100.7'))).toEqual([
      'iptables',
      '-w',
      '-D',
      'INPUT',
      '-s',
      '198.51.100.7/32',
      '-m',
      'comment',
      '--comment',
      'floodgate',
      '-j',
      'DROP',
    ]);
  });

  it('uses ip6tables and a /128 for an IPv6 host, in canonical compressed form', () => {
    expect(backend.command(add('2001:DB8:0:0::7'))).toEqual([
      'ip6tables',
      '-w',
      '-A',
      'INPUT',
      '-s',
      '2001:db8::7/128',
      '-m',
      'comment',
      '--comment',
      'floodgate',
      '-j',
      'DROP',
    ]);
    expect(backend.command(del('2001:db8::7'))[2]).toBe('-D');
  });

  it('keeps the CIDR of a network (host bits cleared)', () => {
    expect(backend.command(add('203.0.113.9/24'))).toContain('203.0.113.0/24');
    expect(backend.command(add('2001:db8:1::/48'))).toEqual([
      'ip6tables',
      '-w',
      '-A',
      'INPUT',
      '-s',
      '2001:db8:1::/48',
      '-m',
      'comment',
      '--comment',
      'floodgate',
      '-j',
      'DROP',
    ]);
  });

  it('treats an IPv4-mapped address as the IPv4 host it is', () => {
    expect(backend.command(add('::ffff:198.51.100.7'))).toEqual(backend.command(add('198.51.100.7')));
  });

  it('takes the chain and the jump target from the options', () => {
    const custom = new IptablesBackend(new RecordingRunner(), { chain: 'FLOODGATE', target: 'REJECT' });
    expect(custom.command(add('198.51.100.7'))).toEqual([
      'iptables',
      '-w',
      '-A',
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
    expect(custom.command(del('2001:db8::7'))).toEqual([
      'ip6tables',
      '-w',
      '-D',
      'FLOODGATE',
      '-s',
      '2001:db8::7/128',
      '-m',
      'comment',
      '--comment',
      'floodgate',
      '-j',
      'REJECT',
    ]);
  });
});

describe('IptablesBackend.commit', () => {
  it('lists the chain, then sends one iptables-restore --noflush with the exact batch (IPv4)', async () => {
    const runner = new RecordingRunner();
    fakeChain(runner, 4, []);
    const backend = new IptablesBackend(runner, DEFAULTS);
    backend.add(cidr('198.51.100.7'));
    const result = await backend.commit();
    expect(runner.commands).toEqual(['iptables -w -S INPUT', 'iptables-restore -w --noflush']);
    expect(runner.calls[1]!.input).toBe(
      '*filter\n-A INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j DROP\nCOMMIT\n',
    );
    expect(result).toEqual({ applied: [add('198.51.100.7')], failed: [] });
  });

  it('uses ip6tables and ip6tables-restore for IPv6', async () => {
    const runner = new RecordingRunner();
    fakeChain(runner, 6, []);
    const backend = new IptablesBackend(runner, DEFAULTS);
    backend.add(cidr('2001:db8::7'));
    await backend.commit();
    expect(runner.commands).toEqual(['ip6tables -w -S INPUT', 'ip6tables-restore -w --noflush']);
    expect(runner.calls[1]!.input).toBe(
      '*filter\n-A INPUT -s 2001:db8::7/128 -m comment --comment floodgate -j DROP\nCOMMIT\n',
    );
  });

  it('sends one restore per family, each with all of that family’s changes in order', async () => {
    const runner = new RecordingRunner();
    fakeChain(runner, 4, [ruleLine('192.0.2.50/32')]);
    fakeChain(runner, 6, []);
    const backend = new IptablesBackend(runner, DEFAULTS);
    backend.add(cidr('198.51.100.7'));
    backend.add(cidr('2001:db8::7'));
    backend.add(cidr('203.0.113.0/24'));
    backend.delete(cidr('192.0.2.50'));
    backend.add(cidr('2001:db8:1::/64'));
    const result = await backend.commit();
    expect(runner.commands).toEqual([
      'iptables -w -S INPUT',
      'iptables-restore -w --noflush',
      'ip6tables -w -S INPUT',
      'ip6tables-restore -w --noflush',
    ]);
    expect(runner.calls[1]!.input).toBe(
      '*filter\n' +
        '-A INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j DROP\n' +
        '-A INPUT -s 203.0.113.0/24 -m comment --comment floodgate -j DROP\n' +
        '-D INPUT -s 192.0.2.50/32 -m comment --comment floodgate -j DROP\n' +
        'COMMIT\n',
    );
    expect(runner.calls[3]!.input).toBe(
      '*filter\n' +
        '-A INPUT -s 2001:db8::7/128 -m comment --comment floodgate -j DROP\n' +
        '-A INPUT -s 2001:db8:1::/64 -m comment --comment floodgate -j DROP\n' +
        'COMMIT\n',
    );
    expect(result.applied).toHaveLength(5);
    expect(result.failed).toEqual([]);
  });

  it('retries a held xtables lock on both the listing and the restore', async () => {
    const runner = new RecordingRunner();
    fakeChain(runner, 4, []);
    const backend = new IptablesBackend(runner, DEFAULTS);
    backend.add(cidr('198.51.100.7'));
    await backend.commit();
    expect(runner.calls.map((c) => c.options.retries)).toEqual([3, 3]);
  });

  it('runs nothing when nothing is buffered', async () => {
    const runner = new RecordingRunner();
    const result = await new IptablesBackend(runner, DEFAULTS).commit();
    expect(runner.calls).toEqual([]);
    expect(result).toEqual({ applied: [], failed: [] });
  });

  it('keeps the last change per target: add then delete in one batch is a delete', async () => {
    const runner = new RecordingRunner();
    const chain = fakeChain(runner, 4, [ruleLine('198.51.100.7/32')]);
    const backend = new IptablesBackend(runner, DEFAULTS);
    backend.add(cidr('198.51.100.7'));
    backend.delete(cidr('198.51.100.7'));
    await backend.commit();
    expect(runner.calls[1]!.input).toBe(
      '*filter\n-D INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j DROP\nCOMMIT\n',
    );
    expect(chain.rules).toEqual([]);
  });

  describe('idempotence', () => {
    it('does not add a second copy of a rule that is already there', async () => {
      const runner = new RecordingRunner();
      const chain = fakeChain(runner, 4, [ruleLine('198.51.100.7/32')]);
      const backend = new IptablesBackend(runner, DEFAULTS);
      backend.add(cidr('198.51.100.7'));
      const result = await backend.commit();
      expect(runner.commands).toEqual(['iptables -w -S INPUT']);
      expect(result.applied).toEqual([add('198.51.100.7')]);
      expect(chain.rules).toHaveLength(1);
    });

    it('treats the delete of an absent rule as done without a restore line', async () => {
      const runner = new RecordingRunner();
      fakeChain(runner, 6, []);
      const backend = new IptablesBackend(runner, DEFAULTS);
      backend.delete(cidr('2001:db8::7'));
      const result = await backend.commit();
      expect(runner.commands).toEqual(['ip6tables -w -S INPUT']);
      expect(result.applied).toEqual([del('2001:db8::7')]);
    });

    it('leaves only the changes that do something in the restore input', async () => {
      const runner = new RecordingRunner();
      fakeChain(runner, 4, [ruleLine('198.51.100.7/32')]);
      const backend = new IptablesBackend(runner, DEFAULTS);
      backend.add(cidr('198.51.100.7')); // present
      backend.delete(cidr('192.0.2.1')); // absent
      backend.add(cidr('198.51.100.8')); // new
      const result = await backend.commit();
      expect(runner.calls[1]!.input).toBe(
        '*filter\n-A INPUT -s 198.51.100.8/32 -m comment --comment floodgate -j DROP\nCOMMIT\n',
      );
      expect(result.applied.map((c) => `${c.op} ${formatCidr(c.target)}`).sort()).toEqual([
        'add 198.51.100.7',
        'add 198.51.100.8',
        'delete 192.0.2.1',
      ]);
    });
  });
});

describe('IptablesBackend.list: only floodgate’s exact rules are its own', () => {
  const foreign = [
    '-N LOGDROP',
    '-A INPUT -i lo -j ACCEPT',
    '-A INPUT -s 192.0.2.1/32 -j DROP', // no comment
    '-A INPUT -s 192.0.2.2/32 -m comment --comment floodgate -j ACCEPT', // another target
    '-A INPUT -s 192.0.2.3/32 -p tcp -m tcp --dport 22 -m comment --comment floodgate -j DROP', // extra matches
    '-A INPUT -s 192.0.2.4/32 -i eth0 -m comment --comment floodgate -j DROP', // extra match, same shape
    '-A INPUT -s 192.0.2.5/32 -m comment --comment floodgate-old -j DROP', // another comment
    '-A INPUT -s 192.0.2.6/32 -m comment --comment "floodgate manual" -j DROP', // a quoted comment
    '-A INPUT -d 192.0.2.7/32 -m comment --comment floodgate -j DROP', // destination, not source
    '-A INPUT ! -s 192.0.2.8/32 -m comment --comment floodgate -j DROP', // negated source
    '-A FORWARD -s 192.0.2.9/32 -m comment --comment floodgate -j DROP', // another chain
    '-A INPUT -s 192.0.2.10/32 -m comment --comment floodgate -j LOGDROP', // a user chain as target
  ];

  it('returns the exact rules, once per rule, IPv4 and IPv6', async () => {
    const runner = new RecordingRunner();
    fakeChain(runner, 4, [
      ...foreign,
      ruleLine('198.51.100.7/32'),
      ruleLine('203.0.113.0/24'),
      ruleLine('198.51.100.7/32'),
    ]);
    fakeChain(runner, 6, [
      '-A INPUT -s 2001:db8::5/128 -p tcp -m comment --comment floodgate -j DROP',
      ruleLine('2001:db8::7/128'),
    ]);
    const listed = await new IptablesBackend(runner, DEFAULTS).list();
    expect(listed.map(formatCidr)).toEqual(['198.51.100.7', '203.0.113.0/24', '198.51.100.7', '2001:db8::7']);
    expect(runner.commands).toEqual(['iptables -w -S INPUT', 'ip6tables -w -S INPUT']);
  });

  it('never deletes a rule that only resembles floodgate’s', async () => {
    const runner = new RecordingRunner();
    const chain = fakeChain(runner, 4, foreign);
    const backend = new IptablesBackend(runner, DEFAULTS);
    for (let i = 1; i <= 10; i++) backend.delete(cidr(`192.0.2.${i}`));
    const result = await backend.commit();
    expect(runner.commands).toEqual(['iptables -w -S INPUT']);
    expect(result.applied).toHaveLength(10);
    expect(chain.rules).toEqual(foreign);
  });

  it('flush removes every copy of floodgate’s rules and nothing else', async () => {
    const runner = new RecordingRunner();
    const chain = fakeChain(runner, 4, [
      ...foreign,
      ruleLine('198.51.100.7/32'),
      ruleLine('198.51.100.7/32'),
      ruleLine('203.0.113.0/24'),
    ]);
    const chain6 = fakeChain(runner, 6, [ruleLine('2001:db8::7/128')]);
    await new IptablesBackend(runner, DEFAULTS).flush();
    expect(chain.rules).toEqual(foreign);
    expect(chain6.rules).toEqual([]);
  });

  it('recognises a /0 rule, which iptables prints without -s, so that flush and reconcile can remove it', async () => {
    const runner = new RecordingRunner();
    const everything = '-A INPUT -m comment --comment floodgate -j DROP';
    fakeChain(runner, 4, [everything, '-A INPUT -p tcp -m comment --comment floodgate -j DROP', everything]);
    fakeChain(runner, 6, [everything]);
    const listed = await new IptablesBackend(runner, DEFAULTS).list();
    expect(listed.map(formatCidr)).toEqual(['0.0.0.0/0', '0.0.0.0/0', '::/0']);
  });

  it('looks in the configured chain for the configured target', async () => {
    const runner = new RecordingRunner();
    fakeChain(
      runner,
      4,
      ['-N FLOODGATE', ruleLine('198.51.100.7/32'), ruleLine('198.51.100.8/32', 'FLOODGATE')],
      'FLOODGATE',
    );
    fakeChain(runner, 6, [], 'FLOODGATE');
    const listed = await new IptablesBackend(runner, { chain: 'FLOODGATE', target: 'DROP' }).list();
    expect(listed.map(formatCidr)).toEqual(['198.51.100.8']);
    expect(runner.commands).toEqual(['iptables -w -S FLOODGATE', 'ip6tables -w -S FLOODGATE']);
  });

  it('recognises its REJECT rules as iptables prints them, with the default --reject-with', async () => {
    const runner = new RecordingRunner();
    fakeChain(runner, 4, [
      '-A INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j REJECT --reject-with icmp-port-unreachable',
      '-A INPUT -s 198.51.100.8/32 -m comment --comment floodgate -j REJECT --reject-with tcp-reset', // someone else's choice
    ]);
    fakeChain(runner, 6, [
      '-A INPUT -s 2001:db8::7/128 -m comment --comment floodgate -j REJECT --reject-with icmp6-port-unreachable',
    ]);
    const backend = new IptablesBackend(runner, { chain: 'INPUT', target: 'REJECT' });
    expect((await backend.list()).map(formatCidr)).toEqual(['198.51.100.7', '2001:db8::7']);
  });

  it('deletes its REJECT rule instead of taking it for absent', async () => {
    const runner = new RecordingRunner();
    runner.on(['iptables', '-w', '-S'], {
      stdout:
        '-P INPUT ACCEPT\n-A INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j REJECT --reject-with icmp-port-unreachable\n',
    });
    const backend = new IptablesBackend(runner, { chain: 'INPUT', target: 'REJECT' });
    backend.delete(cidr('198.51.100.7'));
    await backend.commit();
    expect(runner.commands).toEqual(['iptables -w -S INPUT', 'iptables-restore -w --noflush']);
    expect(runner.calls[1]!.input).toBe(
      '*filter\n-D INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j REJECT\nCOMMIT\n',
    );
  });
});

describe('IptablesBackend failures', () => {
  it('falls back to one iptables -A/-D per change when the batch fails, and reports each failure', async () => {
    const runner = new RecordingRunner();
    runner.on(['iptables', '-w', '-S', 'INPUT'], { stdout: `-P INPUT ACCEPT\n${ruleLine('192.0.2.50/32')}\n` });
    runner.on(['iptables-restore'], { exitCode: 2, stderr: 'iptables-restore: line 3 failed\n' });
    runner.on(['iptables', '-w', '-A', 'INPUT', '-s', '203.0.113.0/24'], {
      exitCode: 1,
      stderr: 'iptables: Invalid argument. Run `dmesg` for more information.\n',
    });
    const backend = new IptablesBackend(runner, DEFAULTS);
    backend.add(cidr('198.51.100.7'));
    backend.add(cidr('203.0.113.0/24'));
    backend.delete(cidr('192.0.2.50'));
    const result = await backend.commit();
    expect(runner.commands).toEqual([
      'iptables -w -S INPUT',
      'iptables-restore -w --noflush',
      'iptables -w -A INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j DROP',
      'iptables -w -A INPUT -s 203.0.113.0/24 -m comment --comment floodgate -j DROP',
      'iptables -w -D INPUT -s 192.0.2.50/32 -m comment --comment floodgate -j DROP',
    ]);
    expect(runner.calls.slice(2).map((c) => c.options.retries)).toEqual([3, 3, 3]);
    expect(result.applied).toEqual([add('198.51.100.7'), del('192.0.2.50')]);
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]!.change).toEqual(add('203.0.113.0/24'));
    expect(result.failed[0]!.error).toBeInstanceOf(CommandFailedError);
    expect((result.failed[0]!.error as CommandFailedError).commandExitCode).toBe(1);
    expect((result.failed[0]!.error as CommandFailedError).stderr).toContain('Invalid argument');
  });

  it('a failed IPv4 batch does not stop the IPv6 batch', async () => {
    const runner = new RecordingRunner();
    fakeChain(runner, 4, []);
    fakeChain(runner, 6, []);
    runner.on(['iptables-restore'], { exitCode: 1, stderr: 'bad' });
    runner.on(['iptables', '-w', '-A'], { exitCode: 1, stderr: 'bad' });
    const backend = new IptablesBackend(runner, DEFAULTS);
    backend.add(cidr('198.51.100.7'));
    backend.add(cidr('2001:db8::7'));
    const result = await backend.commit();
    expect(result.failed.map((f) => formatCidr(f.change.target))).toEqual(['198.51.100.7']);
    expect(result.applied).toEqual([add('2001:db8::7')]);
    expect(runner.commands).toContain('ip6tables-restore -w --noflush');
  });

  it('lets a missing tool through as BackendUnavailableError instead of per-change failures', async () => {
    const runner = new RecordingRunner();
    runner.on(['iptables', '-w', '-S'], { stdout: '-P INPUT ACCEPT\n' });
    runner.on(['iptables-restore'], {
      throws: new BackendUnavailableError(`iptables-restore not found: ${installHint('iptables-restore')}`),
    });
    const backend = new IptablesBackend(runner, DEFAULTS);
    backend.add(cidr('198.51.100.7'));
    await expect(backend.commit()).rejects.toThrow(BackendUnavailableError);
    expect(runner.commands).toEqual(['iptables -w -S INPUT', 'iptables-restore -w --noflush']);
  });
});

describe('IptablesBackend.init', () => {
  it('refuses to run as non-root, pointing to sudo or --dry-run, without running anything', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(1000);
    const runner = new RecordingRunner();
    const init = new IptablesBackend(runner, DEFAULTS).init();
    await expect(init).rejects.toThrow(BackendUnavailableError);
    await expect(init).rejects.toThrow(/needs root.*sudo.*--dry-run/);
    expect(runner.calls).toEqual([]);
  });

  it('as root, probes the chain with iptables and ip6tables without throwing on failure', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(0);
    const runner = new RecordingRunner();
    runner.on(['iptables', '-w', '-S'], { stdout: '-P INPUT ACCEPT\n' });
    runner.on(['ip6tables', '-w', '-S'], { stdout: '-P INPUT ACCEPT\n' });
    await new IptablesBackend(runner, DEFAULTS).init();
    expect(runner.commands).toEqual(['iptables -w -S INPUT', 'ip6tables -w -S INPUT']);
    expect(runner.calls.every((c) => c.options.reject === false)).toBe(true);
  });

  it('names the policy key when the configured chain does not exist', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(0);
    const runner = new RecordingRunner();
    runner.on(['iptables', '-w', '-S'], { exitCode: 1, stderr: 'iptables: No chain/target/match by that name.\n' });
    const init = new IptablesBackend(runner, { chain: 'FLOODGATE', target: 'DROP' }).init();
    await expect(init).rejects.toThrow(BackendUnavailableError);
    await expect(init).rejects.toThrow(
      'iptables cannot be used: chain FLOODGATE does not exist in the filter table (firewall.chain in the policy)',
    );
  });

  it('passes on the tool’s own message for other probe failures (an IPv6-less kernel)', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(0);
    const runner = new RecordingRunner();
    runner.on(['iptables', '-w', '-S'], { stdout: '-P INPUT ACCEPT\n' });
    runner.on(['ip6tables', '-w', '-S'], {
      exitCode: 3,
      stderr:
        "ip6tables v1.8.9 (nf_tables): can't initialize ip6tables table `filter': Address family not supported by protocol\n",
    });
    await expect(new IptablesBackend(runner, DEFAULTS).init()).rejects.toThrow(
      /^ip6tables cannot be used: ip6tables v1\.8\.9 .*Address family not supported by protocol$/,
    );
  });
});

describe('ExecaRunner (with harmless commands, never a firewall tool)', () => {
  it('isTransient knows exit code 4 and the xtables lock message', () => {
    expect(isTransient({ exitCode: 4, stdout: '', stderr: '' })).toBe(true);
    expect(
      isTransient({
        exitCode: 1,
        stdout: '',
        stderr: 'Another app is currently holding the xtables lock. Perhaps you want to use the -w option?',
      }),
    ).toBe(true);
    expect(
      isTransient({
        exitCode: 1,
        stdout: '',
        stderr: 'iptables: Bad rule (does a matching rule exist in that chain?).',
      }),
    ).toBe(false);
    expect(isTransient({ exitCode: 2, stdout: '', stderr: '' })).toBe(false);
  });

  it('retries a transient exit with backoff, then fails naming the attempts', async () => {
    const attempts: (number | undefined)[] = [];
    const runner = new ExecaRunner((event) => attempts.push(event.exitCode), 1);
    const run = runner.run(['sh', '-c', 'exit 4'], { retries: 2 });
    await expect(run).rejects.toThrow(CommandFailedError);
    await expect(run).rejects.toThrow("sh -c 'exit 4' failed with exit code 4 after 3 attempts");
    expect(attempts).toEqual([4, 4, 4]);
  });

  it('retries when stderr says another app holds the xtables lock', async () => {
    const attempts: number[] = [];
    const runner = new ExecaRunner(() => attempts.push(1), 1);
    const run = runner.run(['sh', '-c', 'echo "Another app is currently holding the xtables lock." >&2; exit 1'], {
      retries: 1,
    });
    const error = await run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandFailedError);
    expect((error as CommandFailedError).stderr).toContain('xtables lock');
    expect(attempts).toHaveLength(2);
  });

  it('succeeds once the lock is free', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-runner-'));
    try {
      const attempts: (number | undefined)[] = [];
      const runner = new ExecaRunner((event) => attempts.push(event.exitCode), 1);
      const flag = join(dir, 'second');
      const result = await runner.run(['sh', '-c', 'if [ -e "$0" ]; then echo done; else : > "$0"; exit 4; fi', flag], {
        retries: 3,
      });
      expect(result).toEqual({ exitCode: 0, stdout: 'done\n', stderr: '' });
      expect(attempts).toEqual([4, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not retry an ordinary failure', async () => {
    const attempts: number[] = [];
    const runner = new ExecaRunner(() => attempts.push(1), 1);
    await expect(runner.run(['sh', '-c', 'echo "Bad rule" >&2; exit 1'], { retries: 3 })).rejects.toThrow(
      `sh -c 'echo "Bad rule" >&2; exit 1' failed with exit code 1: Bad rule`,
    );
    expect(attempts).toHaveLength(1);
  });

  it('returns a failed probe instead of throwing when reject is false', async () => {
    const result = await new ExecaRunner(() => {}, 1).run(['sh', '-c', 'echo no >&2; exit 3'], { reject: false });
    expect(result).toEqual({ exitCode: 3, stdout: '', stderr: 'no\n' });
  });

  it('passes the input on standard input', async () => {
    const result = await new ExecaRunner().run(['sh', '-c', 'cat'], { input: '*filter\nCOMMIT\n' });
    expect(result.stdout).toBe('*filter\nCOMMIT\n');
  });

  it('turns a missing binary into BackendUnavailableError that says what to install', async () => {
    const run = new ExecaRunner().run(['floodgate-no-such-tool', '-w', '-S', 'INPUT']);
    await expect(run).rejects.toThrow(BackendUnavailableError);
    await expect(run).rejects.toThrow(
      'floodgate-no-such-tool not found: install it with: apt-get install floodgate-no-such-tool',
    );
  });

  it('names the Debian package for the firewall tools', () => {
    expect(installHint('iptables-restore')).toBe('install it with: apt-get install iptables');
    expect(installHint('ip6tables')).toBe('install it with: apt-get install iptables');
    expect(installHint('ss')).toBe('install it with: apt-get install iproute2');
  });

  it('fails a command that outlives its timeout', async () => {
    await expect(new ExecaRunner().run(['sleep', '5'], { timeoutMs: 100 })).rejects.toThrow(
      'sleep 5 timed out after 100 ms',
    );
  });
});

describe('IptablesBackend duplicate copies', () => {
  it('removes as many copies as deletes were asked for in one batch, and never more than exist', async () => {
    const runner = new RecordingRunner();
    const chain = fakeChain(runner, 4, [
      ruleLine('198.51.100.7/32'),
      ruleLine('198.51.100.7/32'),
      ruleLine('198.51.100.7/32'),
      ruleLine('198.51.100.8/32'),
    ]);
    fakeChain(runner, 6, []);
    const backend = new IptablesBackend(runner, DEFAULTS);
    // reconcile keeps one copy of a wanted rule: two surplus deletes of .7, and five of .8 of which one exists
    backend.delete(cidr('198.51.100.7'));
    backend.delete(cidr('198.51.100.7'));
    for (let i = 0; i < 5; i++) backend.delete(cidr('198.51.100.8'));
    const result = await backend.commit();
    expect(result.failed).toEqual([]);
    expect(chain.rules).toEqual([ruleLine('198.51.100.7/32')]);
  });
});
