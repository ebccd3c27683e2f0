// The firewall and the ban store stay in step through a daemon killed with -9, a firewall flushed
// behind floodgate's back, and manual commands racing each other with no daemon to serialise them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Daemon,
  INTERVAL_MS,
  SKIP_REASON,
  type Lab,
  bannedSources,
  firewallText,
  floodgate,
  floodgateOk,
  floodgateRule,
  inputRules,
  instanceTag,
  listBans,
  ruleCopies,
  rule,
  tempDir,
  useLab,
  waitFor,
  waitForScans,
  writePolicy,
} from './support.js';

const ATTACKER = '198.51.100.66';
const MANUAL = ['203.0.113.0/24', '198.51.100.150', '2001:db8:2::7'];
/** The rules of MANUAL and the attacker, as iptables -S / ip6tables -S print their sources. */
const RULES = ['203.0.113.0/24', '198.51.100.150/32', '2001:db8:2::7/128', `${ATTACKER}/32`];

const once = Object.fromEntries(RULES.map((cidr) => [cidr, 1]));

describe.skipIf(SKIP_REASON !== null)('recovery', () => {
  const shared = useLab();

  /** A daemon with a detector ban of the attacker and three manual bans. */
  async function daemonWithBans(lab: Lab, stateDir: string, policy: string): Promise<Daemon> {
    const daemon = await Daemon.start(lab, { policy, stateDir });
    await floodgateOk(lab, ['ban', ...MANUAL, '--state-dir', stateDir]);
    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80, exact: false });
    await waitFor(
      'the attacker’s ban',
      async () => (await inputRules(lab, 4)).includes(floodgateRule(`${ATTACKER}/32`)),
      {
        timeoutMs: 2 * INTERVAL_MS + 1500,
        explain: () => firewallText(lab),
      },
    );
    expect(await ruleCopies(lab, RULES)).toEqual(once);
    return daemon;
  }

  const expiries = (bans: { target: string; expiresAt: string }[]) =>
    Object.fromEntries(bans.map((b) => [b.target, b.expiresAt]));

  it('keeps every ban exactly once, with the same expiry, through kill -9 and a restart', async () => {
    const { lab } = shared;
    const dir = tempDir('kill9');
    const stateDir = join(dir, 'state');
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
    });
    const first = await daemonWithBans(lab, stateDir, policy);
    const before = expiries(await listBans(lab, stateDir));
    expect(Object.keys(before)).toHaveLength(4);

    expect(await first.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    // The dead daemon's lock and socket are still there; the rules stay in the kernel.
    expect(existsSync(join(stateDir, 'state.lock'))).toBe(true);
    expect(await ruleCopies(lab, RULES)).toEqual(once);

    const second = await Daemon.start(lab, { policy, stateDir });
    expect(second.events[0]).toMatchObject({ event: 'start', activeBans: 4 });
    // Answers on its socket only after its start-up reconcile; then give it two scans as well.
    await waitForScans(lab, stateDir, Date.now(), 2);
    expect(await ruleCopies(lab, RULES)).toEqual(once);
    expect((await bannedSources(lab)).length).toBe(RULES.length);
    expect(expiries(await listBans(lab, stateDir))).toEqual(before);
    expect(second.events.filter((e) => e.event === 'ban')).toEqual([]);
  });

  it('repairs on restart a firewall that lost one rule and gained a duplicate while no daemon ran', async () => {
    const { lab } = shared;
    const dir = tempDir('repair');
    const stateDir = join(dir, 'state');
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
    });
    const first = await daemonWithBans(lab, stateDir, policy);
    const before = expiries(await listBans(lab, stateDir));
    await first.stop('SIGKILL');

    expect(
      (
        await lab.execServer([
          'iptables',
          '-w',
          '-D',
          'INPUT',
          '-s',
          '198.51.100.150/32',
          '-m',
          'comment',
          '--comment',
          instanceTag(stateDir),
          '-j',
          'DROP',
        ])
      ).exitCode,
    ).toBe(0);
    expect(
      (
        await lab.execServer([
          'ip6tables',
          '-w',
          '-A',
          'INPUT',
          '-s',
          '2001:db8:2::7/128',
          '-m',
          'comment',
          '--comment',
          instanceTag(stateDir),
          '-j',
          'DROP',
        ])
      ).exitCode,
    ).toBe(0);
    expect(await ruleCopies(lab, RULES)).toEqual({ ...once, '198.51.100.150/32': 0, '2001:db8:2::7/128': 2 });

    await Daemon.start(lab, { policy, stateDir });
    await waitFor(
      'the firewall to match the bans again',
      async () => JSON.stringify(await ruleCopies(lab, RULES)) === JSON.stringify(once),
      {
        timeoutMs: 5000,
        explain: () => firewallText(lab),
      },
    );
    expect((await bannedSources(lab)).length).toBe(RULES.length);
    expect(expiries(await listBans(lab, stateDir))).toEqual(before);
  });

  it('repairs an external iptables -F INPUT while it runs', async () => {
    const { lab } = shared;
    const dir = tempDir('reconcile');
    const stateDir = join(dir, 'state');
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
      p.reconcile_interval = '2s';
    });
    const daemon = await daemonWithBans(lab, stateDir, policy);
    await lab.stopTraffic();

    const seenBefore = daemon.events.length;
    expect((await lab.execServer(['iptables', '-w', '-F', 'INPUT'])).exitCode).toBe(0);
    expect((await lab.execServer(['ip6tables', '-w', '-F', 'INPUT'])).exitCode).toBe(0);
    expect(await bannedSources(lab)).toEqual([]);

    // reconcile_interval 2s, checked once per 1s scan, then one queue batch.
    await waitFor(
      'every rule to be back',
      async () => JSON.stringify(await ruleCopies(lab, RULES)) === JSON.stringify(once),
      {
        timeoutMs: 2000 + 2 * INTERVAL_MS + 2000,
        explain: () => firewallText(lab),
      },
    );
    // The repair is reconcile's doing, and it says so in the log.
    const reconciled = daemon.events
      .slice(seenBefore)
      .filter((e) => e.event === 'reconcile' && typeof e.missing === 'number');
    expect(reconciled.some((e) => (e.missing as number) >= 1)).toBe(true);
    expect((await bannedSources(lab)).length).toBe(RULES.length);
  });

  it('applies two ban commands started at the same moment with no daemon, each rule exactly once', async () => {
    const { lab } = shared;
    const dir = tempDir('race');
    const stateDir = join(dir, 'state');
    const policy = writePolicy(dir);
    const common = ['--enforce', '--policy', policy, '--state-dir', stateDir];
    // Both name 203.0.113.0/24: whichever runs second finds it banned already.
    const [a, b] = await Promise.all([
      floodgate(lab, ['ban', '198.51.100.31', '2001:db8:5::1', '203.0.113.0/24', ...common]),
      floodgate(lab, ['ban', '198.51.100.32', '2001:db8:6::/64', '203.0.113.0/24', ...common]),
    ]);
    for (const r of [a, b]) expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    const outputs = [a.stdout, b.stdout].sort();
    expect(outputs.filter((o) => o.includes('3 banned, 0 already banned, 0 refused'))).toHaveLength(1);
    expect(outputs.filter((o) => o.includes('2 banned, 1 already banned, 0 refused'))).toHaveLength(1);

    const all = ['198.51.100.31/32', '198.51.100.32/32', '203.0.113.0/24', '2001:db8:5::1/128', '2001:db8:6::/64'];
    expect(await ruleCopies(lab, all)).toEqual(Object.fromEntries(all.map((cidr) => [cidr, 1])));
    expect(await bannedSources(lab)).toEqual([...all].sort());
    expect((await listBans(lab, stateDir, ['--policy', policy])).map((ban) => ban.target).sort()).toEqual([
      '198.51.100.31',
      '198.51.100.32',
      '2001:db8:5::1',
      '2001:db8:6::/64',
      '203.0.113.0/24',
    ]);
    expect(
      spawnSync('flock', ['--nonblock', join(stateDir, 'state.lock'), 'true']).status,
      'the state lock is free',
    ).toBe(0);
  });
});
