// The daemon's latest events for `floodgate top`: taken from its log calls, the last 50 kept, the
// periodic chatter left out, and answered by the control socket's read-only `events` request.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { BanStore } from '../../src/bans/ban-store.js';
import { controlHandler } from '../../src/daemon/control-requests.js';
import type { RecentEvent } from '../../src/daemon/protocol.js';
import { RecentEvents } from '../../src/daemon/recent-events.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { buildAllowlist } from '../../src/net/allowlist.js';
import { tapEvents } from '../../src/log-events.js';
import { loadPolicy } from '../../src/policy/load-policy.js';
import { parseCidr } from '../../src/net/ip.js';
import { FakeBackend } from '../support/fake-backend.js';
import { memoryLog } from '../support/memory-log.js';
import { RecordingRunner } from '../support/recording-runner.js';

const policy = loadPolicy(fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))).policy;

describe('RecentEvents', () => {
  it('keeps the last 50 events, oldest first, without the heartbeat and debug lines', () => {
    const { log } = memoryLog();
    const recent = new RecentEvents();
    tapEvents(log, (event) => recent.push(event, Date.parse('2026-12-01T10:00:00Z')));
    for (let i = 0; i < 60; i++) log.info({ event: 'ban', target: `198.51.100.${i}` }, `ban 198.51.100.${i}`);
    log.info({ event: 'scan', sockets: 5 }, 'heartbeat');
    log.debug({ event: 'gc' }, 'memory compacted');
    log.warn({ event: 'attack', reasons: ['x'] }, 'SYN FLOOD IN PROGRESS');
    const all = recent.all();
    expect(all).toHaveLength(50);
    expect(all[0]).toEqual({
      at: '2026-12-01T10:00:00.000Z',
      level: 'info',
      event: 'ban',
      target: '198.51.100.11',
      msg: 'ban 198.51.100.11',
    });
    expect(all.at(-1)).toEqual({
      at: '2026-12-01T10:00:00.000Z',
      level: 'warn',
      event: 'attack',
      msg: 'SYN FLOOD IN PROGRESS',
    });
    expect(all.some((e) => e.event === 'scan' || e.event === 'gc')).toBe(false);
  });
});

describe('the events control request', () => {
  function setup() {
    const { log } = memoryLog();
    const recent = new RecentEvents();
    tapEvents(log, (event) => recent.push(event));
    const store = new BanStore(undefined, { ttl: 600_000, maxTtl: 3_600_000 });
    const enforcer = new Enforcer({
      backend: new FakeBackend(),
      store,
      log,
      runner: new RecordingRunner(),
      protectedSet: buildAllowlist(['192.0.2.1'], []),
      rate: 1000,
      maxActive: 1_000_000,
      killConnections: false,
    });
    const handle = controlHandler({
      enforcer,
      policy: () => policy,
      mode: 'dry-run',
      daemon: { pid: 1, since: '2026-12-01T10:00:00.000Z' },
      events: () => recent.all(),
    });
    return { enforcer, handle };
  }

  it('answers the bans and refusals the daemon logged, and changes nothing', async () => {
    const { enforcer, handle } = setup();
    enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'syn-flood', count: 30 });
    enforcer.ban({ target: parseCidr('192.0.2.1')!, rule: 'syn-flood', count: 30 });
    const events = (await handle({ cmd: 'events' })) as RecentEvent[];
    expect(events.map((e) => [e.event, e.target])).toEqual([
      ['ban', '198.51.100.7'],
      ['refused', '192.0.2.1'],
    ]);
    expect(events[0]!.msg).toContain('198.51.100.7');
    expect(enforcer.store.size).toBe(1);
  });

  it('refuses a field it does not take', async () => {
    const { handle } = setup();
    await expect(handle({ cmd: 'events', last: 5 })).rejects.toMatchObject({
      message: 'unknown field(s) in a "events" request: last',
    });
  });
});
