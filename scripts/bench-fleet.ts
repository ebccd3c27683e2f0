// Times the fleet's 10k propagation for both engines side by side: two floodgate daemons, A and B,
// enforcing with ipset in a lab's server namespace, a throw-away redis-server and CrowdSec LAPI on
// that namespace's loopback; `floodgate ban --from-file` of 10,000 addresses on A, then the time
// from A's first ban to all 10,000 in B's ipset, with where it went (from both daemons' logs).
//
// usage (root): npx tsx scripts/bench-fleet.ts [--engine both|redis|crowdsec] [--runs 5] [--count 10000]
//                                              [--cpu-prof DIR]
//   --engine    which engines to time, interleaved run by run (default both; crowdsec needs Debian's
//               crowdsec package, redis its redis-server)
//   --runs      timed runs per engine, each with fresh daemons and state (default 5)
//   --count     addresses banned on A, 101..65536 (default 10000)
//   --cpu-prof  write each daemon's V8 CPU profile into DIR (node --cpu-prof), to open in Chrome's
//               DevTools: the daemons are stopped with SIGTERM so that they write it
// Needs the build (npx tsc -p .), iproute2, iptables and ipset. Everything runs in the lab's
// namespaces, removed at the end; addresses are from 198.18.0.0/15. Prints a markdown table on
// stdout, progress on stderr.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { type Stats, log, machineLine, markdownTable, ms, stats, usage } from './bench-harness.js';
import { type Lab, createLab } from './lab/lab.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/src/cli/main.cjs');

const { values: args } = parseArgs({
  options: {
    engine: { type: 'string', default: 'both' },
    runs: { type: 'string', default: '5' },
    count: { type: 'string', default: '10000' },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(usage(import.meta.url));
  process.exit(0);
}
const engines = args.engine === 'both' ? (['redis', 'crowdsec'] as const) : ([args.engine] as const);
for (const engine of engines)
  if (engine !== 'redis' && engine !== 'crowdsec')
    throw new Error(`--engine: expected both, redis or crowdsec, got ${JSON.stringify(engine)}`);
const RUNS = Number(args.runs);
const COUNT = Number(args.count);
// Over 100, A logs the list as one summary line (its time is where the measurement starts).
if (!(RUNS >= 1) || !(COUNT >= 101 && COUNT <= 65_536))
  throw new Error(`--runs must be >= 1 and --count 101..65536, got ${args.runs} and ${args.count}`);
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build floodgate first (npx tsc -p .)`);
const profDir = args['cpu-prof'] && path.resolve(args['cpu-prof']);
if (profDir) mkdirSync(profDir, { recursive: true });

type Event = Record<string, unknown> & { event?: string; time?: string };

class Daemon {
  readonly events: Event[] = [];
  private partial = '';
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      const lines = (this.partial + chunk).split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) {
        try {
          this.events.push(JSON.parse(line) as Event);
        } catch {
          // not a log line
        }
      }
    });
    child.stderr!.resume();
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  async waitFor(what: string, match: (e: Event) => boolean, timeoutMs = 15_000): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const at = (e: Event | undefined) => (e?.time === undefined ? Number.NaN : Date.parse(e.time));

async function must(lab: Lab, argv: string[], timeoutMs = 30_000): Promise<string> {
  const r = await lab.execServer(argv, { timeoutMs });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${r.exitCode}: ${r.stderr.trim()}`);
  return r.stdout;
}

