// The enforcer between decisions and the firewall: safety lists, the max_active cap, repeat
// offenders, expiry, reconcile, errors that do not stop it, and the ss -K commands after bans.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { BanStore } from '../../src/bans/ban-store.js';
import { Enforcer, type EnforcerOptions } from '../../src/enforce/enforcer.js';
import { BackendUnavailableError } from '../../src/errors.js';
import { killCommands } from '../../src/hooks/kill-connections.js';
import { LogDestination } from '../../src/log-destination.js';
import { tapEvents } from '../../src/log-events.js';
import { ReloadHook } from '../../src/hooks/reload-hook.js';
import { buildAllowlist } from '../../src/net/allowlist.js';
import { type Cidr, formatCidr, parseCidr } from '../../src/net/ip.js';
import { FakeBackend } from '../support/fake-backend.js';
import { memoryLog } from '../support/memory-log.js';
import { RecordingRunner } from '../support/recording-runner.js';

const cidr = (text: string): Cidr => parseCidr(text)!;
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const LIMITS = { ttl: 10 * MINUTE, maxTtl: 60 * MINUTE };

function setup(overrides: Partial<EnforcerOptions> = {}) {
  const backend = new FakeBackend();
  const memory = memoryLog();
  const runner = new RecordingRunner();
  const store = new BanStore(undefined, LIMITS);
  const enforcer = new Enforcer({
    backend,
    store,
    log: memory.log,
    runner,
    protectedSet: buildAllowlist(['203.0.113.0/24'], ['192.0.2.1', '2001:db8:ffff::1']),
    rate: 1000,
    maxActive: 100,
    killConnections: false,
    clock: () => T0,
    ...overrides,
  });
  return {
    enforcer,
    backend: overrides.backend instanceof FakeBackend ? overrides.backend : backend,
    store: overrides.store ?? store,
    runner,
    ...memory,
  };
}

const manual = (target: string, extra: object = {}) => ({ target: cidr(target), rule: 'manual', count: 0, ...extra });

