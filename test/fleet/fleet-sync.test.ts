// The fleet sync against a scripted engine: the gate every pulled value passes, what a deletion
// lifts, the outbox on failure and its order, and dry-run.
import { describe, expect, it } from 'vitest';
import { BanStore, banSource } from '../../src/bans/ban-store.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import type { FleetChanges, FleetDecision, FleetEngine, PushBan } from '../../src/fleet/fleet-engine.js';
import { FleetSync } from '../../src/fleet/fleet-sync.js';
import { buildAllowlist } from '../../src/net/allowlist.js';
import { tapEvents } from '../../src/log-events.js';
import { parseCidr } from '../../src/net/ip.js';
import { FakeBackend } from '../support/fake-backend.js';
import { memoryLog } from '../support/memory-log.js';
import { RecordingRunner } from '../support/recording-runner.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

class ScriptedEngine implements FleetEngine {
  readonly name = 'scripted';
  pulls: FleetChanges[] = [];
  all: FleetDecision[] = [];
  pushed: { bans: PushBan[]; unbans: string[] }[] = [];
  failPushes = 0;
  failPulls = 0;
  exactStream = false;
  async push(bans: readonly PushBan[], unbans: readonly string[]): Promise<void> {
    if (this.failPushes > 0) {
      this.failPushes--;
      throw new Error('HTTP 500 database is locked');
    }
    this.pushed.push({ bans: [...bans], unbans: [...unbans] });
  }
  cursors: (string | undefined)[] = [];
  async pull(_now: number, cursor?: string): Promise<FleetChanges> {
    this.cursors.push(cursor);
    if (this.failPulls > 0) {
      this.failPulls--;
      throw new Error('connect ECONNREFUSED');
    }
    return this.pulls.shift() ?? { added: [], deleted: [], complete: false };
  }
  async snapshot(): Promise<FleetDecision[]> {
    return this.all;
  }
}

const decision = (value: string, extra: Partial<FleetDecision> = {}): FleetDecision => ({
  value,
  id: '1',
  host: 'web-2',
  origin: 'floodgate',
  rule: 'syn-flood',
  expiresAt: T0 + 10 * MINUTE,
  ...extra,
});

function setup(options: { dryRun?: boolean; maxActive?: number; poll?: number } = {}) {
  let now = T0;
  const memory = memoryLog();
  const store = new BanStore(undefined, { ttl: 10 * MINUTE, maxTtl: 60 * MINUTE });
  const protectedSet = buildAllowlist(['198.51.100.250'], ['192.0.2.1']);
  const enforcer = new Enforcer({
    backend: new FakeBackend(),
    store,
    log: memory.log,
    runner: new RecordingRunner(),
    protectedSet,
    rate: 1000,
    maxActive: options.maxActive ?? 100,
    killConnections: false,
    clock: () => now,
  });
  const engine = new ScriptedEngine();
  const sync = new FleetSync({
    engine,
    enforcer,
    log: memory.log,
    host: 'web-1',
    dryRun: options.dryRun ?? false,
    poll: options.poll ?? 500,
    resync: MINUTE,
    protectedSet: () => protectedSet,
    maxActive: () => options.maxActive ?? 100,
    clock: () => now,
  });
  return { sync, engine, store, enforcer, ...memory, advance: (ms: number) => (now += ms) };
}

