// A ban's life with `floodgate run` enforcing in the lab: expiry and the repeat-offender doubling,
// manual unban with its grace period, bans from a file, what `list --json` shows, what `ban`, `unban`
// and `flush --json` (and `unban --all`) say they did against what the firewall has, and what a stop
// (SIGTERM, with or without --flush-on-exit) leaves in the firewall.
import { describe, expect, it } from 'vitest';
import {
  Daemon,
  INTERVAL_MS,
  SKIP_REASON,
  bannedSources,
  expectFloodCount,
  firewallText,
  floodgate,
  floodgateOk,
  floodgateRule,
  inputRules,
  listBans,
  rule,
  tempDir,
  useLab,
  waitFor,
  writePolicy,
  writeText,
} from './support.js';

const ATTACKER = '198.51.100.66';
const ATTACKER_RULE = floodgateRule(`${ATTACKER}/32`);

describe.skipIf(SKIP_REASON !== null)('ban lifecycle', () => {
  const shared = useLab();

  const attackerBanned = async () => (await inputRules(shared.lab, 4)).includes(ATTACKER_RULE);

  it('removes an expired ban within about one interval and doubles the ttl of a repeat offender', async () => {
    const { lab } = shared;
    const dir = tempDir('ttl');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
      p.ban = { ...p.ban, ttl: '3s', max_ttl: '1m' };
    });
    const daemon = await Daemon.start(lab, { policy, stateDir });

    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80, exact: false });
    await waitFor('the first ban', attackerBanned, {
      timeoutMs: 2 * INTERVAL_MS + 1500,
      explain: () => firewallText(lab),
    });
    // From the log, not from a `list` that may take longer than the 3 s the ban lives on a busy host.
    const first = await daemon.waitForEvent('the first ban line', (e) => e.event === 'ban' && e.target === ATTACKER);
    expect(first).toMatchObject({ rule: 'syn-flood', ttl: '3s' });
    const expiresAt = Date.parse(first.expiresAt as string);
    await lab.stopTraffic();

    await waitFor('the expired rule to go', async () => !(await attackerBanned()), {
      timeoutMs: 3000 + 2 * INTERVAL_MS + 1500,
      explain: () => firewallText(lab),
    });
    const goneBy = Date.now();
    // Not before the expiry, and at most about one interval after it.
    expect(goneBy).toBeGreaterThanOrEqual(expiresAt);
    expect(goneBy - expiresAt).toBeLessThanOrEqual(INTERVAL_MS + 1500);
    await daemon.waitForEvent('the expiry line', (e) => e.event === 'expire' && e.target === ATTACKER);
    expect(await listBans(lab, stateDir)).toEqual([]);

    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80, exact: false });
    await waitFor('the repeat ban', attackerBanned, {
      timeoutMs: 2 * INTERVAL_MS + 1500,
      explain: () => firewallText(lab),
    });
    const bans = await listBans(lab, stateDir);
    expect(bans, 'the repeat ban, listed before its 6 s are over').toEqual([
      expect.objectContaining({ target: ATTACKER, rule: 'syn-flood' }),
    ]);
    const second = bans[0]!;
    expect(Date.parse(second.createdAt)).toBeGreaterThan(expiresAt);
    expect(Date.parse(second.expiresAt) - Date.parse(second.createdAt)).toBe(6000);
  });

  it('keeps an unbanned target unbanned during its grace period although the flood goes on', async () => {
    const { lab } = shared;
    const dir = tempDir('unban');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
    });
    const daemon = await Daemon.start(lab, { policy, stateDir });

    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80, exact: false });
    await waitFor('the ban', attackerBanned, { timeoutMs: 2 * INTERVAL_MS + 1500, explain: () => firewallText(lab) });

    const asked = Date.now();
    const unban = await floodgateOk(lab, ['unban', ATTACKER, '--grace', '5s', '--state-dir', stateDir]);
    expect(unban.stdout).toContain(`lifted ${ATTACKER}`);
    // Lifted at once: the command returns after the daemon has removed the rule.
    expect(await bannedSources(lab)).toEqual([]);
    const lifted = await daemon.waitForEvent(
      'the unban line',
      (e) => e.event === 'unban' && e.target === ATTACKER && typeof e.graceUntil === 'string',
    );
    expect(await listBans(lab, stateDir)).toEqual([]);
    const graceEnds = Date.parse(lifted.graceUntil as string);
    expect(graceEnds - asked).toBeGreaterThanOrEqual(5000);
    expect(graceEnds - asked).toBeLessThanOrEqual(5000 + 3000);

    // The flood goes on, well above the threshold, and the detector must leave it alone.
    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80, exact: false, timeoutMs: 3000 });
    expect((await lab.countServer('SYN-RECV')).get(ATTACKER) ?? 0).toBeGreaterThan(20);
    while (Date.now() < graceEnds - 300) {
      expect(await bannedSources(lab), 'banned again during the grace period').toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // The control: once the grace is over, the same flood is banned again.
    await waitFor('the ban after the grace period', attackerBanned, {
      timeoutMs: 500 + 2 * INTERVAL_MS + 1500,
      explain: () => firewallText(lab),
    });
  });

  it('bans the targets of --from-file and shows every field in list --json', async () => {
    const { lab } = shared;
    const dir = tempDir('file');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
    });
    await Daemon.start(lab, { policy, stateDir });
    const list = writeText(
      dir,
      'blocklist.txt',
      [
        '# abuse reports, week 48',
        '198.51.100.150',
        '',
        '   ',
        '# whole networks',
        '203.0.113.0/24   # scanner farm',
        '2001:db8:2::7',
        '2001:db8:3::/48',
        '',
      ].join('\n'),
    );

    const started = Date.now();
    const ban = await floodgateOk(lab, [
      'ban',
      '--from-file',
      list,
      '--ttl',
      '1h',
      '--reason',
      'abuse list',
      '--state-dir',
      stateDir,
    ]);
    expect(ban.stdout).toContain('4 banned, 0 already banned, 0 refused (through the running daemon)');
    expect(await bannedSources(lab)).toEqual(
      ['198.51.100.150/32', '2001:db8:2::7/128', '2001:db8:3::/48', '203.0.113.0/24'].sort(),
    );

    // A detector ban next to the manual ones.
    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80, exact: false });
    await waitFor('the detector’s ban', attackerBanned, {
      timeoutMs: 2 * INTERVAL_MS + 1500,
      explain: () => firewallText(lab),
    });

    const bans = await listBans(lab, stateDir);
    expect(bans.map((b) => b.target).sort()).toEqual(
      ['198.51.100.150', '198.51.100.66', '2001:db8:2::7', '2001:db8:3::/48', '203.0.113.0/24'].sort(),
    );
    for (const b of bans) {
      expect(Object.keys(b).sort()).toEqual([
        'count',
        'createdAt',
        'dryRun',
        'expiresAt',
        'reason',
        'rule',
        'source',
        'target',
      ]);
      expect(b.dryRun).toBe(false);
      expect(Date.parse(b.createdAt)).toBeGreaterThanOrEqual(started - 1000);
      if (b.target === ATTACKER) {
        expect(b).toMatchObject({ rule: 'syn-flood', reason: null });
        expectFloodCount(b.count, 20, 30);
        expect(Date.parse(b.expiresAt) - Date.parse(b.createdAt)).toBe(10 * 60_000); // the policy's ttl
      } else {
        expect(b).toMatchObject({ rule: 'manual', count: 0, reason: 'abuse list' });
        expect(Date.parse(b.expiresAt) - Date.parse(b.createdAt)).toBe(3_600_000);
      }
    }
  });

  it('ban, unban and flush --json say what the firewall then has, through the daemon and without it', async () => {
    const { lab } = shared;
    const dir = tempDir('json');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir);
    const daemon = await Daemon.start(lab, { policy, stateDir });
    const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

    // A refused target exits 1, as without --json; the document has all three answers.
    const ban = await floodgate(lab, [
      'ban',
      '198.51.100.150',
      '2001:db8:2::7',
      '127.0.0.1',
      '--ttl',
      '1h',
      '--json',
      '--state-dir',
      stateDir,
    ]);
    expect(ban.exitCode, ban.stderr).toBe(1);
    const banned = json(ban.stdout);
    expect(banned).toMatchObject({
      stateDir,
      mode: 'enforce',
      via: 'daemon',
      ttl: '1h',
      counts: { banned: 2, already: 0, refused: 1 },
    });
    expect(banned.results).toEqual([
      { target: '198.51.100.150', status: 'banned', expiresAt: expect.any(String) },
      { target: '2001:db8:2::7', status: 'banned', expiresAt: expect.any(String) },
      { target: '127.0.0.1', status: 'refused', reason: expect.stringContaining('loopback') },
    ]);
    expect(await bannedSources(lab)).toEqual(['198.51.100.150/32', '2001:db8:2::7/128']);
    const listed = await listBans(lab, stateDir);
    for (const r of banned.results as { target: string; expiresAt?: string }[]) {
      expect(listed.find((b) => b.target === r.target)?.expiresAt).toBe(r.expiresAt);
    }

    const again = await floodgateOk(lab, ['ban', '198.51.100.150', '--json', '--state-dir', stateDir]);
    expect(json(again.stdout)).toMatchObject({ counts: { banned: 0, already: 1, refused: 0 } });

    const unban = await floodgateOk(lab, [
      'unban',
      '198.51.100.150',
      '192.0.2.9',
      '--grace',
      '1m',
      '--json',
      '--state-dir',
      stateDir,
    ]);
    expect(json(unban.stdout)).toEqual({
      stateDir,
      mode: 'enforce',
      via: 'daemon',
      grace: '1m',
      counts: { lifted: 1, notBanned: 1 },
      results: [
        { target: '198.51.100.150', status: 'lifted' },
        { target: '192.0.2.9', status: 'not-banned' },
      ],
    });
    expect(await bannedSources(lab)).toEqual(['2001:db8:2::7/128']);

    // unban --all with a target is a usage error, and lifts nothing.
    const both = await floodgate(lab, ['unban', '--all', '2001:db8:2::7', '--json', '--state-dir', stateDir]);
    expect(both).toMatchObject({ exitCode: 2, stdout: '' });
    expect(both.stderr).toContain('floodgate: unban takes targets or --all, not both');
    expect(await bannedSources(lab)).toEqual(['2001:db8:2::7/128']);

    const all = await floodgateOk(lab, ['unban', '--all', '--json', '--state-dir', stateDir]);
    expect(json(all.stdout)).toEqual({ stateDir, mode: 'enforce', via: 'daemon', cleared: 1 });
    expect(await bannedSources(lab)).toEqual([]);
    expect(await listBans(lab, stateDir)).toEqual([]);

    // With no daemon, the command itself changes the firewall; its note stays on stderr.
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const direct = ['--enforce', '--policy', policy, '--json', '--state-dir', stateDir];
    const alone = await floodgateOk(lab, ['ban', '203.0.113.0/24', ...direct]);
    expect(alone.stderr).toContain('no `floodgate run` is running here');
    expect(json(alone.stdout)).toMatchObject({
      mode: 'enforce',
      via: 'direct',
      ttl: null,
      counts: { banned: 1, already: 0, refused: 0 },
    });
    expect(await bannedSources(lab)).toEqual(['203.0.113.0/24']);
    const flush = await floodgateOk(lab, ['flush', ...direct]);
    expect(json(flush.stdout)).toEqual({ stateDir, mode: 'enforce', via: 'direct', cleared: 1 });
    expect(await bannedSources(lab)).toEqual([]);
  });

  it('SIGTERM stops run with exit code 0 and leaves the bans in place', async () => {
    const { lab } = shared;
    const dir = tempDir('sigterm');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir);
    const daemon = await Daemon.start(lab, { policy, stateDir });
    await floodgateOk(lab, ['ban', '198.51.100.150', '2001:db8:2::7', '--state-dir', stateDir]);
    expect(await bannedSources(lab)).toEqual(['198.51.100.150/32', '2001:db8:2::7/128']);

    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(daemon.stderr).toBe('');
    expect(await bannedSources(lab)).toEqual(['198.51.100.150/32', '2001:db8:2::7/128']);
    expect((await listBans(lab, stateDir, ['--policy', policy])).map((b) => b.target)).toEqual([
      '198.51.100.150',
      '2001:db8:2::7',
    ]);
  });

  it('SIGTERM with --flush-on-exit removes every floodgate rule and nothing else', async () => {
    const { lab } = shared;
    const dir = tempDir('flush');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir);
    // Someone else's rule in the same chain must survive the flush.
    const other = ['-A', 'INPUT', '-s', '192.0.2.99/32', '-j', 'ACCEPT'];
    expect((await lab.execServer(['iptables', '-w', ...other])).exitCode).toBe(0);
    const daemon = await Daemon.start(lab, { policy, stateDir, args: ['--flush-on-exit'] });
    await floodgateOk(lab, ['ban', '198.51.100.150', '203.0.113.0/24', '2001:db8:2::7', '--state-dir', stateDir]);
    expect(await bannedSources(lab)).toHaveLength(3);

    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(await bannedSources(lab)).toEqual([]);
    expect(await inputRules(lab, 4)).toEqual(['-P INPUT ACCEPT', other.join(' ')]);
    expect(await listBans(lab, stateDir, ['--policy', policy])).toEqual([]);
  });
});
