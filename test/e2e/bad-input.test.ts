// Mistakes a user makes, made for real in the lab's server namespace: a broken policy, bad ban
// targets, a host without iptables. Each must end with a clear message and a non-zero exit code,
// no stack trace, and the firewall exactly as it was.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLI,
  SKIP_REASON,
  STACK_TRACE,
  firewallText,
  floodgate,
  floodgateRule,
  listBans,
  tempDir,
  useLab,
  writePolicy,
  writeText,
} from './support.js';

const POLICY_ERRORS = [
  {
    what: 'a negative threshold',
    text: [
      'mode: enforce',
      'interval: 1s',
      'rules:',
      '  - name: syn-flood',
      '    states: [SYN_RECV]',
      '    per: ip',
      '    threshold: -5',
      '',
    ].join('\n'),
    line: 7,
    key: 'rules[0].threshold',
    detail: /expected a whole number > 0, got -5/,
  },
  {
    what: 'a misspelt key',
    text: [
      'mode: enforce',
      'intervall: 1s',
      'rules:',
      '  - {name: syn-flood, states: [SYN_RECV], threshold: 20}',
      '',
    ].join('\n'),
    line: 2,
    key: 'intervall',
    detail: /unknown key \(expected one of: .*interval/,
  },
  {
    what: 'a misspelt key inside a rule',
    text: ['rules:', '  - name: syn-flood', '    states: [SYN_RECV]', '    treshold: 20', ''].join('\n'),
    line: 4,
    key: 'rules[0].treshold',
    detail: /unknown key \(expected one of: .*threshold/,
  },
];

describe.skipIf(SKIP_REASON !== null)('bad input', () => {
  const shared = useLab();

  it.each(POLICY_ERRORS)(
    'run refuses a policy with $what: exit 2, file:line and key named',
    async ({ text, line, key, detail }) => {
      const { lab } = shared;
      const dir = tempDir('policy');
      const file = writeText(dir, 'bad.yaml', text);
      const before = await firewallText(lab);
      const r = await floodgate(
        lab,
        ['run', '--enforce', '--policy', file, '--state-dir', join(dir, 'state'), '--interval', '1s'],
        { timeoutMs: 15_000 },
      );
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${file}:${line} ${key}:`);
      expect(r.stderr).toMatch(detail);
      expect(r.stderr).not.toMatch(STACK_TRACE);
      expect(r.stdout).toBe('');
      expect(await firewallText(lab)).toBe(before);
    },
  );

  it.each([
    { target: '1.2.3.4/0', message: /covers every address/ },
    { target: '999.1.1.1', message: /"999\.1\.1\.1" is not an IP address or network/ },
    // Shell syntax must never reach a shell; a canary file shows that nothing ran it.
    { target: '1.2.3.4; touch CANARY', message: /is not an IP address or network/ },
    { target: '$(touch CANARY)', message: /is not an IP address or network/ },
  ])('ban --enforce refuses $target with a clear message and changes nothing', async ({ target, message }) => {
    const { lab } = shared;
    const dir = tempDir('target');
    const canary = join(dir, 'canary');
    const stateDir = join(dir, 'state');
    const policy = writePolicy(dir);
    const before = await firewallText(lab);
    // A valid target next to the bad one: the whole command is refused before anything is banned.
    const r = await floodgate(lab, [
      'ban',
      '--enforce',
      '--policy',
      policy,
      '--state-dir',
      stateDir,
      '198.51.100.150',
      target.replace('CANARY', canary),
    ]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^floodgate: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(await firewallText(lab)).toBe(before);
    expect(existsSync(canary)).toBe(false);
    expect(await listBans(lab, stateDir, ['--policy', policy])).toEqual([]);
  });

  // policy check passed this, and run --enforce then refused it: both refuse it now, the same way.
  it('policy check and run --enforce refuse iptables with table: raw alike, and change nothing', async () => {
    const { lab } = shared;
    const dir = tempDir('raw');
    const file = writeText(
      dir,
      'raw.yaml',
      [
        'mode: enforce',
        'interval: 1s',
        'rules:',
        '  - {name: syn-flood, states: [SYN_RECV], threshold: 20}',
        'firewall: {backend: iptables, table: raw}',
        '',
      ].join('\n'),
    );
    const before = await firewallText(lab);
    const expected = `${file}:5 firewall.table: expected filter with firewall.backend iptables`;
    const check = await floodgate(lab, ['policy', 'check', file]);
    expect(check.exitCode, check.stderr).toBe(2);
    expect(check.stderr).toContain(expected);
    expect(check.stdout).toBe('');
    const run = await floodgate(lab, ['run', '--enforce', '--policy', file, '--state-dir', join(dir, 'state')], {
      timeoutMs: 15_000,
    });
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toContain(expected);
    expect(await firewallText(lab)).toBe(before);
  });

  it.each(['0', '1ms', '30d'])(
    'run --enforce --interval %s is refused at once with the bounds, instead of a busy loop',
    async (interval) => {
      const { lab } = shared;
      const dir = tempDir('interval');
      const policy = writePolicy(dir);
      const before = await firewallText(lab);
      const r = await floodgate(
        lab,
        ['run', '--enforce', '--policy', policy, '--state-dir', join(dir, 'state'), '--interval', interval],
        { timeoutMs: 15_000 },
      );
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toBe(
        `floodgate: --interval: expected a duration from 100ms to 1h, like 500ms, 30s, 10m, 24h or 7d (a bare number is seconds), got "${interval}"\n`,
      );
      expect(await firewallText(lab)).toBe(before);
    },
  );

  it('run --enforce without iptables on PATH exits 3, says what to install and changes nothing', async () => {
    const { lab } = shared;
    const dir = tempDir('noiptables');
    const stateDir = join(dir, 'state');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    const policy = writePolicy(dir);
    // A rule this state directory owns, left from before: nothing may remove it either. It carries the
    // directory's own tag (a known id, given up front): a plain `floodgate` rule is not its to remove anyway.
    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(join(stateDir, 'instance-id'), '0e2e0e2e\n', { mode: 0o600 });
    expect(
      (
        await lab.execServer([
          'iptables',
          '-w',
          '-A',
          'INPUT',
          '-s',
          '198.51.100.150/32',
          '-m',
          'comment',
          '--comment',
          'floodgate-0e2e0e2e',
          '-j',
          'DROP',
        ])
      ).exitCode,
    ).toBe(0);
    const before = await firewallText(lab);
    expect(before).toContain(floodgateRule('198.51.100.150/32'));

    // `env` is found on the normal PATH; floodgate then runs with PATH = a directory holding only node.
    const r = await lab.execServer(
      [
        'env',
        `PATH=${bin}`,
        'node',
        CLI,
        'run',
        '--enforce',
        '--policy',
        policy,
        '--state-dir',
        stateDir,
        '--interval',
        '1s',
      ],
      { timeoutMs: 15_000 },
    );
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(3);
    expect(r.stderr).toMatch(/iptables/);
    expect(r.stderr).toMatch(/install it with: apt-get install iptables/);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(await firewallText(lab)).toBe(before);
    // The state directory's lock is released: the next start is not blocked by this one.
    expect(
      spawnSync('flock', ['--nonblock', join(stateDir, 'state.lock'), 'true']).status,
      'the state lock is free',
    ).toBe(0);
  });
});
