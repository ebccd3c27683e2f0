// The Redis engine against a real redis-server started for these tests.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisEngine, compareIds } from '../../src/fleet/redis-engine.js';
import { HAS_REDIS, RedisServer } from '../support/redis-server.js';

describe('compareIds', () => {
  it('orders stream ids by time, then sequence', () => {
    expect(compareIds('10-0', '9-5')).toBe(1);
    expect(compareIds('10-1', '10-2')).toBe(-1);
    expect(compareIds('1700000000000-3', '1700000000000-3')).toBe(0);
  });
});

describe.skipIf(!HAS_REDIS)('RedisEngine with a real redis-server', () => {
  const server = new RedisServer();
  let admin: Redis;
  const engines: RedisEngine[] = [];
  const engine = (host: string, prefix = 'fg:') => {
    const e = new RedisEngine({ url: server.url, host, prefix, blockMs: 200 });
    engines.push(e);
    return e;
  };

  beforeAll(async () => {
    await server.start();
    admin = new Redis(server.url);
  }, 20_000);
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    await admin.flushall();
  });
  afterAll(async () => {
    admin?.disconnect();
    await server.remove();
  });

  it('stores a ban once, with its absolute expiry, however many hosts push it', async () => {
    const now = Date.now();
    const [a, b] = [engine('web-a'), engine('web-b')];
    await Promise.all([
      a.push([{ target: '192.0.2.7/32', rule: 'syn', expiresAt: now + 60_000 }], [], now),
      b.push([{ target: '192.0.2.7/32', rule: 'other', expiresAt: now + 90_000 }], [], now),
      a.push([{ target: '192.0.2.7/32', rule: 'syn', expiresAt: now + 60_000 }], [], now),
    ]);
    expect(await admin.xlen('fg:events')).toBe(1);
    const held = JSON.parse((await admin.get('fg:ban:192.0.2.7/32'))!) as { host: string; expiresAt: number };
    const pexpireAt = await admin.pexpiretime('fg:ban:192.0.2.7/32');
    expect(pexpireAt).toBe(held.expiresAt);
    expect([now + 60_000, now + 90_000]).toContain(held.expiresAt);
  });

  it('follows the stream from a cursor: bans, then an unban', async () => {
    const now = Date.now();
    const [a, b] = [engine('web-a'), engine('web-b')];
    const start = await b.pull(now);
    expect(start).toMatchObject({ complete: true, added: [], cursor: '0-0' });
    await a.push([{ target: '198.51.100.0/24', rule: 'syn', expiresAt: now + 60_000 }], [], now);
    const first = await b.pull(now, start.cursor);
    expect(first.added).toEqual([
      {
        value: '198.51.100.0/24',
        id: '198.51.100.0/24',
        host: 'web-a',
        origin: 'floodgate',
        rule: 'syn',
        expiresAt: now + 60_000,
      },
    ]);
    // Blocked, then woken by the unban rather than by a timer.
    const waiting = b.pull(now, first.cursor);
    await a.push([], ['198.51.100.0/24'], now);
    const second = await waiting;
    expect(second.deleted.map((d) => d.value)).toEqual(['198.51.100.0/24']);
    expect(await admin.exists('fg:ban:198.51.100.0/24')).toBe(0);
    // An unban of a target not banned announces nothing.
    await a.push([], ['198.51.100.0/24'], now);
    expect(await admin.xlen('fg:events')).toBe(2);
  });

  it('resyncs from the keys when the stream was trimmed past the cursor', async () => {
    const now = Date.now();
    const a = engine('web-a');
    const b = engine('web-b');
    const start = await b.pull(now);
    await a.push([{ target: '203.0.113.1/32', rule: 'syn', expiresAt: now + 60_000 }], [], now);
    const seen = await b.pull(now, start.cursor);
    await a.push(
      [
        { target: '203.0.113.2/32', rule: 'syn', expiresAt: now + 60_000 },
        { target: '203.0.113.3/32', rule: 'syn', expiresAt: now + 60_000 },
      ],
      [],
      now,
    );
    await admin.xtrim('fg:events', 'MAXLEN', 1);
    const changes = await b.pull(now, seen.cursor);
    expect(changes.complete).toBe(true);
    expect(changes.added.map((d) => d.value).sort()).toEqual(['203.0.113.1/32', '203.0.113.2/32', '203.0.113.3/32']);
    // A stream gone altogether (a Redis that lost its data) also means a resync.
    await admin.del('fg:events');
    expect((await b.pull(now, changes.cursor)).complete).toBe(true);
  });

  it('reads on from a cursor taken before the stream existed, as long as nothing was trimmed', async () => {
    const now = Date.now();
    const start = await engine('web-b').pull(now);
    expect(start.cursor).toBe('0-0');
    await engine('web-a').push([{ target: '192.0.2.5', rule: 'syn', expiresAt: now + 60_000 }], [], now);
    // A restarted B (a new engine) with the saved id.
    const changes = await engine('web-b').pull(now, start.cursor);
    expect(changes.complete).toBe(false);
    expect(changes.added.map((d) => d.value)).toEqual(['192.0.2.5']);
  });

  it('keeps fleets with different prefixes apart', async () => {
    const now = Date.now();
    await engine('web-a', 'one:').push([{ target: '192.0.2.9/32', rule: 'syn', expiresAt: now + 60_000 }], [], now);
    expect(await engine('web-b', 'two:').snapshot(now)).toEqual([]);
    expect((await engine('web-c', 'one:').snapshot(now)).map((d) => d.value)).toEqual(['192.0.2.9/32']);
  });

  it('a stop ends a pull waiting for an unreachable Redis at once', async () => {
    const down = new RedisEngine({ url: 'redis://127.0.0.1:1', host: 'web-a', prefix: 'fg:' });
    const started = Date.now();
    const pulling = down.pull(started).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 50));
    await down.close();
    expect(await pulling).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('fails a push at once while Redis is unreachable', async () => {
    const down = new RedisEngine({ url: 'redis://127.0.0.1:1', host: 'web-a', prefix: 'fg:' });
    engines.push(down);
    const now = Date.now();
    await expect(down.push([{ target: '192.0.2.1/32', rule: 'r', expiresAt: now + 1000 }], [], now)).rejects.toThrow(
      /not reachable/,
    );
  });
});

