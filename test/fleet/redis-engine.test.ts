// The Redis engine against a real redis-server started for these tests.
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisEngine, compareIds } from '../../src/fleet/redis-engine.js';
import { memoryLog } from '../support/memory-log.js';
import { HAS_REDIS, RedisSentinel, RedisServer, freePort } from '../support/redis-server.js';
import { type TlsFiles, makeTlsFiles } from '../support/tls-files.js';

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

  it('skips a stream entry it cannot read, says why once, and applies the ones around it', async () => {
    const now = Date.now();
    const memory = memoryLog();
    const b = new RedisEngine({ url: server.url, host: 'web-b', prefix: 'fg:', blockMs: 200, log: memory.log });
    engines.push(b);
    const start = await b.pull(now);
    const a = engine('web-a');
    await a.push([{ target: '192.0.2.11', rule: 'syn', expiresAt: now + 60_000 }], [], now);
    const at = String(now + 60_000);
    // Entries in the format before fg1: one field per value.
    const oldFormat = (target: string) =>
      admin.xadd('fg:events', '*', 'op', 'ban', 'target', target, 'host', 'web-c', 'rule', 'r', 'expiresAt', at);
    const old = await oldFormat('192.0.2.12');
    await oldFormat('192.0.2.13');
    await admin.xadd('fg:events', '*', 'fg1', '["ban","web-c","192.0.2.14","r"');
    await a.push([{ target: '192.0.2.15', rule: 'syn', expiresAt: now + 60_000 }], [], now);
    const changes = await b.pull(now, start.cursor);
    expect(changes.added.map((d) => d.value)).toEqual(['192.0.2.11', '192.0.2.15']);
    // The cursor moves past the skipped entries: they are not read again.
    const [last] = (await admin.xrevrange('fg:events', '+', '-', 'COUNT', 1)) as [string, string[]][];
    expect(changes.cursor).toBe(last?.[0]);
    expect(memory.named('fleet-skipped').map((e) => [e.entry, e.why])).toEqual([
      [old, 'not in format fg1 (field(s) op, target, host, rule, expiresAt)'],
      [expect.any(String), 'fg1: not JSON'],
    ]);
  });

  it('a host gets back its own unbans but not its own bans', async () => {
    const now = Date.now();
    const a = engine('web-a');
    const start = await a.pull(now);
    await a.push([{ target: '192.0.2.21', rule: 'syn', expiresAt: now + 60_000 }], [], now);
    await engine('web-b').push([{ target: '192.0.2.22', rule: 'syn', expiresAt: now + 60_000 }], [], now);
    await a.push([], ['192.0.2.21'], now);
    const changes = await a.pull(now, start.cursor);
    expect(changes.added.map((d) => [d.value, d.host])).toEqual([['192.0.2.22', 'web-b']]);
    expect(changes.deleted.map((d) => [d.value, d.host])).toEqual([['192.0.2.21', 'web-a']]);
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

describe.skipIf(!HAS_REDIS)('RedisEngine when Redis goes away', () => {
  const server = new RedisServer();
  beforeAll(() => server.start(), 20_000);
  afterAll(() => server.remove());

  it('a read blocked when redis-server is killed fails saying the connection was lost', async () => {
    const b = new RedisEngine({ url: server.url, host: 'web-b', prefix: 'fg:', blockMs: 10_000 });
    try {
      const start = await b.pull(Date.now());
      const waiting = b.pull(Date.now(), start.cursor).then(
        () => undefined,
        (e: Error) => e,
      );
      await new Promise((r) => setTimeout(r, 100));
      await server.stop(true);
      const error = await waiting;
      expect(error?.message).toMatch(
        new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${server.port} is not reachable \\(the connection was lost`),
      );
      expect(error?.message).not.toContain('maxRetriesPerRequest');
    } finally {
      await b.close();
    }
  });
});

describe.skipIf(!HAS_REDIS)('RedisEngine over TLS (rediss://)', () => {
  // Made in beforeAll: a run that filters these tests out leaves no files behind.
  let files: ReturnType<typeof makeTlsFiles>;
  let other: ReturnType<typeof makeTlsFiles>;
  let server: RedisServer;
  const engines: RedisEngine[] = [];
  const engine = (host: string, tlsCa?: string) => {
    const e = new RedisEngine({
      url: server.url,
      host,
      prefix: 'fg:',
      blockMs: 200,
      ...(tlsCa !== undefined && { tlsCa }),
    });
    engines.push(e);
    return e;
  };
  beforeAll(async () => {
    files = makeTlsFiles();
    other = makeTlsFiles('another CA');
    server = new RedisServer(undefined, [], { tls: files });
    await server.start();
  }, 20_000);
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
  });
  afterAll(async () => {
    await server?.remove();
    files?.remove();
    other?.remove();
  });

  it('a ban pushed by A through TLS reaches B, with the CA given', async () => {
    const now = Date.now();
    const ca = readFileSync(files.ca, 'utf8');
    const [a, b] = [engine('web-a', ca), engine('web-b', ca)];
    const start = await b.pull(now);
    await a.push([{ target: '192.0.2.10', rule: 'syn', expiresAt: now + 60_000 }], [], now);
    const changes = await b.pull(now, start.cursor);
    expect(changes.added.map((d) => [d.value, d.host])).toEqual([['192.0.2.10', 'web-a']]);
  });

  it.each([
    ['another CA', () => readFileSync(other.ca, 'utf8')],
    ["Node's bundled CAs only", () => undefined],
  ])('with %s, fails saying the certificate is not trusted', async (_what, ca) => {
    const now = Date.now();
    const e = engine('web-c', ca());
    const error = await e.push([{ target: '192.0.2.11', rule: 'syn', expiresAt: now + 60_000 }], [], now).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(
      new RegExp(
        `^Redis at rediss://127\\.0\\.0\\.1:${server.port} is not reachable \\(TLS: the server's certificate is not trusted ` +
          '\\([^()]*certificate[^()]*\\); is fleet\\.tls_ca_file the CA that signed it\\?\\)$',
      ),
    );
  });
});

/**
 * A primary, its replica and one sentinel watching them (down after 1 s), plain or all TLS, for
 * the failover tests; `stop()` ends every process, also the ones a test killed already.
 */
async function sentinelFleet(tls?: TlsFiles) {
  const [primaryPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
  const primary = new RedisServer(primaryPort, [], { ...(tls && { tls }) });
  const replica = new RedisServer(replicaPort, ['--replicaof', '127.0.0.1', String(primaryPort)], {
    ...(tls && { tls }),
  });
  const sentinel = new RedisSentinel({ port: sentinelPort, name: 'fleetprimary', primaryPort, ...(tls && { tls }) });
  const admin = (port: number) =>
    new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      ...(tls && { tls: { ca: readFileSync(tls.ca, 'utf8') } }),
    });
  const stop = async () => {
    await Promise.all([sentinel.remove(), replica.remove(), primary.remove()]);
  };
  try {
    await primary.start();
    await replica.start();
    const onReplica = admin(replicaPort);
    try {
      await waitUntil('the replica in sync', async () =>
        /master_link_status:up/.test(await onReplica.info('replication')),
      );
    } finally {
      onReplica.disconnect();
    }
    await sentinel.start();
    const onSentinel = admin(sentinelPort);
    try {
      await waitUntil(
        'the sentinel knows the replica',
        async () => ((await onSentinel.call('SENTINEL', 'REPLICAS', 'fleetprimary')) as unknown[]).length === 1,
      );
    } finally {
      onSentinel.disconnect();
    }
  } catch (error) {
    await stop();
    throw error;
  }
  /** The port of the primary the sentinel names now. */
  const currentPrimary = async () => {
    const onSentinel = admin(sentinelPort);
    try {
      const [, port] = (await onSentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'fleetprimary')) as string[];
      return Number(port);
    } finally {
      onSentinel.disconnect();
    }
  };
  return { primary, replica, sentinel, stop, currentPrimary };
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${(last as Error).message})` : ''}`);
}

