// The Prometheus metrics against the real kernel: a real Prometheus server, started in the lab's
// server namespace with its own configuration and storage, scrapes `floodgate run` there every
// second during a SYN flood, and its HTTP API (/api/v1/query) must show the ban and the scan
// figures; `floodgate status --json` and /metrics agree; promtool accepts the live exposition;
// an address the metrics server cannot bind stops the start before the firewall is touched.
import { type ChildProcess, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Daemon,
  INTERVAL_MS,
  type Lab,
  SKIP_REASON,
  floodgate,
  floodgateRule,
  inputRules,
  range4,
  rule,
  sleep,
  tempDir,
  useLab,
  waitFor,
  writePolicy,
} from './support.js';

const ATTACKER = '198.51.100.66';
const METRICS = '127.0.0.1:19464';
const PROMETHEUS = '127.0.0.1:19090';

const havePrometheus =
  spawnSync('prometheus', ['--version']).status === 0 && spawnSync('promtool', ['--version']).status === 0;
if (!havePrometheus)
  console.warn(
    '\n*** metrics e2e SKIPPED: prometheus and promtool are not installed (apt-get install prometheus) ***\n',
  );

/** GET `url` from inside the server namespace (where the daemon and Prometheus listen on loopback). */
async function httpGet(lab: Lab, url: string): Promise<string> {
  const script =
    'fetch(process.argv[1]).then(async (r) => { process.stdout.write(await r.text()); if (!r.ok) process.exitCode = 1; }, (e) => { console.error(String(e.cause ?? e)); process.exitCode = 2; })';
  const r = await lab.execServer([process.execPath, '-e', script, url], { timeoutMs: 10_000 });
  if (r.exitCode !== 0)
    throw new Error(`GET ${url} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** One instant query through Prometheus' HTTP API: the samples' values by their labels. */
async function query(lab: Lab, expr: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const body = JSON.parse(
    await httpGet(lab, `http://${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(expr)}`),
  ) as {
    status: string;
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  if (body.status !== 'success') throw new Error(`query ${expr}: ${JSON.stringify(body)}`);
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/** Starts Prometheus in the server namespace, scraping the daemon every second. */
function startPrometheus(lab: Lab, dir: string): ChildProcess {
  const config = join(dir, 'prometheus.yml');
  mkdirSync(join(dir, 'tsdb'));
  writeFileSync(
    config,
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: floodgate\n    static_configs:\n      - targets: ['${METRICS}']\n`,
  );
  const child = lab.spawnServer([
    'prometheus',
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(dir, 'tsdb')}`,
    `--web.listen-address=${PROMETHEUS}`,
    '--log.level=warn',
  ]);
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + String(chunk)).slice(-4000);
  });
  child.stdout?.resume();
  (child as ChildProcess & { log: () => string }).log = () => log;
  return child;
}

