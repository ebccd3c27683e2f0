// What the daemon does with control requests: every field of every request checked before anything
// is stored (a ttl of "abc" once made a ban that never expired), reads answered at once, a ban or an
// unban waiting only for its own changes, and a flush run alone.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fileURLToPath } from 'node:url';
import { BanStore } from '../../src/bans/ban-store.js';
import { controlHandler } from '../../src/daemon/control-requests.js';
import type { BanResult, StatusResult } from '../../src/daemon/protocol.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { UsageError } from '../../src/errors.js';
import { buildAllowlist } from '../../src/net/allowlist.js';
import { loadPolicy } from '../../src/policy/load-policy.js';
import { FakeBackend } from '../support/fake-backend.js';
import { memoryLog } from '../support/memory-log.js';
import { RecordingRunner } from '../support/recording-runner.js';

const policy = loadPolicy(fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))).policy;

function setup(rate = 1000) {
  const backend = new FakeBackend();
  const store = new BanStore(undefined, { ttl: 600_000, maxTtl: 3_600_000 });
  const enforcer = new Enforcer({
    backend,
    store,
    log: memoryLog().log,
    runner: new RecordingRunner(),
    protectedSet: buildAllowlist([], []),
    rate,
    maxActive: 1_000_000,
    killConnections: false,
  });
  const handle = controlHandler({
    enforcer,
    policy: () => policy,
    mode: 'dry-run',
    daemon: { pid: 1, since: '2026-12-01T10:00:00.000Z' },
  });
  return { backend, store, enforcer, handle };
}

describe('control requests: every field checked', () => {
  it.each([
    [
      { cmd: 'ban', targets: ['198.51.100.20'], ttl: 'abc' },
      'ttl: expected a whole number of milliseconds from 1000 (1s) to 315360000000 (3650d), got "abc" (a string of 3 characters)',
    ],
    [
      { cmd: 'ban', targets: ['198.51.100.20'], ttl: { ms: 5 } },
      'ttl: expected a whole number of milliseconds from 1000 (1s) to 315360000000 (3650d), got {"ms":5} (object)',
    ],
    [
      { cmd: 'ban', targets: ['198.51.100.20'], ttl: 0 },
      'ttl: expected a whole number of milliseconds from 1000 (1s) to 315360000000 (3650d), got 0 (number)',
    ],
    [
      { cmd: 'ban', targets: ['198.51.100.20'], ttl: -5000 },
      'ttl: expected a whole number of milliseconds from 1000 (1s) to 315360000000 (3650d), got -5000 (number)',
    ],
    [
      { cmd: 'ban', targets: ['198.51.100.20'], reason: { a: 1 } },
      'reason: expected a string of at most 200 characters, got {"a":1} (object)',
    ],
    [
      { cmd: 'ban', targets: ['198.51.100.20'], reason: 'x'.repeat(201) },
      expect.stringMatching(
        /^reason: expected a string of at most 200 characters, got "x+\.\.\. \(a string of 201 characters\)$/,
      ),
    ],
    [
      { cmd: 'ban', targets: ['198.51.100.20'], force: 'yes' },
      'force: expected true or false, got "yes" (a string of 3 characters)',
    ],
    [
      { cmd: 'ban', targets: '198.51.100.20' },
      'targets: expected a non-empty list of addresses or networks, each a string of at most 100 characters, got "198.51.100.20" (a string of 13 characters)',
    ],
    [
      { cmd: 'ban', targets: ['198.51.100.20', 7] },
      'targets: expected a non-empty list of addresses or networks, each a string of at most 100 characters, got ["198.51.100.20",7] (an array of 2) (at targets.1: 7 (number))',
    ],
    [
      { cmd: 'ban', targets: ['198.51.100.20'], mode: 'maybe' },
      'mode: expected "dry-run" or "enforce", got "maybe" (a string of 5 characters)',
    ],
    [
      { cmd: 'ban', targets: ['198.51.100.20'], ttl: 315360000001 },
      'ttl: expected a whole number of milliseconds from 1000 (1s) to 315360000000 (3650d), got 315360000001 (number)',
    ],
    [
      { cmd: 'unban', targets: ['198.51.100.20'], grace: -1 },
      'grace: expected a whole number of milliseconds from 0 to 315360000000 (3650d), got -1 (number)',
    ],
    [{ cmd: 'status', verbose: true }, 'unknown field(s) in a "status" request: verbose'],
    [
      { cmd: 'reboot' },
      'cmd: expected one of "ban", "unban", "list", "flush", "status", "events", got "reboot" (a string of 6 characters)',
    ],
    [['ban'], 'a control request must be a JSON object with a "cmd", got ["ban"] (an array of 1)'],
  ])('refuses %j, changing nothing', async (request, message) => {
    const { handle, store, backend } = setup();
    const refusal = handle(request);
    await expect(refusal).rejects.toBeInstanceOf(UsageError);
    await expect(refusal).rejects.toMatchObject({ message });
    expect(store.size).toBe(0);
    expect(backend.history).toEqual([]);
  });

  it('takes a request whose every field is right', async () => {
    const { handle, store } = setup();
    const results = (await handle({
      cmd: 'ban',
      targets: ['198.51.100.20'],
      ttl: 5000,
      reason: 'ticket 7',
      force: false,
      mode: 'dry-run',
    })) as BanResult[];
    expect(results).toMatchObject([{ target: '198.51.100.20', status: 'banned' }]);
    expect(store.get('198.51.100.20')).toMatchObject({ ttl: 5000, reason: 'ticket 7' });
  });
});