describe('Enforcer.ban', () => {
  it('records the ban, adds the rule and logs a ban event with its ttl, expiry and command', async () => {
    const { enforcer, backend, store, named } = setup();
    const outcome = enforcer.ban({ target: cidr('198.51.100.7'), rule: 'per_source', count: 212 }, T0);
    expect(outcome).toMatchObject({
      status: 'banned',
      ban: { target: '198.51.100.7', ttl: 10 * MINUTE, expiresAt: T0 + 10 * MINUTE },
    });
    expect(store.get('198.51.100.7')).toBeDefined();
    await enforcer.queue.drain();
    expect(backend.rules).toEqual(['198.51.100.7']);
    expect(named('ban')).toEqual([
      expect.objectContaining({
        target: '198.51.100.7',
        rule: 'per_source',
        count: 212,
        ttl: '10m',
        expiresAt: '2026-01-15T12:10:00.000Z',
        dryRun: false,
        command: 'fakefw add 198.51.100.7',
        level: 30,
      }),
    ]);
  });

  it('answers "already" for a target that is banned, without queueing it again', async () => {
    const { enforcer, backend } = setup();
    enforcer.ban(manual('198.51.100.7'), T0);
    const again = enforcer.ban(manual('198.51.100.7'), T0 + MINUTE);
    expect(again).toMatchObject({ status: 'already', ban: { createdAt: T0 } });
    await enforcer.queue.drain();
    expect(backend.history).toEqual(['add 198.51.100.7']);
  });

  it.each([
    ['IPv4 loopback', '127.0.0.5'],
    ['IPv6 loopback', '::1'],
    ['an allowlisted address', '203.0.113.9'],
    ['a network that contains an allowlisted one', '203.0.0.0/16'],
    ['the host’s own IPv4 address', '192.0.2.1'],
    ['the host’s own IPv6 address', '2001:db8:ffff::1'],
    ['a network around the host’s own address', '192.0.2.0/24'],
  ])('refuses %s and logs it as refused', async (_what, target) => {
    const { enforcer, backend, store, named } = setup();
    const outcome = enforcer.ban(manual(target), T0);
    expect(outcome).toEqual({
      status: 'refused',
      reason: 'it is allowlisted, loopback or one of this host’s own addresses',
    });
    expect(store.size).toBe(0);
    await enforcer.queue.drain();
    expect(backend.history).toEqual([]);
    expect(named('refused')).toEqual([
      expect.objectContaining({ target: formatCidr(cidr(target)), why: 'protected', level: 40 }),
    ]);
  });

  it('bans a protected target when forced', async () => {
    const { enforcer, backend } = setup();
    expect(enforcer.ban(manual('203.0.113.9', { force: true }), T0).status).toBe('banned');
    await enforcer.queue.drain();
    expect(backend.rules).toEqual(['203.0.113.9']);
  });

  it('refuses bans beyond max_active, counts them in store.refused and logs them as refused', async () => {
    const { enforcer, backend, store, named } = setup({ maxActive: 2 });
    enforcer.ban(manual('198.51.100.1'), T0);
    enforcer.ban(manual('198.51.100.2'), T0);
    const third = enforcer.ban({ target: cidr('198.51.100.3'), rule: 'per_source', count: 90 }, T0);
    const fourth = enforcer.ban(manual('2001:db8::4'), T0);
    expect(third).toEqual({ status: 'refused', reason: 'ban.max_active (2) bans are active' });
    expect(fourth.status).toBe('refused');
    expect(store.refused).toBe(2);
    expect(named('refused')).toEqual([
      expect.objectContaining({ target: '198.51.100.3', rule: 'per_source', count: 90, why: 'max_active', active: 2 }),
      expect.objectContaining({ target: '2001:db8::4', why: 'max_active', active: 2 }),
    ]);
    await enforcer.queue.drain();
    expect(backend.rules).toEqual(['198.51.100.1', '198.51.100.2']);
  });

  it('makes room again once a ban is lifted', () => {
    const { enforcer } = setup({ maxActive: 1 });
    enforcer.ban(manual('198.51.100.1'), T0);
    enforcer.unban(cidr('198.51.100.1'), 0, 'unban', T0);
    expect(enforcer.ban(manual('198.51.100.2'), T0).status).toBe('banned');
  });

  it('gives a repeat offender twice its last ttl, up to max_ttl', () => {
    const { enforcer, named } = setup();
    const ttls: number[] = [];
    for (let round = 0; round < 5; round++) {
      const at = T0 + round * 2 * MINUTE;
      const outcome = enforcer.ban(manual('198.51.100.7'), at);
      if (outcome.status !== 'banned') throw new Error(`round ${round}: ${outcome.status}`);
      ttls.push(outcome.ban.ttl);
      expect(outcome.ban.expiresAt).toBe(at + outcome.ban.ttl);
      enforcer.unban(cidr('198.51.100.7'), 0, 'unban', at + MINUTE);
    }
    expect(ttls).toEqual([10, 20, 40, 60, 60].map((m) => m * MINUTE));
    expect(named('ban').map((e) => e.ttl)).toEqual(['10m', '20m', '40m', '1h', '1h']);
  });

  it('forgets an offender whose last ban is older than max_ttl', () => {
    const { enforcer } = setup();
    enforcer.ban(manual('198.51.100.7'), T0);
    enforcer.unban(cidr('198.51.100.7'), 0, 'unban', T0 + MINUTE);
    const later = enforcer.ban(manual('198.51.100.7'), T0 + 61 * MINUTE);
    expect(later).toMatchObject({ status: 'banned', ban: { ttl: 10 * MINUTE } });
  });

  it('uses a manual ttl as the base instead of the policy’s', () => {
    const { enforcer } = setup();
    expect(enforcer.ban(manual('198.51.100.7', { ttl: 5 * MINUTE }), T0)).toMatchObject({
      ban: { ttl: 5 * MINUTE, expiresAt: T0 + 5 * MINUTE },
    });
    expect(enforcer.ban(manual('198.51.100.8', { ttl: 5 * 60 * MINUTE }), T0)).toMatchObject({
      ban: { ttl: 60 * MINUTE },
    });
  });

  it('reads the injected clock when no time is passed', () => {
    const { enforcer } = setup({ clock: () => T0 + 42 });
    expect(enforcer.ban(manual('198.51.100.7'))).toMatchObject({ ban: { createdAt: T0 + 42 } });
  });

  it('saves the store before the firewall changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-enforcer-'));
    try {
      const file = join(dir, 'bans.json');
      const backend = new FakeBackend();
      const onDisk: string[][] = [];
      const commit = backend.commit.bind(backend);
      backend.commit = async () => {
        onDisk.push(
          (JSON.parse(readFileSync(file, 'utf8')) as { bans: { target: string }[] }).bans.map((b) => b.target),
        );
        return commit();
      };
      const { enforcer } = setup({ backend, store: new BanStore(file, LIMITS) });
      enforcer.ban(manual('198.51.100.7'), T0);
      await enforcer.queue.drain();
      expect(onDisk).toEqual([['198.51.100.7']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has every ban’s audit line written before the store is saved, though the log is batched', async () => {
    const written: string[] = [];
    const destination = new LogDestination(99, {
      write: (_fd, data, offset, length) => {
        written.push(Buffer.from(data.subarray(offset, offset + length)).toString());
        return length;
      },
    });
    const store = new BanStore(undefined, LIMITS);
    const loggedAtSave: string[][] = [];
    store.saveIfChanged = () =>
      void loggedAtSave.push(
        written
          .join('')
          .split('\n')
          .filter((l) => l.includes('"event":"ban"'))
          .map((l) => (JSON.parse(l) as { target: string }).target),
      );
    const { enforcer } = setup({ store, log: pino({ base: null }, destination) });
    for (const target of ['198.51.100.7', '198.51.100.8', '2001:db8::7']) enforcer.ban(manual(target), T0);
    expect(written).toEqual([]); // batched: nothing written yet
    await enforcer.queue.drain();
    expect(loggedAtSave[0]).toEqual(['198.51.100.7', '198.51.100.8', '2001:db8::7']);
  });
});

