// The Prometheus metrics: the counters follow what the enforcer logs (bans by rule and origin,
// refusals and unbans by reason, reconcile repairs, firewall failures), the gauges read the store
// and the queue at scrape time, the exposition passes promtool, and the endpoint only answers
// GET /metrics on the address asked for.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BanStore } from '../../src/bans/ban-store.js';
import { reloadPolicy } from '../../src/daemon/reload-policy.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { ConfigError } from '../../src/errors.js';
import { tapEvents } from '../../src/log-events.js';
import { FloodgateMetrics } from '../../src/metrics/metrics.js';
import { type MetricsServer, serveMetrics } from '../../src/metrics/metrics-server.js';
import { buildAllowlist } from '../../src/net/allowlist.js';
import { parseCidr } from '../../src/net/ip.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { SocketTable } from '../../src/table/socket-table.js';
import { sample } from '../support/exposition.js';
import { FakeBackend } from '../support/fake-backend.js';
import { memoryLog } from '../support/memory-log.js';
import { RecordingRunner } from '../support/recording-runner.js';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const POLICY = parsePolicy(
  'rules: [{name: syn-flood, states: [SYN_RECV], threshold: 20}]\nallowlist: [192.0.2.1]\n',
  'p.yaml',
);
const COUNTERS = {
  SyncookiesSent: 1234,
  SyncookiesRecv: 5,
  SyncookiesFailed: 0,
  ListenOverflows: 7,
  ListenDrops: 8,
  TCPReqQFullDrop: 0,
  TCPReqQFullDoCookies: 42,
};

function setup(maxActive = 100) {
  const memory = memoryLog();
  const backend = new FakeBackend();
  const store = new BanStore(undefined, { ttl: POLICY.ban.ttl, maxTtl: POLICY.ban.max_ttl });
  const enforcer = new Enforcer({
    backend,
    store,
    log: memory.log,
    runner: new RecordingRunner(),
    protectedSet: buildAllowlist(POLICY.allowlist, []),
    rate: 1000,
    maxActive,
    killConnections: false,
    clock: () => T0,
  });
  const metrics = new FloodgateMetrics({ rules: ['syn-flood'] });
  tapEvents(memory.log, metrics.onEvent);
  metrics.attach({
    backend: backend.kind,
    mode: 'enforce',
    activeBans: () => store.size,
    queueDepth: () => enforcer.queue.size,
    oldestQueuedAt: () => enforcer.queue.oldestSince,
  });
  return { ...memory, backend, store, enforcer, metrics };
}

const ban = (enforcer: Enforcer, target: string, rule = 'syn-flood', now = T0) =>
  enforcer.ban({ target: parseCidr(target)!, rule, count: rule === 'manual' ? 0 : 30 }, now);