describe('control requests: nobody waits for someone else’s work', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers status at once and lets an unban overtake a 400-target ban list at 20/s', async () => {
    const { handle, backend } = setup(20);
    const targets = Array.from({ length: 400 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    let banDone = false;
    const ban = handle({ cmd: 'ban', targets }).then(() => (banDone = true));
    await vi.advanceTimersByTimeAsync(10);
    const status = (await handle({ cmd: 'status' })) as StatusResult;
    expect(status).toMatchObject({ active: 400, queued: 380 });
    let unbanAt: number | undefined;
    const start = Date.now();
    void handle({ cmd: 'unban', targets: ['198.18.1.100'], grace: 0 }).then(() => (unbanAt = Date.now()));
    await vi.advanceTimersByTimeAsync(1000);
    // The unban went in the next batch, first, not after the 19 s the list takes.
    expect(unbanAt).toBeDefined();
    expect(unbanAt! - start).toBeLessThanOrEqual(1000);
    expect(backend.commits[1]![0]).toMatchObject({ op: 'delete' });
    expect(banDone).toBe(false);
    await vi.advanceTimersByTimeAsync(20_000);
    await ban;
    expect(backend.rules).toHaveLength(399);
  });

  it('answers a lone ban as soon as its change is committed, not a window later', async () => {
    const { handle } = setup(20);
    const start = Date.now();
    let doneAt: number | undefined;
    void handle({ cmd: 'ban', targets: ['198.51.100.1'] }).then(() => (doneAt = Date.now()));
    await vi.advanceTimersByTimeAsync(0);
    void handle({ cmd: 'ban', targets: ['198.51.100.2'] }).then(() => (doneAt = Date.now()));
    await vi.advanceTimersByTimeAsync(0);
    expect(doneAt).toBe(start);
  });

  it('holds bans that arrive during a flush until it is done, then bans them', async () => {
    const { handle, backend, store } = setup(20);
    const first = handle({ cmd: 'ban', targets: ['198.51.100.1'] });
    await vi.advanceTimersByTimeAsync(0);
    await first;
    let releaseFlush!: () => void;
    const flush = backend.flush.bind(backend);
    backend.flush = async () => {
      await new Promise<void>((resolve) => (releaseFlush = resolve));
      return flush();
    };
    const flushing = handle({ cmd: 'flush' });
    await vi.advanceTimersByTimeAsync(10);
    const ban = handle({ cmd: 'ban', targets: ['198.51.100.2'] });
    await vi.advanceTimersByTimeAsync(10);
    expect(store.get('198.51.100.2')).toBeUndefined();
    releaseFlush();
    await flushing;
    await vi.advanceTimersByTimeAsync(10);
    await ban;
    expect(backend.rules).toEqual(['198.51.100.2']);
  });
});