async function stopPrometheus(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = sleep(10_000).then(() => 'late' as const);
  if ((await Promise.race([exited, timer])) === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
}

/** The value of one sample of an exposition (labels in the exposition's order), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe.skipIf(SKIP_REASON !== null || !havePrometheus)('Prometheus metrics', () => {
  const shared = useLab();

  it('a real Prometheus scrapes the ban and the scan figures of a SYN flood; status --json agrees; promtool accepts them', async () => {
    const { lab } = shared;
    const dir = tempDir('metrics');
    const stateDir = `${dir}/state`;
    const policy = writePolicy(dir, (p) => {
      rule(p, 'syn-flood').threshold = 20;
      // The half-open sockets stay after the ban, so every scrape sees them.
      p.ban = { ...p.ban, kill_connections: false };
      p.metrics = { listen: METRICS };
    });
    const daemon = await Daemon.start(lab, { policy, stateDir });
    expect(daemon.events.find((e) => e.event === 'metrics')).toMatchObject({ listen: METRICS });
    const prometheus = startPrometheus(lab, dir);
    try {
      await waitFor(
        'Prometheus to scrape floodgate (up == 1)',
        async () => (await query(lab, 'up{job="floodgate"}').catch(() => []))[0]?.value === 1,
        {
          timeoutMs: 20_000,
          intervalMs: 500,
          explain: () => `prometheus log: ${(prometheus as ChildProcess & { log: () => string }).log()}`,
        },
      );

      await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80, exact: false });
      await waitFor(
        'the floodgate rule for the attacker',
        async () => (await inputRules(lab, 4)).includes(floodgateRule(`${ATTACKER}/32`)),
        { timeoutMs: 2 * INTERVAL_MS + 3000 },
      );

      // What Prometheus stored, through its query API.
      let seen = '';
      await waitFor(
        'the ban and the scan figures in Prometheus',
        async () => {
          const [active, bans, scans, synRecv, refused] = await Promise.all([
            query(lab, 'floodgate_bans_active'),
            query(lab, 'floodgate_bans_total{rule="syn-flood"}'),
            query(lab, 'floodgate_scan_duration_seconds_count'),
            query(lab, 'floodgate_sockets{state="SYN_RECV"}'),
            query(lab, 'floodgate_bans_refused_total'),
          ]);
          seen = JSON.stringify({ active, bans, scans, synRecv, refused });
          return (
            active[0]?.value === 1 &&
            bans[0]?.value === 1 &&
            (scans[0]?.value ?? 0) >= 3 &&
            (synRecv[0]?.value ?? 0) >= 20
          );
        },
        { timeoutMs: 15_000, intervalMs: 500, explain: () => `seen: ${seen}` },
      );
      const [active] = await query(lab, 'floodgate_bans_active');
      expect(active!.metric).toMatchObject({ backend: 'iptables', mode: 'enforce', job: 'floodgate' });
      const [made] = await query(lab, 'floodgate_bans_total{rule="syn-flood"}');
      expect(made!.metric).toMatchObject({ origin: 'detector' });
      const durations = await query(lab, 'floodgate_scan_duration_seconds_sum / floodgate_scan_duration_seconds_count');
      expect(durations[0]!.value).toBeGreaterThan(0);
      expect(durations[0]!.value).toBeLessThan(1);
      expect((await query(lab, 'floodgate_sockets{state="LISTEN"}'))[0]!.value).toBeGreaterThan(0);
      expect((await query(lab, 'floodgate_queue_depth'))[0]!.value).toBe(0);
      expect((await query(lab, 'floodgate_attack'))[0]!.value).toBe(0);
      expect(await query(lab, 'floodgate_build_info')).toHaveLength(1);
      expect((await query(lab, 'process_resident_memory_bytes'))[0]!.value).toBeGreaterThan(0);

      // status --json and /metrics, read at the same time: when both come from the same scan (the
      // same last-scan time), they must agree.
      let compared = false;
      for (let attempt = 0; attempt < 20 && !compared; attempt++) {
        const [text, after] = await Promise.all([
          httpGet(lab, `http://${METRICS}/metrics`),
          floodgate(lab, ['status', '--json', '--state-dir', stateDir]),
        ]);
        const last = JSON.parse(after.stdout) as {
          active: number;
          queued: number;
          refused: number;
          lastScan: { at: string; sockets: number };
        };
        if (sample(text, 'floodgate_last_scan_timestamp_seconds') !== Date.parse(last.lastScan.at) / 1000) continue; // a scan ran in between
        compared = true;
        expect(sample(text, 'floodgate_bans_active{backend="iptables",mode="enforce"}')).toBe(last.active);
        expect(sample(text, 'floodgate_queue_depth')).toBe(last.queued);
        const sockets = [...text.matchAll(/^floodgate_sockets\{state="[A-Z_0-9]+"\} (\d+)$/gm)].reduce(
          (sum, m) => sum + Number(m[1]),
          0,
        );
        expect(sockets).toBe(last.lastScan.sockets);
        const refusals = [
          ...text.matchAll(/^floodgate_bans_refused_total\{reason="(?:max_active|set_full)"\} (\d+)$/gm),
        ].reduce((sum, m) => sum + Number(m[1]), 0);
        expect(refusals).toBe(last.refused);

        // promtool lints the live exposition too.
        const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
        expect(lint.stdout + lint.stderr).toBe('');
        expect(lint.status).toBe(0);
      }
      expect(compared).toBe(true);

      // A stop is not held up by the scraper's open connection, and the port is freed.
      expect(await daemon.stop('SIGTERM', 8000)).toEqual({ code: 0, signal: null });
      expect(daemon.events.at(-1)).toMatchObject({ event: 'stopped' });
      await expect(httpGet(lab, `http://${METRICS}/metrics`)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await stopPrometheus(prometheus);
    }
  });

  it('an address the metrics server cannot bind stops the start with file, key and address, before the firewall is touched', async () => {
    const { lab } = shared;
    const dir = tempDir('metrics-bind');
    // 198.51.100.1 is routed through the attacker, but the server has no such address.
    const policy = writePolicy(dir, (p) => {
      p.metrics = { listen: '198.51.100.1:9464' };
    });
    const r = await floodgate(lab, [
      'run',
      '--enforce',
      '--policy',
      policy,
      '--state-dir',
      `${dir}/state`,
      '--interval',
      '1s',
    ]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(
      `${policy}: metrics.listen: cannot listen on 198.51.100.1:9464: this host has no such address (EADDRNOTAVAIL)`,
    );
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect((await inputRules(lab, 4)).filter((line) => line.includes('floodgate'))).toEqual([]);
  });
});

describe.skipIf(SKIP_REASON !== null)('metrics of a spoofed-style SYN flood (SYN cookies on)', () => {
  const shared = useLab({ syncookies: true });

  it('floodgate_attack is 1 during a flood with nothing to ban, and the kernel SYN-cookie counter rises', async () => {
    const { lab } = shared;
    const dir = tempDir('metrics-attack');
    const policy = writePolicy(dir, (p) => {
      p.flood_signal = { syncookies_per_second: 20 };
      p.metrics = { listen: METRICS };
    });
    await Daemon.start(lab, { policy, stateDir: `${dir}/state` });
    await sleep(INTERVAL_MS + 200);
    const quiet = await httpGet(lab, `http://${METRICS}/metrics`);
    expect(sample(quiet, 'floodgate_attack')).toBe(0);
    const cookiesBefore = sample(quiet, 'floodgate_kernel_syncookies_sent_total') ?? NaN;

    await lab.listen({ host: '0.0.0.0', port: 8080, backlog: 64 });
    const flood = lab.synFlood({
      sources: range4('203.0.113.', 1, 200),
      perSource: 1,
      port: 8080,
      exact: false,
      timeoutMs: 5000,
    });
    let last = '';
    await waitFor(
      'floodgate_attack 1 in /metrics',
      async () => {
        last = await httpGet(lab, `http://${METRICS}/metrics`);
        return sample(last, 'floodgate_attack') === 1;
      },
      {
        timeoutMs: 4 * INTERVAL_MS + 4000,
        intervalMs: 300,
        explain: () =>
          last
            .split('\n')
            .filter((l) => /^floodgate_(attack|kernel_syncookies|sockets\{state="SYN_RECV"|bans_total)/.test(l))
            .join('; '),
      },
    );
    expect(sample(last, 'floodgate_kernel_syncookies_sent_total')).toBeGreaterThan(cookiesBefore);
    // Nothing to ban: every rule's counter is there, at 0.
    const bans = [...last.matchAll(/^floodgate_bans_total\{rule="([^"]+)"[^}]*\} (\d+)$/gm)].map((m) => [
      m[1],
      Number(m[2]),
    ]);
    expect(bans).toEqual(
      expect.arrayContaining([
        ['syn-flood', 0],
        ['manual', 0],
      ]),
    );
    expect(bans.every(([, n]) => n === 0)).toBe(true);
    await flood;
  });
});