interface Engine {
  readonly name: 'redis' | 'crowdsec';
  fleet(host: string): Record<string, unknown>;
  /** When the engine held the last of the bans (Redis: its last stream id's time). */
  stored?(): Promise<number>;
  /** Empties the engine between runs. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

async function startRedis(lab: Lab, dir: string): Promise<Engine> {
  const port = 19_000 + Math.floor(Math.random() * 1000);
  const cli = (...a: string[]) => must(lab, ['redis-cli', '-p', String(port), ...a]);
  await must(lab, [
    ...['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes'],
    ...['--save', '', '--daemonize', 'yes', '--pidfile', path.join(dir, 'pid'), '--logfile', path.join(dir, 'log')],
  ]);
  for (let i = 0; (await cli('PING').catch(() => '')).trim() !== 'PONG'; i++) {
    if (i > 200) throw new Error('redis-server did not answer');
    await sleep(50);
  }
  return {
    name: 'redis',
    fleet: (host) => ({ engine: 'redis', url: `redis://127.0.0.1:${port}`, host, resync: '60s' }),
    stored: async () => Number(/^(\d+)-/m.exec(await cli('XREVRANGE', 'fg:events', '+', '-', 'COUNT', '1'))?.[1]),
    reset: async () => void (await cli('FLUSHALL')),
    stop: async () => void (await cli('SHUTDOWN', 'NOSAVE').catch(() => '')),
  };
}

async function startLapi(lab: Lab, dir: string): Promise<Engine> {
  const port = 18_000 + Math.floor(Math.random() * 1000);
  await must(lab, [path.join(ROOT, 'scripts/lab/lapi-up.sh'), dir, String(port)]);
  const cscli = (...a: string[]) => must(lab, ['cscli', '-c', path.join(dir, 'config.yaml'), '--error', ...a]);
  for (const host of ['web-a', 'web-b']) {
    const password = `pw-${host}-${Math.random().toString(36).slice(2)}`;
    await cscli('machines', 'add', `floodgate-${host}`, '--password', password, '-f', '-', '--force');
    writeFileSync(path.join(dir, `${host}.password`), `${password}\n`, { mode: 0o600 });
    const key = await cscli('-o', 'raw', 'bouncers', 'add', `floodgate-${host}`);
    writeFileSync(path.join(dir, `${host}.key`), key.trim(), { mode: 0o600 });
  }
  return {
    name: 'crowdsec',
    fleet: (host) => ({
      engine: 'crowdsec',
      url: `http://127.0.0.1:${port}`,
      host,
      machine: `floodgate-${host}`,
      password_file: path.join(dir, `${host}.password`),
      bouncer_key_file: path.join(dir, `${host}.key`),
      poll: '500ms',
      resync: '60s',
    }),
    reset: async () => void (await cscli('decisions', 'delete', '--all')),
    stop: async () => void (await lab.execServer([path.join(ROOT, 'scripts/lab/lapi-down.sh'), dir])),
  };
}

async function startDaemon(lab: Lab, dir: string, engine: Engine, host: string, run: number): Promise<Daemon> {
  const policy = parse(readFileSync(path.join(ROOT, 'policies/default.yaml'), 'utf8')) as Record<string, unknown>;
  policy.ban = { ...(policy.ban as object), kill_connections: false, rate: '1000000/s', max_active: 20_000 };
  policy.firewall = { backend: 'ipset' };
  policy.fleet = engine.fleet(host);
  const file = path.join(dir, `${host}.yaml`);
  writeFileSync(file, stringify(policy));
  const node = profDir
    ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', `${engine.name}-${run}-${host}.cpuprofile`]
    : [];
  const daemon = new Daemon(
    lab.spawnServer([
      process.execPath,
      ...node,
      CLI,
      ...['run', '--enforce', '--policy', file, '--state-dir', path.join(dir, `${host}-state`), '--interval', '1s'],
    ]),
  );
  await daemon.waitFor(`${host}'s start-up pull`, (e) => e.event === 'fleet-sync' && e.during === 'start-up pull');
  return daemon;
}

interface Run {
  /** A's first ban to all in B's ipset. */
  readonly total: number;
  readonly aBans: number;
  /** The engine held all of them (Redis: its last stream entry; CrowdSec: the POST's answer). */
  readonly held: number;
  readonly failed: number;
  readonly bLast: number;
}