describe('FloodgateMetrics', () => {
  it('counts bans by rule and origin, refusals and unbans by reason, as the enforcer logs them', async () => {
    const { enforcer, metrics } = setup(3);
    ban(enforcer, '198.51.100.7');
    ban(enforcer, '198.51.100.8');
    ban(enforcer, '203.0.113.9', 'manual');
    ban(enforcer, '192.0.2.1'); // allowlisted
    ban(enforcer, '198.51.100.10'); // over max_active
    let text = await metrics.exposition();
    expect(sample(text, 'floodgate_bans_total{rule="syn-flood",origin="detector"}')).toBe(2);
    expect(sample(text, 'floodgate_bans_total{rule="manual",origin="manual"}')).toBe(1);
    expect(sample(text, 'floodgate_bans_refused_total{reason="protected"}')).toBe(1);
    expect(sample(text, 'floodgate_bans_refused_total{reason="max_active"}')).toBe(1);
    expect(sample(text, 'floodgate_bans_refused_total{reason="set_full"}')).toBe(0);
    // Read at scrape time: the store holds 3, and the queue has not committed them yet.
    expect(sample(text, 'floodgate_bans_active{backend="iptables",mode="enforce"}')).toBe(3);
    expect(sample(text, 'floodgate_queue_depth')).toBe(3);
    expect(sample(text, 'floodgate_queue_oldest_age_seconds')).toBeGreaterThanOrEqual(0);
    await enforcer.queue.drain();

    enforcer.unban(parseCidr('203.0.113.9')!, 0);
    enforcer.unban(parseCidr('203.0.113.99')!, 0); // no ban: removes a stray rule, lifts nothing
    enforcer.expire(T0 + POLICY.ban.ttl + 1);
    text = await metrics.exposition();
    expect(sample(text, 'floodgate_unbans_total{reason="manual"}')).toBe(1);
    expect(sample(text, 'floodgate_unbans_total{reason="expired"}')).toBe(2);
    expect(sample(text, 'floodgate_bans_active{backend="iptables",mode="enforce"}')).toBe(0);

    ban(enforcer, '198.51.100.20');
    ban(enforcer, '198.51.100.21');
    await enforcer.flush();
    text = await metrics.exposition();
    expect(sample(text, 'floodgate_unbans_total{reason="flush"}')).toBe(2);
    expect(sample(text, 'floodgate_queue_depth')).toBe(0);
    expect(sample(text, 'floodgate_queue_oldest_age_seconds')).toBe(0);
  });

  it('counts a ban a reload lifts by allowlisting it as an allowlist unban, not a manual one', async () => {
    const { enforcer, metrics, log } = setup();
    ban(enforcer, '198.51.100.7');
    const next = parsePolicy(
      'rules: [{name: syn-flood, states: [SYN_RECV], threshold: 20}]\nallowlist: [192.0.2.1, 198.51.100.7]\n',
      'p.yaml',
    );
    reloadPolicy({
      current: POLICY,
      mode: 'enforce',
      file: 'p.yaml',
      load: () => ({ policy: next, mode: 'enforce' }),
      enforcer,
      log,
      now: T0,
    });
    const text = await metrics.exposition();
    expect(sample(text, 'floodgate_unbans_total{reason="allowlist"}')).toBe(1);
    expect(sample(text, 'floodgate_unbans_total{reason="manual"}')).toBe(0);
    expect(sample(text, 'floodgate_policy_reloads_total{result="applied"}')).toBe(1);
  });

  it('counts firewall failures by backend, set-full refusals and reconcile repairs', async () => {
    const { enforcer, metrics, backend } = setup();
    backend.throwOnNextCommit = new Error('iptables vanished');
    ban(enforcer, '198.51.100.7');
    await enforcer.queue.drain();
    backend.rules.push('198.51.100.99'); // a rule no ban explains
    await enforcer.reconcile();
    const text = await metrics.exposition();
    expect(sample(text, 'floodgate_firewall_failures_total{backend="iptables",operation="commit"}')).toBe(1);
    expect(sample(text, 'floodgate_reconcile_repairs_total{kind="missing"}')).toBe(1);
    expect(sample(text, 'floodgate_reconcile_repairs_total{kind="extra"}')).toBe(1);
    metrics.onEvent({
      level: 'error',
      msg: '',
      fields: { event: 'refused', target: '198.51.100.8', why: 'firewall-full', backend: 'ipset' },
    });
    metrics.onEvent({ level: 'info', msg: '', fields: { event: 'reload-hook', command: 'x' } });
    metrics.onEvent({
      level: 'error',
      msg: '',
      fields: { event: 'error', during: 'reload-hook', command: 'x', exitCode: 1 },
    });
    metrics.onEvent({
      level: 'info',
      msg: '',
      fields: { event: 'ban', target: '198.51.100.9', rule: 'crowdsec', origin: 'fleet' },
    });
    const after = await metrics.exposition();
    expect(sample(after, 'floodgate_bans_refused_total{reason="set_full"}')).toBe(1);
    expect(sample(after, 'floodgate_reload_hook_runs_total')).toBe(2);
    expect(sample(after, 'floodgate_reload_hook_failures_total')).toBe(1);
    expect(sample(after, 'floodgate_bans_total{rule="crowdsec",origin="fleet"}')).toBe(1);
  });

  it('counts no new ban for a fleet decision that only lengthens a local ban, and counts fleet lifts', async () => {
    const { metrics } = setup();
    const before = await metrics.exposition();
    const made = sample(before, 'floodgate_bans_total{rule="syn-flood",origin="fleet"}') ?? 0;
    metrics.onEvent({
      level: 'info',
      msg: '',
      fields: { event: 'ban', target: '198.51.100.9', rule: 'syn-flood', origin: 'fleet', extended: true },
    });
    metrics.onEvent({
      level: 'info',
      msg: '',
      fields: { event: 'unban', target: '198.51.100.9', source: 'fleet', origin: 'floodgate' },
    });
    const after = await metrics.exposition();
    expect(sample(after, 'floodgate_bans_total{rule="syn-flood",origin="fleet"}') ?? 0).toBe(made);
    expect(sample(after, 'floodgate_unbans_total{reason="fleet"}')).toBe(1);
    expect(sample(after, 'floodgate_unbans_total{reason="manual"}')).toBe(0);
  });

  it('sets the scan figures: duration histogram, sockets by state, kernel counters, the attack signal', async () => {
    const { metrics } = setup();
    const table = SocketTable.from([
      { proto: 'tcp', state: 'SYN_RECV', localPort: 80, remote: '198.51.100.7', remotePort: 1000 },
      { proto: 'tcp', state: 'SYN_RECV', localPort: 80, remote: '198.51.100.8', remotePort: 1001 },
      { proto: 'tcp', state: 'ESTABLISHED', localPort: 22, remote: '203.0.113.1', remotePort: 1002 },
      { proto: 'tcp', state: 'LISTEN', localPort: 80, remote: '0.0.0.0', remotePort: 0 },
    ]);
    metrics.scanned({ at: T0, durationMs: 12, table, counters: COUNTERS, attack: true });
    let text = await metrics.exposition();
    expect(sample(text, 'floodgate_scan_duration_seconds_count')).toBe(1);
    expect(sample(text, 'floodgate_scan_duration_seconds_sum')).toBeCloseTo(0.012);
    expect(sample(text, 'floodgate_scan_duration_seconds_bucket{le="0.025"}')).toBe(1);
    expect(sample(text, 'floodgate_scan_duration_seconds_bucket{le="0.01"}')).toBe(0);
    expect(sample(text, 'floodgate_sockets{state="SYN_RECV"}')).toBe(2);
    expect(sample(text, 'floodgate_sockets{state="ESTABLISHED"}')).toBe(1);
    expect(sample(text, 'floodgate_sockets{state="LISTEN"}')).toBe(1);
    expect(sample(text, 'floodgate_sockets{state="TIME_WAIT"}')).toBe(0);
    expect(sample(text, 'floodgate_kernel_syncookies_sent_total')).toBe(1234);
    expect(sample(text, 'floodgate_kernel_reqq_full_do_cookies_total')).toBe(42);
    expect(sample(text, 'floodgate_attack')).toBe(1);
    expect(sample(text, 'floodgate_last_scan_timestamp_seconds')).toBe(T0 / 1000);
    expect(text).toMatch(/^# TYPE floodgate_kernel_syncookies_sent_total counter$/m);
    metrics.scanned({
      at: T0 + 1000,
      durationMs: 3,
      table: new SocketTable(),
      counters: { ...COUNTERS, SyncookiesSent: 1300 },
      attack: false,
    });
    text = await metrics.exposition();
    expect(sample(text, 'floodgate_attack')).toBe(0);
    expect(sample(text, 'floodgate_sockets{state="SYN_RECV"}')).toBe(0);
    expect(sample(text, 'floodgate_kernel_syncookies_sent_total')).toBe(1300);
    expect(sample(text, 'floodgate_scan_duration_seconds_count')).toBe(2);
  });

  it('has build info and Node.js default process metrics, with Prometheus types', async () => {
    const { metrics } = setup();
    const text = await metrics.exposition();
    expect(text).toMatch(/^floodgate_build_info\{version="\d+\.\d+\.\d+[^"]*",nodejs="[\d.]+"\} 1$/m);
    expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
    expect(text).toMatch(/^# TYPE nodejs_heap_size_used_bytes gauge$/m);
    for (const [name, type] of [
      ['floodgate_bans_active', 'gauge'],
      ['floodgate_bans_total', 'counter'],
      ['floodgate_bans_refused_total', 'counter'],
      ['floodgate_unbans_total', 'counter'],
      ['floodgate_scan_duration_seconds', 'histogram'],
      ['floodgate_sockets', 'gauge'],
      ['floodgate_queue_depth', 'gauge'],
      ['floodgate_attack', 'gauge'],
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
    }
  });

  const promtool = spawnSync('promtool', ['--version']).status === 0;
  it.skipIf(!promtool)('passes promtool check metrics (skipped without the prometheus package)', async () => {
    const { enforcer, metrics } = setup();
    ban(enforcer, '198.51.100.7');
    metrics.scanned({ at: T0, durationMs: 12, table: new SocketTable(), counters: COUNTERS, attack: false });
    const text = await metrics.exposition();
    const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});

describe('serveMetrics', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  const freePort = () =>
    new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });

  it('serves GET /metrics in the text format, and nothing else', async () => {
    const port = await freePort();
    server = await serveMetrics(new FloodgateMetrics(), `127.0.0.1:${port}`, 'p.yaml');
    expect(server.address).toBe(`127.0.0.1:${port}`);
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await response.text()).toContain('floodgate_attack 0');
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('listens on IPv6 loopback too', async () => {
    const port = await freePort();
    server = await serveMetrics(new FloodgateMetrics(), `[::1]:${port}`, 'p.yaml');
    expect(server.address).toBe(`[::1]:${port}`);
    expect((await fetch(`http://[::1]:${port}/metrics`)).status).toBe(200);
  });

  it('fails to bind a taken port with the file, the key and the address', async () => {
    const port = await freePort();
    server = await serveMetrics(new FloodgateMetrics(), `127.0.0.1:${port}`, 'p.yaml');
    const second = serveMetrics(new FloodgateMetrics(), `127.0.0.1:${port}`, '/etc/floodgate/policy.yaml');
    await expect(second).rejects.toThrow(ConfigError);
    await expect(second).rejects.toThrow(
      `/etc/floodgate/policy.yaml: metrics.listen: cannot listen on 127.0.0.1:${port}: the address is in use (another floodgate or exporter?) (EADDRINUSE)`,
    );
    await expect(serveMetrics(new FloodgateMetrics(), '198.51.100.7:9464', 'p.yaml')).rejects.toThrow(
      'p.yaml: metrics.listen: cannot listen on 198.51.100.7:9464: this host has no such address (EADDRNOTAVAIL)',
    );
  });
});

describe('the metrics policy key', () => {
  const rules = 'rules: [{name: r, threshold: 5}]\n';

  it('is absent unless asked for, and takes IPv4 and bracketed IPv6 addresses with a port', () => {
    expect(parsePolicy(rules, 'p.yaml').metrics).toBeUndefined();
    expect(parsePolicy(`${rules}metrics: {listen: "127.0.0.1:9464"}\n`, 'p.yaml').metrics).toEqual({
      listen: '127.0.0.1:9464',
    });
    expect(parsePolicy(`${rules}metrics: {listen: "[::1]:9464"}\n`, 'p.yaml').metrics).toEqual({
      listen: '[::1]:9464',
    });
  });

  it.each(['localhost:9464', '127.0.0.1', '::1:9464', '[::1]:70000', '127.0.0.1:0', '10.0.0.0/8:9464', 9464])(
    'refuses listen %s, saying what it expected',
    (listen) => {
      expect(() => parsePolicy(`${rules}metrics: {listen: ${JSON.stringify(listen)}}\n`, 'p.yaml')).toThrow(
        /p\.yaml:2 metrics\.listen: expected an address and port like 127\.0\.0\.1:9464 or \[::1\]:9464, got/,
      );
    },
  );

  it('refuses unknown keys under metrics', () => {
    expect(() => parsePolicy(`${rules}metrics: {listen: "127.0.0.1:9464", port: 1}\n`, 'p.yaml')).toThrow(
      /metrics.*port/,
    );
  });

  it('is fixed until a restart: a reload that changes it is refused as a whole', () => {
    const { enforcer, log, named } = setup();
    const current = parsePolicy(`${rules}metrics: {listen: "127.0.0.1:9464"}\n`, 'p.yaml');
    const next = parsePolicy(`${rules}metrics: {listen: "127.0.0.1:9465"}\n`, 'p.yaml');
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
      needsRestart: ['metrics.listen 127.0.0.1:9464 -> 127.0.0.1:9465'],
    });
    const off = parsePolicy(rules, 'p.yaml');
    expect(
      reloadPolicy({
        current,
        mode: 'enforce',
        file: 'p.yaml',
        load: () => ({ policy: off, mode: 'enforce' }),
        enforcer,
        log,
      }),
    ).toBe(current);
    expect(named('reload')[1]).toMatchObject({
      applied: false,
      needsRestart: ['metrics.listen 127.0.0.1:9464 -> (none)'],
    });
  });
});
