// SIGHUP's reload: a valid policy takes effect, an invalid one or a firewall or mode change is
// refused with the old policy kept, and an address added to the allowlist is freed at once.
import { describe, expect, it } from 'vitest';
import { BanStore } from '../../src/bans/ban-store.js';
import { reloadPolicy } from '../../src/daemon/reload-policy.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { ConfigError } from '../../src/errors.js';
import { buildAllowlist } from '../../src/net/allowlist.js';
import { parseCidr } from '../../src/net/ip.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { Policy } from '../../src/policy/schema.js';
import { FakeBackend } from '../support/fake-backend.js';
import { memoryLog } from '../support/memory-log.js';
import { RecordingRunner } from '../support/recording-runner.js';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const OLD = parsePolicy('rules: [{name: syn-flood, states: [SYN_RECV], threshold: 20}]\nban: {ttl: 10m}\n', 'p.yaml');

function setup() {
  const memory = memoryLog();
  const backend = new FakeBackend();
  const store = new BanStore(undefined, { ttl: OLD.ban.ttl, maxTtl: OLD.ban.max_ttl });
  const enforcer = new Enforcer({
    backend,
    store,
    log: memory.log,
    runner: new RecordingRunner(),
    protectedSet: buildAllowlist(OLD.allowlist, []),
    rate: 1000,
    maxActive: 100,
    killConnections: false,
    clock: () => T0,
  });
  const reload = (load: () => Policy) =>
    reloadPolicy({
      current: OLD,
      mode: 'enforce',
      file: 'p.yaml',
      load: () => ({ policy: load(), mode: 'enforce' }),
      enforcer,
      log: memory.log,
      now: T0,
    });
  return { ...memory, backend, store, enforcer, reload };
}