describe('FleetSync pull', () => {
  it('canonicalizes pulled values, refuses (once) what covers allowlisted or own addresses, and skips its own host', async () => {
    const { sync, engine, store, named } = setup();
    const refused = [
      decision('198.51.100.250', { id: '2' }),
      decision('192.0.2.0/24', { id: '3', origin: 'cscli', host: '' }),
    ];
    engine.pulls.push({
      added: [
        decision('198.51.100.7/32'),
        decision('203.0.113.9/24', { id: '4' }),
        decision('198.51.100.8', { id: '5', host: 'web-1' }),
        decision('not-an-ip', { id: '6' }),
        ...refused,
      ],
      deleted: [],
      complete: true,
    });
    engine.pulls.push({ added: refused, deleted: [], complete: false });
    await sync.pullOnce();
    await sync.pullOnce();
    expect(store.all().map((b) => [b.target, banSource(b)])).toEqual([
      ['198.51.100.7', 'fleet:web-2'],
      ['203.0.113.0/24', 'fleet:web-2'],
    ]);
    expect(named('refused').map((e) => [e.target, e.why])).toEqual([
      ['not-an-ip', 'not an address or network'],
      ['198.51.100.250', 'it covers an allowlisted, loopback or one of this host’s own addresses'],
      ['192.0.2.0/24', 'it covers an allowlisted, loopback or one of this host’s own addresses'],
    ]);
  });

  it('refuses a fleet ban past max_active', async () => {
    const { sync, engine, store, named } = setup({ maxActive: 1 });
    engine.pulls.push({
      added: [decision('198.51.100.7'), decision('198.51.100.8', { id: '2' })],
      deleted: [],
      complete: true,
    });
    await sync.pullOnce();
    expect(store.size).toBe(1);
    expect(named('refused').map((e) => e.why)).toEqual(['max_active']);
  });

  it('a fleet deletion lifts only what the fleet added; repeats are harmless; the longest of several decisions counts', async () => {
    const { sync, engine, store, enforcer } = setup();
    enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'syn-flood', count: 40 });
    const localExpiry = store.get('198.51.100.7')!.expiresAt;
    engine.pulls.push({
      added: [
        decision('198.51.100.7', { expiresAt: T0 + 50 * MINUTE }),
        decision('198.51.100.8', { id: '2' }),
        decision('198.51.100.8', { id: '3', expiresAt: T0 + 20 * MINUTE }),
      ],
      deleted: [],
      complete: true,
    });
    await sync.pullOnce();
    expect(store.get('198.51.100.7')!.expiresAt).toBe(T0 + 50 * MINUTE);
    expect(store.get('198.51.100.8')!.expiresAt).toBe(T0 + 20 * MINUTE);
    engine.pulls.push({
      added: [],
      deleted: [decision('198.51.100.7'), decision('198.51.100.7'), decision('198.51.100.8', { id: '3' })],
      complete: false,
    });
    await sync.pullOnce();
    expect(store.get('198.51.100.7')).toMatchObject({ expiresAt: localExpiry, rule: 'syn-flood' });
    expect(store.get('198.51.100.7')!.fleet).toBeUndefined();
    // Decision 2 is still active: back to its expiry.
    expect(store.get('198.51.100.8')!.expiresAt).toBe(T0 + 10 * MINUTE);
  });

  it('a complete pull or a resync lifts fleet bans the engine no longer holds and adds the ones the stream missed', async () => {
    const { sync, engine, store, advance } = setup();
    engine.pulls.push({
      added: [decision('198.51.100.7'), decision('198.51.100.8', { id: '2' })],
      deleted: [],
      complete: true,
    });
    await sync.pullOnce();
    engine.all = [decision('198.51.100.8', { id: '2' }), decision('198.51.100.9', { id: '9' })];
    advance(MINUTE);
    await sync.pullOnce();
    expect(store.all().map((b) => b.target)).toEqual(['198.51.100.8', '198.51.100.9']);
    expect(sync.status()).toMatchObject({ connected: true, fleetBans: 2, outbox: 0, lastError: null });
  });
});

describe('FleetSync log lines', () => {
  it('a pull of more than 100 changes logs one summary line at info and a line per ban at debug', async () => {
    const { sync, engine, store, events } = setup({ maxActive: 1000 });
    engine.pulls.push({ added: [], deleted: [], complete: true });
    await sync.pullOnce();
    const many = Array.from({ length: 150 }, (_, i) => decision(`198.18.0.${i}`, { id: String(i) }));
    engine.pulls.push({ added: many, deleted: [], complete: false });
    await sync.pullOnce();
    engine.pulls.push({ added: [decision('198.18.1.1', { id: 'one' })], deleted: [], complete: false });
    await sync.pullOnce();
    expect(store.size).toBe(151);
    const info = events().filter((e) => e.level === 30);
    expect(info.filter((e) => e.event === 'fleet-sync' && e.during === 'pull')).toEqual([
      expect.objectContaining({ decisions: 150, deleted: 0, applied: 150, extended: 0, lifted: 0 }),
    ]);
    // The single ban after it has its own line at info, as before.
    expect(info.filter((e) => e.event === 'ban').map((e) => e.target)).toEqual(['198.18.1.1']);
    expect(events().filter((e) => e.event === 'ban' && e.level === 20)).toHaveLength(150);
  });

  it('a bulk pull’s per-ban events still carry their message for the taps (notifications quote it) at level info', async () => {
    const { sync, engine, log } = setup({ maxActive: 1000 });
    log.level = 'info';
    const messages: string[] = [];
    tapEvents(log, ({ fields, msg }) => void (fields.event === 'ban' && messages.push(msg)));
    engine.pulls.push({ added: [], deleted: [], complete: true });
    await sync.pullOnce();
    const many = Array.from({ length: 150 }, (_, i) => decision(`198.18.0.${i}`, { id: String(i) }));
    engine.pulls.push({ added: many, deleted: [], complete: false });
    await sync.pullOnce();
    expect(messages).toHaveLength(150);
    expect(messages[0]).toMatch(/^ban 198\.18\.0\.0 \(fleet, from web-2\) until /);
  });
});