async function once(lab: Lab, engine: Engine, run: number): Promise<Run> {
  const dir = mkdtempSync(path.join(tmpdir(), 'floodgate-bench-fleet-'));
  try {
    const a = await startDaemon(lab, dir, engine, 'web-a', run);
    const b = await startDaemon(lab, dir, engine, 'web-b', run);
    const targets = Array.from({ length: COUNT }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    const file = path.join(dir, 'targets.txt');
    writeFileSync(file, `${targets.join('\n')}\n`);
    const stateB = path.join(dir, 'web-b-state');
    await must(
      lab,
      [process.execPath, CLI, 'ban', '--from-file', file, '--ttl', '10m', '--state-dir', path.join(dir, 'web-a-state')],
      60_000,
    );
    const setName = `${instanceTag(stateB)}-4`;
    const deadline = Date.now() + 60_000;
    let done = Number.NaN;
    for (;;) {
      const out = await must(lab, ['ipset', 'list', '-terse', setName]).catch(() => '');
      if (Number(/Number of entries: (\d+)/.exec(out)?.[1] ?? 0) === COUNT) {
        done = Date.now();
        break;
      }
      if (Date.now() > deadline) throw new Error(`${engine.name}: not all ${COUNT} in B's ipset after 60 s`);
      await sleep(25);
    }
    await sleep(300);
    // A list this long logs one summary line when it is banned, with how long banning it took.
    const list = a.events.find((e) => e.event === 'bans');
    const first = at(list) - Number(list?.tookMs ?? Number.NaN);
    const pushes = a.events.filter((e) => e.event === 'fleet-push');
    // A failed push (the LAPI's SQLite "database is locked") is retried after a wait, sending only what is missing.
    const failed = a.events.filter((e) => e.event === 'error' && e.during === 'fleet-push').length;
    // B's bulk pulls log a summary line each; small ones a line per ban.
    const bApplied = b.events.filter(
      (e) => (e.event === 'ban' && e.source === 'fleet') || (e.event === 'fleet-sync' && Number(e.applied) > 0),
    );
    await Promise.all([a.stop(), b.stop()]);
    const held = engine.stored ? await engine.stored() : at(pushes.at(-1));
    return {
      total: done - first,
      aBans: at(list) - first,
      held: held - first,
      failed,
      bLast: at(bApplied.at(-1)) - first,
    };
  } finally {
    await engine.reset().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The tag B's rules and sets carry (its instance id, made at its start). */
function instanceTag(stateDir: string): string {
  return `floodgate-${readFileSync(path.join(stateDir, 'instance-id'), 'utf8').trim()}`;
}

const lab = await createLab({ defaultListeners: false });
const work = mkdtempSync(path.join(tmpdir(), 'floodgate-bench-engines-'));
const started: Engine[] = [];
const results = new Map<string, Run[]>();
try {
  for (const name of engines) {
    const dir = path.join(work, name);
    mkdirSync(dir);
    started.push(name === 'redis' ? await startRedis(lab, dir) : await startLapi(lab, dir));
    results.set(name, []);
  }
  for (let run = 1; run <= RUNS; run++) {
    for (const engine of started) {
      const r = await once(lab, engine, run);
      results.get(engine.name)!.push(r);
      log(
        `${engine.name} run ${run}: all ${COUNT} in B's ipset after ${r.total} ms (A banned all by +${r.aBans}, ` +
          `the engine held all by +${r.held}${r.failed > 0 ? ` after ${r.failed} failed push(es)` : ''}, ` +
          `B applied the last by +${r.bLast} ms)`,
      );
    }
  }
} finally {
  for (const engine of started) await engine.stop().catch(() => undefined);
  await lab.destroy();
  rmSync(work, { recursive: true, force: true });
}

// A value a run could not tell (no push answered before the end: the failed POST had stored all) is left out.
const cell = (samples: number[]) => {
  const known = samples.filter(Number.isFinite);
  if (known.length === 0) return '–';
  const s: Stats = stats(known);
  return `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})`;
};
process.stdout.write(`${machineLine()}\n\n`);
process.stdout.write(
  `${markdownTable(
    [
      `engine (${RUNS} runs; median, min–max)`,
      `A's first ban to all ${COUNT} in B's ipset`,
      'A banned all by',
      'the engine held all by',
      'B applied the last by',
      'failed pushes',
    ],
    [...results].map(([name, runs]) => [
      name,
      cell(runs.map((r) => r.total)),
      cell(runs.map((r) => r.aBans)),
      cell(runs.map((r) => r.held)),
      cell(runs.map((r) => r.bLast)),
      String(runs.reduce((sum, r) => sum + r.failed, 0)),
    ]),
  )}\n`,
);
