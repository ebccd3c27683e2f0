// Fleet bans through Redis over TLS (rediss:// with the CA from fleet.tls_ca_file) and through a
// Redis Sentinel failover: throw-away redis-servers, a sentinel and a CA made with openssl, and
// floodgate daemons, all in the lab's server namespace, each on ports of its own.
//
// Safety: redis-server, the sentinel, redis-cli, floodgate and iptables run in the lab's server
// namespace only; every one is stopped and its directory removed after each test.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisSentinel, RedisServer, freePort } from '../support/redis-server.js';
import { makeTlsFiles } from '../support/tls-files.js';
import {
  Daemon,
  type LogEvent,
  SKIP_REASON,
  STACK_TRACE,
  floodgate,
  floodgateOk,
  instanceRules,
  instanceTag,
  listBans,
  tempDir,
  useLab,
  waitFor,
  writePolicy,
} from './support.js';

const HAS_REDIS = existsSync('/usr/bin/redis-server') && existsSync('/usr/bin/redis-cli');

interface FleetStatus {
  connected: boolean;
  outbox: number;
  lastError: { at: string; message: string } | null;
}

describe.skipIf(SKIP_REASON !== null || !HAS_REDIS)('fleet bans through Redis over TLS and Sentinel', () => {
  const shared = useLab();
  /** What each test started, stopped and removed after it (also when it failed). */
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });
  const inLab = { spawn: (argv: string[]) => shared.lab.spawnServer(argv) };

  const cli = async (port: number, args: string[], tlsCa?: string) => {
    const r = await shared.lab.execServer(
      ['redis-cli', ...(tlsCa ? ['--tls', '--cacert', tlsCa] : []), '-p', String(port), ...args],
      { timeoutMs: 10_000 },
    );
    if (r.exitCode !== 0) throw new Error(`redis-cli ${args.join(' ')} exited ${r.exitCode}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  };

  const start = async (host: string, fleet: Record<string, unknown>, firstPull = true) => {
    const dir = tempDir(`fleet-${host}`);
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      p.ban = { ...p.ban, kill_connections: false };
      p.fleet = { engine: 'redis', host, ...fleet };
    });
    const daemon = await Daemon.start(shared.lab, { policy, stateDir, enforce: true });
    if (firstPull)
      await daemon.waitForEvent(
        'the first pull',
        (e) => e.event === 'fleet-sync' && e.during === 'start-up pull',
        10_000,
      );
    return { daemon, stateDir, policy };
  };
  const banEvent = (target: string, source?: 'fleet') => (e: LogEvent) =>
    e.event === 'ban' && e.target === target && (source === undefined ? e.source === undefined : e.source === source);
  const hasRule = async (stateDir: string, target: string) =>
    (await instanceRules(shared.lab)).some(
      (line) => line.includes(`-s ${target}/32 `) && line.includes(instanceTag(stateDir)),
    );
  const fleetStatus = async (stateDir: string): Promise<FleetStatus> => {
    const r = await floodgateOk(shared.lab, ['status', '--json', '--state-dir', stateDir]);
    return (JSON.parse(r.stdout) as { fleet: FleetStatus }).fleet;
  };

  it('a ban on A reaches B through rediss:// with the CA from tls_ca_file; with another CA, C says so and enforces on', async () => {
    const files = makeTlsFiles();
    cleanups.push(() => files.remove());
    const other = makeTlsFiles('another CA');
    cleanups.push(() => other.remove());
    const server = new RedisServer(await freePort(), [], { tls: files, ...inLab });
    cleanups.push(() => server.remove());
    await server.start();

    const fleet = { url: server.url, tls_ca_file: files.ca };
    const a = await start('web-a', fleet);
    const b = await start('web-b', fleet);
    await floodgateOk(shared.lab, ['ban', '198.51.100.60', '--ttl', '10m', '--state-dir', a.stateDir]);
    const pulled = await b.daemon.waitForEvent('B gets the ban', banEvent('198.51.100.60', 'fleet'), 5000);
    expect(pulled.fleetHost).toBe('web-a');
    await waitFor('B’s rule', () => hasRule(b.stateDir, '198.51.100.60'), { timeoutMs: 3000, intervalMs: 100 });
    // It went through the TLS port: the key is there for a TLS client (the server has no plain port).
    expect(await cli(server.port, ['EXISTS', 'fg:ban:198.51.100.60'], files.ca)).toBe('1');

    // C trusts another CA: it starts, says why it cannot reach Redis, and enforces its own bans.
    const c = await start('web-c', { url: server.url, tls_ca_file: other.ca }, false);
    const refused = await c.daemon.waitForEvent(
      'C’s pull failure',
      (e) => e.event === 'error' && e.during === 'fleet-pull',
      10_000,
    );
    const why =
      /^Redis at rediss:\/\/127\.0\.0\.1:\d+ is not reachable \(TLS: the server's certificate is not trusted \([^()]*certificate[^()]*\); is fleet\.tls_ca_file the CA that signed it\?\)$/;
    expect(refused.message).toMatch(why);
    await floodgateOk(shared.lab, ['ban', '198.51.100.61', '--ttl', '10m', '--state-dir', c.stateDir]);
    await waitFor('C enforces its own ban', () => hasRule(c.stateDir, '198.51.100.61'), {
      timeoutMs: 3000,
      intervalMs: 100,
    });
    await waitFor(
      'C’s status: not connected, the TLS error, the ban waiting in the outbox',
      async () => {
        const s = await fleetStatus(c.stateDir);
        return !s.connected && s.outbox === 1 && why.test(s.lastError?.message ?? '');
      },
      { timeoutMs: 5000, intervalMs: 200 },
    );
    const text = await floodgateOk(shared.lab, ['status', '--state-dir', c.stateDir]);
    expect(text.stdout).toMatch(/fleet: +redis as web-c, NOT CONNECTED;.*TLS: the server's certificate is not trusted/);
    expect(`${c.daemon.stdout}\n${c.daemon.stderr}`).not.toMatch(STACK_TRACE);
    expect(await cli(server.port, ['EXISTS', 'fg:ban:198.51.100.61'], files.ca)).toBe('0');
  }, 30_000);

  it('policy check refuses tls_ca_file with redis://, and a start with an unreadable CA file names it', async () => {
    const dir = tempDir('fleet-tls-policy');
    const plain = writePolicy(dir, (p) => {
      p.fleet = { engine: 'redis', url: 'redis://127.0.0.1:6379', tls_ca_file: '/etc/floodgate/redis-ca.crt' };
    });
    const check = await floodgate(shared.lab, ['policy', 'check', plain]);
    expect(check.exitCode).not.toBe(0);
    expect(check.stderr).toMatch(
      /policy\.yaml:\d+ fleet\.tls_ca_file: expected tls_ca_file only with a rediss:\/\/ URL \(TLS\), got url "redis:\/\/127\.0\.0\.1:6379"/,
    );
    expect(check.stderr).not.toMatch(STACK_TRACE);

    const missing = writePolicy(
      dir,
      (p) => {
        p.fleet = { engine: 'redis', url: 'rediss://127.0.0.1:6379', tls_ca_file: `${dir}/no-such-ca.crt` };
      },
      'missing.yaml',
    );
    expect((await floodgate(shared.lab, ['policy', 'check', missing])).exitCode).toBe(0);
    const daemon = Daemon.spawn(shared.lab, { policy: missing, stateDir: `${dir}/state` });
    const exit = await daemon.exited;
    expect(exit.code).not.toBe(0);
    expect(daemon.stderr).toContain(`fleet.tls_ca_file: cannot read ${dir}/no-such-ca.crt (ENOENT)`);
    expect(daemon.stderr).not.toMatch(STACK_TRACE);
  }, 30_000);

  it('through a Sentinel: kill -9 of the primary, failover to the replica, a ban on A still reaches B; status shows both', async () => {
    const [primaryPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
    const primary = new RedisServer(primaryPort, [], inLab);
    cleanups.push(() => primary.remove());
    const replica = new RedisServer(replicaPort, ['--replicaof', '127.0.0.1', String(primaryPort)], inLab);
    cleanups.push(() => replica.remove());
    const sentinel = new RedisSentinel({ port: sentinelPort, name: 'fleetprimary', primaryPort, ...inLab });
    cleanups.push(() => sentinel.remove());
    await primary.start();
    await replica.start();
    await waitFor(
      'the replica in sync',
      async () => (await cli(replicaPort, ['INFO', 'replication'])).includes('master_link_status:up'),
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    await sentinel.start();
    await waitFor(
      'the sentinel knows the replica',
      async () => (await cli(sentinelPort, ['SENTINEL', 'REPLICAS', 'fleetprimary'])).includes(String(replicaPort)),
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    const primaryNamed = async () =>
      (await cli(sentinelPort, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'fleetprimary'])).split('\n')[1];

    // The URL's host is unused with sentinels: this one could not be reached.
    const fleet = {
      url: 'redis://192.0.2.250:6379',
      sentinels: [`127.0.0.1:${sentinelPort}`],
      sentinel_name: 'fleetprimary',
    };
    const a = await start('web-a', fleet);
    const b = await start('web-b', fleet);
    await floodgateOk(shared.lab, ['ban', '198.51.100.70', '--ttl', '10m', '--state-dir', a.stateDir]);
    await b.daemon.waitForEvent('B gets the first ban', banEvent('198.51.100.70', 'fleet'), 5000);
    expect(await cli(primaryPort, ['EXISTS', 'fg:ban:198.51.100.70'])).toBe('1');
    await waitFor(
      'the first ban on the replica',
      async () => (await cli(replicaPort, ['EXISTS', 'fg:ban:198.51.100.70'])) === '1',
      {
        timeoutMs: 5000,
        intervalMs: 100,
      },
    );

    await primary.stop(true);
    const killed = Date.now();
    await floodgateOk(shared.lab, ['ban', '198.51.100.71', '--ttl', '10m', '--state-dir', a.stateDir]);
    await waitFor('A enforces it meanwhile', () => hasRule(a.stateDir, '198.51.100.71'), {
      timeoutMs: 3000,
      intervalMs: 100,
    });
    // The outage as status shows it, on both hosts, while the sentinel has not failed over yet.
    const [outageA, outageB] = await Promise.all(
      [a.stateDir, b.stateDir].map(async (stateDir) => {
        let seen: FleetStatus | undefined;
        await waitFor(
          'status: not connected, with the error',
          async () => {
            seen = await fleetStatus(stateDir);
            return !seen.connected && seen.lastError !== null;
          },
          { timeoutMs: 5000, intervalMs: 150 },
        );
        return seen!;
      }),
    );
    expect(outageA!.lastError!.message).toMatch(
      /^Redis at primary fleetprimary \(sentinels 127\.0\.0\.1:\d+\) is not reachable|closed/i,
    );
    // Said as what it is, on A (its push and its read) and on B (its read cut off by the kill).
    for (const outage of [outageA, outageB])
      expect(outage!.lastError!.message).toMatch(
        /^Redis at primary fleetprimary \(sentinels 127\.0\.0\.1:\d+\) is not reachable \((connect ECONNREFUSED 127\.0\.0\.1:\d+|the connection was lost.*)\)$/,
      );
    expect(outageA!.outbox).toBe(1);

    const pulled = await b.daemon.waitForEvent(
      'B gets the ban made during the failover',
      banEvent('198.51.100.71', 'fleet'),
      20_000,
    );
    const recovered = Date.parse(pulled.time as string) - killed;
    console.log(`redis sentinel failover: the ban made at the kill reached B ${recovered} ms later`);
    expect(await primaryNamed()).toBe(String(replicaPort));
    expect(await cli(replicaPort, ['EXISTS', 'fg:ban:198.51.100.71'])).toBe('1');
    await waitFor('B’s rule', () => hasRule(b.stateDir, '198.51.100.71'), { timeoutMs: 3000, intervalMs: 100 });

    // And after it, a ban goes straight through, and status says connected, the outage's error kept.
    await floodgateOk(shared.lab, ['ban', '198.51.100.72', '--ttl', '10m', '--state-dir', a.stateDir]);
    await b.daemon.waitForEvent('B gets a ban made after the failover', banEvent('198.51.100.72', 'fleet'), 5000);
    for (const host of [a, b]) {
      const s = await fleetStatus(host.stateDir);
      expect(s).toMatchObject({ connected: true, outbox: 0 });
      expect(Date.parse(s.lastError!.at)).toBeGreaterThanOrEqual(killed - 1000);
    }
    expect((await listBans(shared.lab, b.stateDir)).map((x) => [x.target, x.source])).toEqual([
      ['198.51.100.70', 'fleet:web-a'],
      ['198.51.100.71', 'fleet:web-a'],
      ['198.51.100.72', 'fleet:web-a'],
    ]);
  }, 30_000);
});