describe('FleetSync follow-up resync', () => {
  it('reads the full list at the first pull that brings nothing new after new decisions: the stream can skip some for good', async () => {
    const { sync, engine, store, advance } = setup();
    engine.pulls.push({ added: [], deleted: [], complete: true });
    await sync.pullOnce();
    engine.pulls.push({ added: [decision('198.51.100.7')], deleted: [], complete: false });
    await sync.pullOnce();
    // The LAPI holds one more that the stream never returned.
    engine.all = [decision('198.51.100.7'), decision('198.51.100.8', { id: '2' })];
    engine.pulls.push({ added: [decision('198.51.100.9', { id: '3' })], deleted: [], complete: false });
    advance(200);
    await sync.pullOnce();
    // Still arriving: no full list yet.
    expect(store.get('198.51.100.8')).toBeUndefined();
    // Nothing new, well before a second has passed: the burst is over.
    advance(200);
    await sync.pullOnce();
    expect(store.get('198.51.100.8')?.fleet?.decisionId).toBe('2');
  });

  it('reads the full list about a second after new decisions began to arrive, while they keep coming', async () => {
    const { sync, engine, store, advance } = setup();
    engine.pulls.push({ added: [], deleted: [], complete: true });
    await sync.pullOnce();
    engine.all = [decision('198.51.100.200', { id: '200' })];
    for (let i = 1; i <= 3; i++) {
      engine.pulls.push({ added: [decision(`198.51.100.${i}`, { id: String(i) })], deleted: [], complete: false });
      await sync.pullOnce();
      if (i < 3) expect(store.get('198.51.100.200')).toBeUndefined();
      advance(500);
    }
    expect(store.get('198.51.100.200')?.fleet?.decisionId).toBe('200');
  });
});

describe('FleetSync with an exact stream (Redis)', () => {
  it('reads no full list after new entries: only at start and every resync', async () => {
    const { sync, engine, store, advance } = setup();
    engine.exactStream = true;
    engine.pulls.push({ added: [], deleted: [], complete: true });
    await sync.pullOnce();
    engine.pulls.push({ added: [decision('198.51.100.7')], deleted: [], complete: false });
    await sync.pullOnce();
    engine.all = [decision('198.51.100.7'), decision('198.51.100.8', { id: '2' })];
    advance(1100);
    await sync.pullOnce();
    advance(1100);
    await sync.pullOnce();
    expect(store.get('198.51.100.8')).toBeUndefined();
  });

  it('sends the outbox as soon as a pull reaches the engine again, not after the push back-off', async () => {
    const { sync, engine, store, enforcer, advance } = setup();
    engine.pulls.push({ added: [], deleted: [], complete: true });
    await sync.pullOnce();
    enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'syn-flood', count: 40 });
    sync.localBan('198.51.100.7');
    engine.failPushes = 5;
    for (let i = 0; i < 5; i++) {
      if (i > 0) advance(20_000);
      await sync.pushOnce();
    }
    // The last failure's wait (8 s) is not over yet.
    engine.failPulls = 1;
    await sync.pullOnce();
    expect(sync.status().connected).toBe(false);
    advance(100);
    await sync.pullOnce();
    await new Promise((resolve) => setImmediate(resolve));
    await sync.pushOnce();
    expect(engine.pushed).toHaveLength(1);
    expect(store.outbox).toEqual([]);
  });
});

