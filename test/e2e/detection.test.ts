// Floods from the lab's attacker namespace against `floodgate run` in the server namespace: what is
// banned, how fast, as what, and what is never banned; plus the same flood in dry-run.
import { describe, expect, it } from 'vitest';
import {
  Daemon,
  INTERVAL_MS,
  SKIP_REASON,
  bannedSources,
  dropCounters,
  expectFloodCount,
  firewallText,
  floodgateOk,
  floodgateRule,
  instanceTag,
  inputRules,
  listBans,
  range4,
  range6,
  rule,
  tempDir,
  useLab,
  waitFor,
  waitForScans,
  writePolicy,
} from './support.js';

const ATTACKER = '198.51.100.66';

describe.skipIf(SKIP_REASON !== null)('detection against real floods', () => {
  const shared = useLab();

  it('bans a single-IP SYN flood within two intervals, kills its half-open sockets and drops its new SYNs', async () => {
    const { lab } = shared;
    const dir = tempDir('syn');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
    });
    await Daemon.start(lab, { policy, stateDir });

    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80, exact: false });
    const floodInPlace = Date.now();
    const wanted = floodgateRule(`${ATTACKER}/32`);
    await waitFor('the floodgate rule for the attacker', async () => (await inputRules(lab, 4)).includes(wanted), {
      timeoutMs: 2 * INTERVAL_MS + 1500,
      explain: () => firewallText(lab),
    });
    expect(Date.now() - floodInPlace).toBeLessThanOrEqual(2 * INTERVAL_MS + 1500);
    expect(await bannedSources(lab)).toEqual([`${ATTACKER}/32`]);

    // kill_connections: the 30 half-open sockets are destroyed at once, not left to time out (~63 s).
    await waitFor(
      'the attacker’s SYN_RECV sockets to be gone from ss',
      async () => ((await lab.countServer('SYN-RECV')).get(ATTACKER) ?? 0) === 0,
      {
        timeoutMs: 3000,
        explain: async () => `SYN-RECV per source: ${JSON.stringify([...(await lab.countServer('SYN-RECV'))])}`,
      },
    );

    const [ban] = await listBans(lab, stateDir);
    expect(ban).toMatchObject({ target: ATTACKER, rule: 'syn-flood', reason: null, dryRun: false });
    expectFloodCount(ban!.count, 20, 30);

    // New SYNs from the attacker hit the rule and never reach the listener.
    const before = (await dropCounters(lab, 4)).get(ATTACKER)?.packets ?? 0;
    await lab.synFlood({ sources: [ATTACKER], perSource: 10, port: 80, exact: false, timeoutMs: 2000 });
    const after = (await dropCounters(lab, 4)).get(ATTACKER)?.packets ?? 0;
    expect(after - before).toBeGreaterThanOrEqual(10);
    expect((await lab.countServer('SYN-RECV')).get(ATTACKER) ?? 0).toBe(0);
  });

  it('bans a flood spread over a /24, each source under the per-ip threshold, as the /24', async () => {
    const { lab } = shared;
    const dir = tempDir('spread4');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
      rule(p, 'syn-flood-subnet').threshold = 100;
    });
    await Daemon.start(lab, { policy, stateDir });

    const sources = range4('203.0.113.', 10, 49);
    await lab.synFlood({ sources, perSource: 5, port: 80, exact: false });
    await waitFor(
      'a rule for 203.0.113.0/24',
      async () => (await inputRules(lab, 4)).includes(floodgateRule('203.0.113.0/24')),
      {
        timeoutMs: 2 * INTERVAL_MS + 1500,
        explain: () => firewallText(lab),
      },
    );
    // One network rule, no rule per source.
    expect(await bannedSources(lab)).toEqual(['203.0.113.0/24']);
    const bans = await listBans(lab, stateDir);
    expect(bans).toEqual([
      expect.objectContaining({ target: '203.0.113.0/24', rule: 'syn-flood-subnet', dryRun: false }),
    ]);
    expectFloodCount(bans[0]!.count, 100, 200);
    await waitFor(
      'the /24’s SYN_RECV sockets to be gone',
      async () => [...(await lab.countServer('SYN-RECV')).keys()].every((ip) => !ip.startsWith('203.0.113.')),
      {
        timeoutMs: 3000,
        explain: async () => `SYN-RECV per source: ${JSON.stringify([...(await lab.countServer('SYN-RECV'))])}`,
      },
    );
  });

  it('bans an IPv6 flood spread over a /64 as the /64 in ip6tables', async () => {
    const { lab } = shared;
    const dir = tempDir('spread6');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
      rule(p, 'syn-flood-subnet').threshold = 100;
    });
    await Daemon.start(lab, { policy, stateDir });

    const sources = range6('2001:db8:1::', 1, 40);
    await lab.synFlood({ sources, perSource: 3, port: 80, exact: false });
    await waitFor(
      'a rule for 2001:db8:1::/64 in ip6tables',
      async () => (await inputRules(lab, 6)).includes(floodgateRule('2001:db8:1::/64')),
      {
        timeoutMs: 2 * INTERVAL_MS + 1500,
        explain: () => firewallText(lab),
      },
    );
    expect(await bannedSources(lab)).toEqual(['2001:db8:1::/64']);
    const bans = await listBans(lab, stateDir);
    expect(bans).toEqual([
      expect.objectContaining({ target: '2001:db8:1::/64', rule: 'syn-flood-subnet', dryRun: false }),
    ]);
    expectFloodCount(bans[0]!.count, 100, 120);
  });

  it('bans one source flooding half-open connections as its /32 only: its /24 neighbours keep connecting', async () => {
    const { lab } = shared;
    const dir = tempDir('collateral');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
      rule(p, 'syn-flood-subnet').threshold = 100;
    });
    const neighbours = range4('198.51.100.', 10, 12);

    await lab.normalClients({ sources: neighbours, perSource: 3, port: 80 });
    // 120 half-open connections: over syn-flood's 20 and, alone, over the subnet rule's 100 as well.
    // The daemon starts after they are all in place, so its first scan sees all 120 at once.
    await lab.synFlood({ sources: [ATTACKER], perSource: 120, port: 80, exact: false });
    await Daemon.start(lab, { policy, stateDir });
    await waitFor(
      'the floodgate rule for the attacker',
      async () => (await inputRules(lab, 4)).includes(floodgateRule(`${ATTACKER}/32`)),
      {
        timeoutMs: 2 * INTERVAL_MS + 1500,
        explain: () => firewallText(lab),
      },
    );
    await waitForScans(lab, stateDir, Date.now(), 2);

    expect(await bannedSources(lab)).toEqual([`${ATTACKER}/32`]);
    const bans = await listBans(lab, stateDir);
    expect(bans).toEqual([expect.objectContaining({ target: ATTACKER, rule: 'syn-flood', dryRun: false })]);
    expectFloodCount(bans[0]!.count, 100, 120);
    // The neighbours' connections are untouched, and a neighbour can still open new ones.
    const established = await lab.countServer('ESTABLISHED');
    for (const client of neighbours) expect(established.get(client), client).toBe(3);
    await lab.normalClients({ sources: ['198.51.100.13'], perSource: 2, port: 80, timeoutMs: 5000 });
    expect((await lab.countServer('ESTABLISHED')).get('198.51.100.13')).toBe(2);
  });

  it('never bans an allowlisted heavy client or normal clients, while a heavy stranger is banned', async () => {
    const { lab } = shared;
    const dir = tempDir('allow');
    const stateDir = `${dir}/state`;
    const HEAVY = '198.51.100.200';
    const STRANGER = '198.51.100.77';
    const clients = range4('198.51.100.', 10, 14);
    const policy = writePolicy(dir, (p) => {
      p.allowlist = [...p.allowlist, HEAVY];
      rule(p, 'connection-flood').threshold = 40;
    });
    await Daemon.start(lab, { policy, stateDir });

    await lab.normalClients({ sources: clients, perSource: 3, port: 80 });
    await lab.establishedFlood({ sources: [HEAVY], perSource: 60, port: 80 });
    // The control: the same 60 connections from an address nobody allowlisted are banned, which
    // shows that the lowered threshold is in force and that scans saw the heavy client too.
    await lab.establishedFlood({ sources: [STRANGER], perSource: 60, port: 443 });
    await waitFor(
      'the stranger’s ban',
      async () => (await inputRules(lab, 4)).includes(floodgateRule(`${STRANGER}/32`)),
      {
        timeoutMs: 2 * INTERVAL_MS + 1500,
        explain: () => firewallText(lab),
      },
    );
    await waitForScans(lab, stateDir, Date.now(), 2);

    expect(await bannedSources(lab)).toEqual([`${STRANGER}/32`]);
    expect((await listBans(lab, stateDir)).map((b) => b.target)).toEqual([STRANGER]);
    const established = await lab.countServer('ESTABLISHED');
    expect(established.get(HEAVY)).toBe(60);
    for (const client of clients) expect(established.get(client), client).toBe(3);
  });

  it('in dry-run changes no rule, logs the exact rule it would add and lists the ban as dry-run', async () => {
    const { lab } = shared;
    const dir = tempDir('dry');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      p.mode = 'dry-run';
      rule(p, 'syn-flood').threshold = 20;
    });
    const before = await firewallText(lab);
    const daemon = await Daemon.start(lab, { policy, stateDir, enforce: false });
    expect(daemon.events[0]).toMatchObject({ event: 'start', mode: 'dry-run' });

    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80 });
    const ban = await daemon.waitForEvent(
      'the would-be ban',
      (e) => e.event === 'ban' && e.target === ATTACKER,
      2 * INTERVAL_MS + 1500,
    );
    expectFloodCount(ban.count, 20, 30);
    expect(ban).toMatchObject({
      rule: 'syn-flood',
      dryRun: true,
      command: `iptables -w -A INPUT -s ${ATTACKER}/32 -m comment --comment ${instanceTag(stateDir)} -j DROP`,
    });
    expect(ban.msg).toMatch(/dry-run: would ban 198\.51\.100\.66/);
    await waitForScans(lab, stateDir, Date.now(), 2);

    expect(await firewallText(lab)).toBe(before);
    // Nothing was killed either: the half-open sockets are all still there.
    expect((await lab.countServer('SYN-RECV')).get(ATTACKER)).toBe(30);
    expect(await listBans(lab, stateDir)).toEqual([
      expect.objectContaining({ target: ATTACKER, rule: 'syn-flood', dryRun: true }),
    ]);
    const table = await floodgateOk(lab, ['list', '--state-dir', stateDir]);
    expect(table.stdout).toMatch(/198\.51\.100\.66\s+syn-flood\s+\d+\s.*dry-run \(not in firewall\)/);
  });
});