describe.skipIf(!HAS_REDIS).each([
  ['plain', false],
  ['TLS everywhere (rediss://)', true],
])('RedisEngine through Redis Sentinel, %s', (_what, withTls) => {
  let files: ReturnType<typeof makeTlsFiles> | undefined;
  beforeAll(() => {
    if (withTls) files = makeTlsFiles();
  });
  afterAll(() => files?.remove());

  it('follows the primary through a failover: a ban after it reaches B as one before it did', async () => {
    const fleet = await sentinelFleet(files);
    const engines: RedisEngine[] = [];
    const engine = (host: string) => {
      const e = new RedisEngine({
        url: `${withTls ? 'rediss' : 'redis'}://unused.invalid:6379`,
        host,
        prefix: 'fg:',
        blockMs: 200,
        sentinels: [{ host: '127.0.0.1', port: fleet.sentinel.port }],
        sentinelName: 'fleetprimary',
        ...(files && { tlsCa: readFileSync(files.ca, 'utf8') }),
      });
      engines.push(e);
      return e;
    };
    try {
      const now = Date.now();
      const [a, b] = [engine('web-a'), engine('web-b')];
      const start = await b.pull(now);
      await a.push([{ target: '192.0.2.20', rule: 'syn', expiresAt: now + 60_000 }], [], now);
      const before = await b.pull(now, start.cursor);
      expect(before.added.map((d) => d.value)).toEqual(['192.0.2.20']);

      // Replicated before the primary dies: the failover is to lose nothing here.
      await waitUntil('the ban on the replica', async () => {
        const onReplica = new Redis({
          port: fleet.replica.port,
          host: '127.0.0.1',
          ...(files && { tls: { ca: readFileSync(files.ca, 'utf8') } }),
        });
        try {
          return (await onReplica.exists('fg:ban:192.0.2.20')) === 1;
        } finally {
          onReplica.disconnect();
        }
      });
      await fleet.primary.stop(true);
      const killed = Date.now();
      // As the sync does: a failed push is retried, a failed pull too, from the same cursor.
      let pushedAt = 0;
      let lastError = '';
      const errors = new Set<string>();
      while (Date.now() - killed < 20_000) {
        try {
          await a.push([{ target: '192.0.2.21', rule: 'syn', expiresAt: now + 60_000 }], [], Date.now());
          pushedAt = Date.now();
          break;
        } catch (error) {
          lastError = (error as Error).message;
          errors.add(lastError.replace(/\d+/g, 'N'));
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      expect(pushedAt, `no push went through after the failover; last error: ${lastError}`).toBeGreaterThan(0);
      // What the primary's absence looks like, never that the sentinels (which answered) were unreachable.
      for (const message of errors)
        expect(message).toMatch(
          /^Redis at primary fleetprimary \(sentinels N\.N\.N\.N:N\) is not reachable \((connect ECONNREFUSED N\.N\.N\.N:N|the connection was lost.*)\)$/,
        );
      expect(await fleet.currentPrimary()).toBe(fleet.replica.port);
      let cursor = before.cursor;
      const seen: string[] = [];
      while (!seen.includes('192.0.2.21') && Date.now() - killed < 25_000) {
        try {
          const changes = await b.pull(Date.now(), cursor);
          seen.push(...changes.added.map((d) => d.value));
          cursor = changes.cursor;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      expect(seen).toEqual(['192.0.2.21']);
      console.log(`redis sentinel failover (${_what}): A's push went through ${pushedAt - killed} ms after kill -9`);
    } finally {
      for (const e of engines) await e.close();
      await fleet.stop();
    }
  }, 30_000);
});