describe('FleetSync pull loop', () => {
  it('with poll 0 (Redis), a pull that fails at once is retried after 500 ms, not in a busy loop', async () => {
    // An error reply comes back at once (WRONGTYPE on the stream key, NOPERM for an ACL user
    // without XINFO): with the next pull right after, the loop would hammer Redis and the CPU.
    const { sync, engine, enforcer } = setup({ poll: 0 });
    engine.failPulls = 1_000_000;
    sync.start();
    // Pushes go through meanwhile: the loop must not take their success for the pulls'.
    enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'syn-flood', count: 40 });
    sync.localBan('198.51.100.7');
    await new Promise((resolve) => setTimeout(resolve, 700));
    await sync.stop();
    expect(engine.pushed).toHaveLength(1);
    expect(engine.cursors).toHaveLength(2);
    expect(sync.status().lastError?.message).toBe('connect ECONNREFUSED');
  });
});

describe('FleetSync after a restart', () => {
  it('a deletion replayed from the saved cursor lifts a fleet ban pulled before the restart', async () => {
    const first = setup();
    first.engine.pulls.push({
      added: [decision('198.51.100.7', { id: '198.51.100.7' })],
      deleted: [],
      complete: false,
    });
    await first.sync.pullOnce();
    expect(first.store.get('198.51.100.7')?.fleet).toBeDefined();
    // A new sync on the same store: what a restarted daemon has.
    const again = new FleetSync({
      engine: first.engine,
      enforcer: first.enforcer,
      log: first.log,
      host: 'web-1',
      dryRun: false,
      poll: 500,
      resync: MINUTE,
      protectedSet: () => buildAllowlist([], []),
      maxActive: () => 100,
      clock: () => T0,
    });
    first.engine.pulls.push({
      added: [],
      deleted: [decision('198.51.100.7', { id: '198.51.100.7' })],
      complete: false,
    });
    await again.pullOnce();
    expect(first.store.get('198.51.100.7')).toBeUndefined();
  });
});

describe('FleetSync cursor', () => {
  it('saves the cursor an engine returns (a Redis stream id) with the store and hands it back at the next pull', async () => {
    const { sync, engine, store } = setup();
    engine.pulls.push({ added: [decision('198.51.100.7')], deleted: [], complete: false, cursor: '1700000000000-3' });
    await sync.pullOnce();
    await sync.pullOnce();
    expect(engine.cursors).toEqual([undefined, '1700000000000-3']);
    expect(store.fleetCursor).toBe('1700000000000-3');
  });
});

describe('FleetSync push', () => {
  it('keeps the outbox through a failed push and sends it in order, a ban after an unban of the same target in the next batch', async () => {
    const { sync, engine, store, enforcer, advance } = setup();
    enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'syn-flood', count: 40 });
    sync.localBan('198.51.100.7');
    sync.localUnban('198.51.100.7');
    sync.localBan('198.51.100.7');
    engine.failPushes = 1;
    await sync.pushOnce();
    expect(store.outbox).toHaveLength(3);
    expect(sync.status().lastError?.message).toBe('HTTP 500 database is locked');
    advance(1000);
    await sync.pushOnce();
    advance(1000);
    await sync.pushOnce();
    const expiresAt = store.get('198.51.100.7')!.expiresAt;
    expect(engine.pushed).toEqual([
      { bans: [{ op: 'ban', target: '198.51.100.7', rule: 'syn-flood', expiresAt }], unbans: ['198.51.100.7'] },
      { bans: [{ op: 'ban', target: '198.51.100.7', rule: 'syn-flood', expiresAt }], unbans: [] },
    ]);
    expect(store.outbox).toEqual([]);
  });

  it('in dry-run pushes nothing', async () => {
    const { sync, engine, store, enforcer } = setup({ dryRun: true });
    enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'syn-flood', count: 40 });
    sync.localBan('198.51.100.7');
    sync.localUnban('198.51.100.7');
    await sync.pushOnce();
    expect(store.outbox).toEqual([]);
    expect(engine.pushed).toEqual([]);
  });

  it('never pushes a fleet ban back', async () => {
    const { sync, engine, store } = setup();
    engine.pulls.push({ added: [decision('198.51.100.7')], deleted: [], complete: true });
    await sync.pullOnce();
    sync.localBan('198.51.100.7');
    expect(store.outbox).toEqual([]);
  });
});