describe.skipIf(!HAS_REDIS)('RedisEngine with a password', () => {
  const server = new RedisServer(undefined, ['--requirepass', 'pw-s3cret-only-here']);
  beforeAll(() => server.start(), 20_000);
  afterAll(() => server.remove());

  it('authenticates with the password, and a wrong one fails without showing it', async () => {
    const now = Date.now();
    const good = new RedisEngine({ url: server.url, host: 'web-a', prefix: 'fg:', password: 'pw-s3cret-only-here' });
    const bad = new RedisEngine({ url: server.url, host: 'web-b', prefix: 'fg:', password: 'pw-wrong-one' });
    try {
      await good.push([{ target: '192.0.2.3', rule: 'syn', expiresAt: now + 60_000 }], [], now);
      expect((await good.snapshot(now)).map((d) => d.value)).toEqual(['192.0.2.3']);
      const error = await bad.push([{ target: '192.0.2.4', rule: 'syn', expiresAt: now + 60_000 }], [], now).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error?.message).toMatch(/not reachable \(WRONGPASS/);
      expect(error?.message).not.toContain('pw-');
    } finally {
      await good.close();
      await bad.close();
    }
  });
});

describe.skipIf(!HAS_REDIS)('RedisEngine with appendfsync always', () => {
  const server = new RedisServer(undefined, ['--appendfsync', 'always']);
  beforeAll(() => server.start(), 20_000);
  afterAll(() => server.remove());

  it('keeps every acknowledged ban and stream entry through a kill -9 of redis-server', async () => {
    const now = Date.now();
    const bans = Array.from({ length: 1000 }, (_, i) => ({
      target: `198.18.${i >> 8}.${i & 255}`,
      rule: 'syn',
      expiresAt: now + 600_000,
    }));
    const a = new RedisEngine({ url: server.url, host: 'web-a', prefix: 'fg:' });
    await a.push(bans, [], now);
    await a.close();
    // Killed right after the acknowledgement. Redis writes the AOF before it replies, so a killed
    // process loses nothing with everysec either (3 of 3 runs here); the fsync window only matters
    // when the machine itself goes down, which no test here can do.
    await server.stop(true);
    await server.start();
    const b = new RedisEngine({ url: server.url, host: 'web-b', prefix: 'fg:' });
    try {
      const changes = await b.pull(now, '0-0');
      expect(changes.complete).toBe(false);
      expect(changes.added).toHaveLength(1000);
      expect(await b.snapshot(now)).toHaveLength(1000);
    } finally {
      await b.close();
    }
  }, 30_000);
});

describe.skipIf(!HAS_REDIS)('RedisEngine through Redis Sentinel', () => {
  const primary = new RedisServer();
  const sentinelPort = primary.port + 1;
  let sentinel: ReturnType<typeof spawn> | undefined;
  beforeAll(async () => {
    await primary.start();
    const conf = join(primary.dir, 'sentinel.conf');
    writeFileSync(
      conf,
      `port ${sentinelPort}\nbind 127.0.0.1\ndir ${primary.dir}\n` +
        `sentinel monitor fleetprimary 127.0.0.1 ${primary.port} 1\n`,
    );
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
  }, 20_000);
  afterAll(async () => {
    sentinel?.kill('SIGKILL');
    await primary.remove();
  });

  it('finds the primary through the sentinel and works as with a URL', async () => {
    const now = Date.now();
    const engine = new RedisEngine({
      url: 'redis://unused.invalid:6379',
      host: 'web-a',
      prefix: 'fg:',
      sentinels: [{ host: '127.0.0.1', port: sentinelPort }],
      sentinelName: 'fleetprimary',
    });
    try {
      await engine.push([{ target: '192.0.2.8', rule: 'syn', expiresAt: now + 60_000 }], [], now);
      expect((await engine.snapshot(now)).map((d) => d.value)).toEqual(['192.0.2.8']);
    } finally {
      await engine.close();
    }
    const direct = new Redis(primary.url);
    expect(await direct.exists('fg:ban:192.0.2.8')).toBe(1);
    direct.disconnect();
  });
});