describe('Enforcer.banList', () => {
  it('logs a short list a line per ban at info, as single bans', () => {
    const { enforcer, events } = setup();
    const targets = Array.from({ length: 100 }, (_, i) => `198.51.100.${i}`);
    enforcer.banList(targets.map((t) => manual(t)));
    const info = events().filter((e) => e.level === 30);
    expect(info.filter((e) => e.event === 'ban')).toHaveLength(100);
    expect(info.some((e) => e.event === 'bans')).toBe(false);
  });

  it('logs a long list one summary line at info, each ban at debug (still seen by the taps), before the save', async () => {
    const store = new BanStore(undefined, LIMITS);
    const { enforcer, events, log } = setup({ store, maxActive: 1000 });
    const tapped: string[] = [];
    tapEvents(log, ({ fields }) => void (fields.event === 'ban' && tapped.push(fields.target as string)));
    let summarySaved = false;
    store.saveIfChanged = () => {
      summarySaved = events().some((e) => e.event === 'bans');
    };
    const targets = Array.from({ length: 250 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    const outcomes = enforcer.banList([...targets, '203.0.113.9', targets[0]!].map((t) => manual(t)));
    expect(outcomes.map((o) => o.status).slice(-2)).toEqual(['refused', 'already']);
    const info = events().filter((e) => e.level === 30);
    expect(info.map((e) => e.event)).toEqual(['bans']);
    expect(info[0]).toMatchObject({ banned: 250, already: 1, refused: 1, rule: 'manual', dryRun: false });
    expect(info[0]!.msg).toContain('banned 250 of a list of 252 (manual)');
    // The refusal is a warning of its own, and every ban is still a debug line and a tapped event.
    expect(events().filter((e) => e.event === 'refused')).toHaveLength(1);
    expect(events().filter((e) => e.event === 'ban' && e.level === 20)).toHaveLength(250);
    expect(tapped).toEqual(targets);
    await enforcer.queue.drain();
    expect(summarySaved).toBe(true);
  });
});

describe('Enforcer.unban and expiry', () => {
  it('lifts a ban, removes the rule and keeps the target out of detection for the grace period', async () => {
    const { enforcer, backend, store, named } = setup();
    enforcer.ban(manual('198.51.100.7'), T0);
    await enforcer.queue.drain();
    const lifted = enforcer.unban(cidr('198.51.100.7'), 5 * MINUTE, 'unban', T0 + MINUTE);
    expect(lifted?.target).toBe('198.51.100.7');
    expect(store.inGrace('198.51.100.7', T0 + 5 * MINUTE)).toBe(true);
    expect(store.inGrace('198.51.100.7', T0 + 6 * MINUTE)).toBe(false);
    await enforcer.queue.drain();
    expect(backend.rules).toEqual([]);
    expect(named('unban')).toEqual([
      expect.objectContaining({
        target: '198.51.100.7',
        rule: 'manual',
        ttl: '10m',
        command: 'fakefw delete 198.51.100.7',
        graceUntil: '2026-01-15T12:06:00.000Z',
      }),
    ]);
  });

  it('removes a rule left behind even when the store has no ban for it', async () => {
    const { enforcer, backend, named } = setup();
    backend.rules = ['198.51.100.7'];
    expect(enforcer.unban(cidr('198.51.100.7'), 0, 'unban', T0)).toBeUndefined();
    await enforcer.queue.drain();
    expect(backend.rules).toEqual([]);
    expect(named('unban')[0]!.msg).toContain('no active ban');
  });

  it('a ban lifted before it was committed never reaches the firewall', async () => {
    const { enforcer, backend } = setup();
    enforcer.ban(manual('198.51.100.7'), T0);
    enforcer.unban(cidr('198.51.100.7'), 0, 'unban', T0);
    await enforcer.queue.drain();
    expect(backend.history.filter((line) => line.startsWith('add'))).toEqual([]);
    expect(backend.rules).toEqual([]);
  });

  it('expires bans whose absolute expiry has passed, and only those', async () => {
    const { enforcer, backend, store, named } = setup();
    enforcer.ban(manual('198.51.100.7'), T0);
    enforcer.ban(manual('2001:db8::7', { ttl: 30 * MINUTE }), T0);
    await enforcer.queue.drain();
    expect(enforcer.expire(T0 + 10 * MINUTE - 1)).toBe(0);
    expect(enforcer.expire(T0 + 10 * MINUTE)).toBe(1);
    expect(store.all().map((b) => b.target)).toEqual(['2001:db8::7']);
    await enforcer.queue.drain();
    expect(backend.rules).toEqual(['2001:db8::7']);
    expect(named('expire')).toEqual([expect.objectContaining({ target: '198.51.100.7', ttl: '10m' })]);
    expect(named('unban')).toEqual([]);
  });

  it('an expiry gives no grace: the detector may ban the target again at once', () => {
    const { enforcer, store } = setup();
    enforcer.ban(manual('198.51.100.7'), T0);
    enforcer.expire(T0 + 10 * MINUTE);
    expect(store.inGrace('198.51.100.7', T0 + 10 * MINUTE)).toBe(false);
  });
});

describe('Enforcer.reconcile', () => {
  it('re-adds missing rules and removes unexplained and duplicate ones', async () => {
    const { enforcer, backend, store, named } = setup();
    store.add({ target: '198.51.100.1', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    store.add({ target: '2001:db8::2', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    backend.rules = ['198.51.100.1', '198.51.100.1', '192.0.2.77', '192.0.2.77', '2001:db8::99'];
    const found = await enforcer.reconcile();
    expect(found).toEqual({ missing: 1, extra: 4 });
    await enforcer.queue.drain();
    expect([...backend.rules].sort()).toEqual(['198.51.100.1', '2001:db8::2']);
    expect(named('reconcile')).toEqual([expect.objectContaining({ missing: 1, extra: 4, level: 40 })]);
  });

  it('changes and logs nothing when the firewall matches the store', async () => {
    const { enforcer, backend, store, events } = setup();
    store.add({ target: '198.51.100.1', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    backend.rules = ['198.51.100.1'];
    expect(await enforcer.reconcile()).toEqual({ missing: 0, extra: 0 });
    await enforcer.queue.drain();
    expect(backend.commits).toEqual([]);
    expect(events()).toEqual([]);
  });

  it('does not count a ban still waiting in the queue as missing', async () => {
    const { enforcer, backend } = setup();
    enforcer.ban(manual('198.51.100.1'), T0);
    expect(await enforcer.reconcile()).toEqual({ missing: 0, extra: 0 });
    await enforcer.queue.drain();
    expect(backend.history).toEqual(['add 198.51.100.1']);
  });
});

describe('Enforcer errors', () => {
  it('logs a commit that throws and keeps committing later bans', async () => {
    const { enforcer, backend, named } = setup();
    backend.throwOnNextCommit = new Error('iptables-restore: command not found');
    enforcer.ban(manual('198.51.100.1'), T0);
    await enforcer.queue.drain();
    expect(named('error')).toEqual([
      expect.objectContaining({
        during: 'commit',
        backend: 'iptables',
        changes: 1,
        level: 50,
        msg: 'firewall commit failed: iptables-restore: command not found',
      }),
    ]);
    enforcer.ban(manual('198.51.100.2'), T0);
    await enforcer.queue.drain();
    expect(backend.rules).toEqual(['198.51.100.2']);
  });

  it('logs each failed change with its target, and reconcile puts the rule back later', async () => {
    const { enforcer, backend, named } = setup();
    backend.failing.add('198.51.100.1');
    enforcer.ban(manual('198.51.100.1'), T0);
    enforcer.ban(manual('198.51.100.2'), T0);
    await enforcer.queue.drain();
    expect(named('error')).toEqual([
      expect.objectContaining({
        during: 'ban',
        target: '198.51.100.1',
        backend: 'iptables',
        message: 'rule for 198.51.100.1 rejected',
      }),
    ]);
    expect(backend.rules).toEqual(['198.51.100.2']);
    backend.failing.clear();
    expect(await enforcer.reconcile()).toEqual({ missing: 1, extra: 0 });
    await enforcer.queue.drain();
    expect([...backend.rules].sort()).toEqual(['198.51.100.1', '198.51.100.2']);
  });
});

describe('killCommands', () => {
  const wrap = (...filter: string[]) => ['ss', '-K', '-t', '-n', '-a', '(', ...filter, ')'];

  it('matches an IPv4 host plain and in its bracketed IPv4-mapped form', () => {
    expect(killCommands([cidr('198.51.100.7')])).toEqual([
      wrap('dst', '198.51.100.7', 'or', 'dst', '[::ffff:198.51.100.7]'),
    ]);
  });

  it('brackets an IPv6 host', () => {
    expect(killCommands([cidr('2001:db8::7')])).toEqual([wrap('dst', '[2001:db8::7]')]);
  });

  it('writes prefixes without brackets, the mapped IPv4 prefix with 96 more bits', () => {
    expect(killCommands([cidr('203.0.113.0/24')])).toEqual([
      wrap('dst', '203.0.113.0/24', 'or', 'dst', '::ffff:203.0.113.0/120'),
    ]);
    expect(killCommands([cidr('2001:db8::/64')])).toEqual([wrap('dst', '2001:db8::/64')]);
  });

  it('joins targets with "or" and splits them into commands of perCommand targets', () => {
    const commands = killCommands([cidr('198.51.100.1'), cidr('2001:db8::2'), cidr('2001:db8::3')], 2);
    expect(commands).toEqual([
      wrap('dst', '198.51.100.1', 'or', 'dst', '[::ffff:198.51.100.1]', 'or', 'dst', '[2001:db8::2]'),
      wrap('dst', '[2001:db8::3]'),
    ]);
    expect(killCommands([])).toEqual([]);
  });
});

describe('Enforcer after a commit: kill connections and reload', () => {
  it('closes the existing connections of newly banned targets with one ss -K', async () => {
    const { enforcer, runner } = setup({ killConnections: true });
    enforcer.ban(manual('198.51.100.7'), T0);
    enforcer.ban(manual('2001:db8::/64'), T0);
    await enforcer.queue.drain();
    expect(runner.calls.map((c) => c.argv)).toEqual(killCommands([cidr('198.51.100.7'), cidr('2001:db8::/64')]));
    expect(runner.calls[0]!.options).toMatchObject({ reject: false, timeoutMs: 10_000 });
  });

  it('does not kill connections for unbans, nor when kill_connections is off', async () => {
    const on = setup({ killConnections: true });
    on.backend.rules = ['198.51.100.7'];
    on.enforcer.unban(cidr('198.51.100.7'), 0, 'unban', T0);
    await on.enforcer.queue.drain();
    expect(on.runner.calls).toEqual([]);
    const off = setup({ killConnections: false });
    off.enforcer.ban(manual('198.51.100.7'), T0);
    await off.enforcer.queue.drain();
    expect(off.runner.calls).toEqual([]);
  });

  it('logs a failed ss -K as an error and goes on', async () => {
    const { enforcer, runner, backend, named } = setup({ killConnections: true });
    runner.on(['ss'], { exitCode: 1, stderr: 'SOCK_DESTROY answers: Operation not supported\n' });
    enforcer.ban(manual('198.51.100.7'), T0);
    await enforcer.queue.drain();
    expect(backend.rules).toEqual(['198.51.100.7']);
    expect(named('error')).toEqual([
      expect.objectContaining({
        during: 'kill-connections',
        exitCode: 1,
        stderr: 'SOCK_DESTROY answers: Operation not supported',
        level: 40,
      }),
    ]);
  });

  it('only shows the ss -K command in dry-run', async () => {
    const { enforcer, runner, named } = setup({ killConnections: true, backend: new FakeBackend(true) });
    enforcer.ban(manual('198.51.100.7'), T0);
    await enforcer.queue.drain();
    expect(runner.calls).toEqual([]);
    expect(named('kill-connections')).toEqual([
      expect.objectContaining({
        dryRun: true,
        command: "ss -K -t -n -a '(' dst 198.51.100.7 or dst '[::ffff:198.51.100.7]' ')'",
      }),
    ]);
  });

  it('triggers the reload hook after bans are in the firewall', async () => {
    const runner = new RecordingRunner();
    const memory = memoryLog();
    const reload = new ReloadHook(
      { command: ['systemctl', 'reload', 'nginx'], debounce: 10_000, timeout: 5_000 },
      runner,
      memory.log,
      false,
    );
    const { enforcer } = setup({ reload, runner, log: memory.log });
    enforcer.ban(manual('198.51.100.7'), T0);
    await enforcer.queue.drain();
    await new Promise((resolve) => setImmediate(resolve));
    expect(runner.commands).toEqual(['systemctl reload nginx']);
    reload.stop();
  });
});

describe('a ban store that cannot be saved (a full disk)', () => {
  /** A store whose saves fail with ENOSPC while `full.value` is true. */
  function fullDiskStore(full: { value: boolean }): BanStore {
    const store = new BanStore('/state/bans.json', LIMITS);
    let savedVersion = -1;
    store.save = () => {
      if (full.value)
        throw Object.assign(
          new Error('cannot write /state/bans.json: its file system is full (ENOSPC); free some space there'),
          { code: 'ENOSPC' },
        );
      savedVersion = store.changes;
    };
    store.saveIfChanged = () => {
      if (store.changes !== savedVersion) store.save();
    };
    return store;
  }

  it('still applies the bans, reports the failure, retries, and says when it is saved again', async () => {
    const full = { value: true };
    const store = fullDiskStore(full);
    const { enforcer, backend, named } = setup({ store });
    enforcer.ban(manual('198.51.100.7'), T0);
    enforcer.ban(manual('2001:db8::7'), T0);
    await enforcer.queue.drain();
    expect(backend.rules).toEqual(['198.51.100.7', '2001:db8::7']);
    expect(store.saveFailure).toEqual({ since: T0, message: expect.stringContaining('ENOSPC'), code: 'ENOSPC' });
    expect(named('error').filter((e) => e.during === 'save')).toEqual([
      expect.objectContaining({
        level: 50,
        code: 'ENOSPC',
        msg: expect.stringMatching(/^could not save the ban store: .*ENOSPC.*Bans stay in force and saving is retried/),
      }),
    ]);
    // The daemon's loop retries; the failure is not logged again within the minute.
    expect(enforcer.persist()).toBe(false);
    expect(named('error').filter((e) => e.during === 'save')).toHaveLength(1);
    full.value = false;
    expect(enforcer.persist()).toBe(true);
    expect(store.saveFailure).toBeUndefined();
    expect(named('saved')).toHaveLength(1);
  });

  it('close (a manual command) applies, then fails with a message saying the change will not last', async () => {
    const { enforcer, backend } = setup({ store: fullDiskStore({ value: true }) });
    enforcer.ban(manual('198.51.100.7'), T0);
    await expect(enforcer.close()).rejects.toThrow(BackendUnavailableError);
    await expect(enforcer.close()).rejects.toThrow(
      /^the firewall is changed, but the ban store \/state\/bans.json could not be saved \(.*ENOSPC.*\): the next floodgate command or start will undo/,
    );
    expect(backend.rules).toEqual(['198.51.100.7']);
  });

  it('stop (SIGTERM) retries the save, and succeeds once there is space again', async () => {
    const full = { value: true };
    const { enforcer } = setup({ store: fullDiskStore(full) });
    enforcer.ban(manual('198.51.100.7'), T0);
    await enforcer.queue.drain();
    setTimeout(() => (full.value = false), 30);
    await enforcer.stop(5, 20);
  });

  it('stop gives up after its retries with a clear error, not a crash', async () => {
    const { enforcer } = setup({ store: fullDiskStore({ value: true }) });
    enforcer.ban(manual('198.51.100.7'), T0);
    await enforcer.queue.drain();
    await expect(enforcer.stop(2, 1)).rejects.toThrow(
      /could not be saved .*: the rules stay in the firewall, but the next start does not know them/,
    );
  });
});