describe('reloadPolicy', () => {
  it('keeps the old policy and logs every file:line:key error of an invalid one', () => {
    const { reload, named } = setup();
    const kept = reload(() => parsePolicy('rules: [{name: syn-flood, treshold: 5}]\ninterval: 0\n', 'p.yaml'));
    expect(kept).toBe(OLD);
    const [event] = named('reload');
    expect(event).toMatchObject({ level: 50, applied: false });
    expect(event!.errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^p\.yaml:1 rules\[0\]\.treshold: unknown key/),
        expect.stringMatching(/^p\.yaml:2 interval: expected/),
      ]),
    );
    expect(event!.msg).toMatch(/^policy reload refused, the previous policy stays in force: p\.yaml:\d /);
  });

  it('refuses a backend or mode change as a whole, asking for a restart', () => {
    const { reload, named } = setup();
    const next = parsePolicy('rules: [{name: syn-flood, threshold: 5}]\nfirewall: {backend: nftables}\n', 'p.yaml');
    expect(reload(() => next)).toBe(OLD);
    expect(named('reload')[0]).toMatchObject({
      level: 50,
      applied: false,
      needsRestart: ['firewall.backend iptables -> nftables'],
    });
    expect(named('reload')[0]!.msg).toContain('needs a restart');
    const other = setup();
    const lower = parsePolicy('rules: [{name: syn-flood, threshold: 5}]\n', 'p.yaml');
    expect(
      reloadPolicy({
        current: OLD,
        mode: 'dry-run',
        file: 'p.yaml',
        load: () => ({ policy: lower, mode: 'enforce' }),
        enforcer: other.enforcer,
        log: other.log,
      }),
    ).toBe(OLD);
    expect(other.named('reload')).toEqual([
      expect.objectContaining({ level: 50, applied: false, needsRestart: ['mode dry-run -> enforce'] }),
    ]);
  });

  it('refuses a change of the fleet section, which is set up at start', () => {
    const { reload, named } = setup();
    const fleet =
      'fleet: {engine: crowdsec, url: "http://127.0.0.1:8080", machine: m, password_file: /p, bouncer_key_file: /k}\n';
    const next = parsePolicy(
      `rules: [{name: syn-flood, states: [SYN_RECV], threshold: 20}]\nban: {ttl: 10m}\n${fleet}`,
      'p.yaml',
    );
    expect(reload(() => next)).toBe(OLD);
    expect(named('reload')[0]).toMatchObject({ applied: false });
    expect((named('reload')[0]!.needsRestart as string[]).some((r) => r.startsWith('fleet'))).toBe(true);
  });

  it('refuses a new ban.max_active with ipset or nftables, whose sets were sized by it at start', () => {
    const { enforcer, log, named } = setup();
    const current = parsePolicy('rules: [{name: r, threshold: 5}]\nfirewall: {backend: ipset}\n', 'p.yaml');
    const next = parsePolicy(
      'rules: [{name: r, threshold: 5}]\nfirewall: {backend: ipset}\nban: {max_active: 20000}\n',
      'p.yaml',
    );
    expect(
      reloadPolicy({
        current,
        mode: 'enforce',
        file: 'p.yaml',
        load: () => ({ policy: next, mode: 'enforce' }),
        enforcer,
        log,
      }),
    ).toBe(current);
    expect(named('reload')[0]).toMatchObject({
      applied: false,
      needsRestart: ['ban.max_active 5000 -> 20000 (the ipset sets are sized by it)'],
    });
  });

  it('applies a valid policy: new limits for new bans, one reload event saying what changed', async () => {
    const { reload, named, enforcer } = setup();
    const next = parsePolicy(
      'rules: [{name: syn-flood, states: [SYN_RECV], threshold: 5}, {name: conn, threshold: 100}]\nban: {ttl: 30m, max_active: 1}\n',
      'p.yaml',
    );
    expect(reload(() => next)).toBe(next);
    expect(named('reload')).toEqual([
      expect.objectContaining({
        level: 30,
        applied: true,
        rulesAdded: ['conn'],
        msg: 'policy reloaded from p.yaml: rules added: conn; rules changed: syn-flood (threshold 20 -> 5); ban.ttl 10m -> 30m; ban.max_active 5000 -> 1',
      }),
    ]);
    const first = enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'syn-flood', count: 9 }, T0);
    expect(first).toMatchObject({ status: 'banned', ban: { ttl: 30 * 60_000 } });
    expect(enforcer.ban({ target: parseCidr('198.51.100.8')!, rule: 'syn-flood', count: 9 }, T0)).toMatchObject({
      status: 'refused',
    });
    await enforcer.queue.drain();
  });

  it('lifts at once a ban that a new allowlist entry covers, and only that one', async () => {
    const { reload, named, enforcer, backend, store } = setup();
    for (const target of ['198.51.100.7', '203.0.113.0/24', '198.51.100.9'])
      enforcer.ban({ target: parseCidr(target)!, rule: 'syn-flood', count: 30 }, T0);
    await enforcer.queue.drain();
    const next = parsePolicy(
      'allowlist: [198.51.100.7, 203.0.113.50]\nrules: [{name: syn-flood, states: [SYN_RECV], threshold: 20}]\nban: {ttl: 10m}\n',
      'p.yaml',
    );
    reload(() => next);
    await enforcer.queue.drain();
    expect(store.get('198.51.100.7')).toBeUndefined();
    expect(store.get('203.0.113.0/24')).toBeUndefined();
    expect(store.get('198.51.100.9')).toBeDefined();
    expect(backend.rules.sort()).toEqual(['198.51.100.9']);
    expect(named('reload')[0]).toMatchObject({ lifted: ['198.51.100.7', '203.0.113.0/24'] });
    expect(named('unban').map((e) => e.target)).toEqual(['198.51.100.7', '203.0.113.0/24']);
    // Allowlisted now: the detector's bans of it are refused.
    expect(enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'syn-flood', count: 30 }, T0)).toMatchObject({
      status: 'refused',
    });
  });

  it('a ConfigError that is not a policy mistake (an unreadable file) is logged the same way', () => {
    const { reload, named } = setup();
    expect(
      reload(() => {
        throw new ConfigError('cannot read policy p.yaml: no such file');
      }),
    ).toBe(OLD);
    expect(named('reload')[0]).toMatchObject({ applied: false, errors: ['cannot read policy p.yaml: no such file'] });
  });
});

describe('reloadPolicy and notifications', () => {
  it('hands the new notify settings to the notifier when applied, and not when refused', () => {
    const { enforcer, log } = setup();
    const configured: Policy['notify'][] = [];
    const notifier = { configure: (settings: Policy['notify']) => configured.push(settings) };
    const next = parsePolicy(
      'rules: [{name: syn-flood, states: [SYN_RECV], threshold: 20}]\nban: {ttl: 10m}\nnotify: {command: [logger, -t, floodgate], on: [ban]}\n',
      'p.yaml',
    );
    reloadPolicy({
      current: OLD,
      mode: 'enforce',
      file: 'p.yaml',
      load: () => ({ policy: next, mode: 'enforce' }),
      enforcer,
      log,
      notifier,
      now: T0,
    });
    expect(configured).toEqual([expect.objectContaining({ command: ['logger', '-t', 'floodgate'], on: ['ban'] })]);
    const refused = parsePolicy(
      'rules: [{name: syn-flood, threshold: 5}]\nfirewall: {backend: nftables}\nnotify: {command: [/bin/true]}\n',
      'p.yaml',
    );
    reloadPolicy({
      current: next,
      mode: 'enforce',
      file: 'p.yaml',
      load: () => ({ policy: refused, mode: 'enforce' }),
      enforcer,
      log,
      notifier,
      now: T0,
    });
    expect(configured).toHaveLength(1);
  });
});
