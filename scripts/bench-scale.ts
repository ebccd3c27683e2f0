// Benchmarks floodgate at the size of the servers that most need it (issue 15), each beside its
// baseline in one run:
//   tick     the daemon's scan of a 1M-row table with ~500k distinct sources (IPv4 and IPv6, a tenth
//            of the IPv4 as IPv4-mapped in tcp6; 80% ESTABLISHED, 15% SYN_RECV) read through
//            FLOODGATE_PROC_ROOT with the default policy's four rules (dry-run), against one awk pass
//            counting sockets per remote address over the same files; the daemon's VmRSS throughout.
//   scan     whole-process `floodgate scan --input` on a 1M-row capture, SYN_RECV by /24, against
//            awk '$4=="03"{print substr($3,3,6)}' | sort | uniq -c | sort -rn | head; with 8 sockets
//            per source and with every source distinct.
//   startup  `floodgate --version` (npm-installed: dist/src/cli/main.cjs; and the single executable
//            dist/floodgate-linux-x64 when built) against `node -e 0`.
//
// usage: npx tsx scripts/bench-scale.ts [--only tick|scan|startup] [--rows 1M] [--runs 7] [--cli dist/src/cli/main.cjs]
// Needs the build (npm run build); no root: the daemon runs in dry-run and reads generated files.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  EXTRA_CA_ENV,
  SERVER_ENV,
  count,
  log,
  machineLine,
  markdownTable,
  ms,
  parseCount,
  ratio,
  runOnce,
  serviceNodeOptions,
  shebangFlags,
  stats,
  timeCommands,
  usage,
} from './bench-harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SEA = path.join(ROOT, 'dist/floodgate-linux-x64');

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    rows: { type: 'string', default: '1M' },
    cli: { type: 'string' },
    runs: { type: 'string', default: '7' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(usage(import.meta.url));
  process.exit(0);
}
/** The floodgate to measure: this tree's build, or another (an older build, to compare). */
const CLI = path.resolve(args.cli ?? path.join(ROOT, 'dist/src/cli/main.cjs'));
/** The node flags of the CLI's #! line: every case here runs the CLI as the installed command does. */
const NODE_FLAGS = shebangFlags(CLI);
const FLOODGATE = [process.execPath, ...NODE_FLAGS, CLI];
/** The NODE_OPTIONS of the systemd unit, which the tick's daemon runs with. */
const SERVICE_NODE_OPTIONS = serviceNodeOptions();
const ROWS = parseCount(args.rows);
const RUNS = Number(args.runs);
if (!Number.isInteger(RUNS) || RUNS < 1)
  throw new Error(`expected --runs to be a whole number >= 1, got ${JSON.stringify(args.runs)}`);
if (args.only !== undefined && !['tick', 'scan', 'startup'].includes(args.only))
  throw new Error(`expected --only tick, scan or startup, got ${JSON.stringify(args.only)}`);
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with npm run build`);

const dir = mkdtempSync(path.join(os.tmpdir(), 'fgb-scale-'));
const children = new Set<ChildProcess>();
const cleanup = () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    cleanup();
    process.exit(128 + os.constants.signals[signal]);
  });
}

const sh = (text: string): string[] => ['sh', '-c', text];
const q = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;

// ---------------------------------------------------------------------------------------------
// Tables, as the kernel prints them

/** A seeded 32-bit mixer (a bijection), so every run and machine gets the same tables. */
const mix32 = (x: number): number => {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
};
const hex = (v: number, w: number) => (v >>> 0).toString(16).toUpperCase().padStart(w, '0');
/** A 32-bit word as the kernel prints it: host (little-endian) byte order. */
const word = (be: number) =>
  hex((((be & 255) << 24) | (((be >>> 8) & 255) << 16) | (((be >>> 16) & 255) << 8) | (be >>> 24)) >>> 0, 8);
const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const TAIL = ' 00000000:00000000 00:00000000 00000000    33        0 1234567 1 0000000000000000 20 4 30 10 -1';

/** A public-looking IPv4 address for source `s` (never 0/8, 10/8, 127/8 or multicast). */
function ipv4Of(s: number): number {
  let a = mix32(s + 0x1234567);
  const first = a >>> 24;
  if (first === 0 || first === 10 || first === 127 || first >= 224)
    a = ((a & 0x00ffffff) | (((first % 200) + 11) << 24)) >>> 0;
  return a;
}

class TableWriter {
  private readonly fd: number;
  private chunk: string[] = [];
  private n = 0;
  constructor(file: string) {
    this.fd = openSync(file, 'w');
    this.chunk.push(HEADER.padEnd(149), '\n');
  }
  line(localHex: string, remoteHex: string, remotePort: number, state: number, localPort: number): void {
    this.chunk.push(
      `${String(this.n++).padStart(4)}: ${localHex}:${hex(localPort, 4)} ${remoteHex}:${hex(remotePort, 4)} ${hex(state, 2)}${TAIL}`.padEnd(
        149,
      ),
      '\n',
    );
    if (this.chunk.length >= 16384) this.flush();
  }
  flush(): void {
    writeSync(this.fd, this.chunk.join(''), null, 'latin1');
    this.chunk = [];
  }
  close(): number {
    this.flush();
    closeSync(this.fd);
    return this.n;
  }
}

/**
 * The tick's table: `rows` sockets from rows/2 sources (two sockets each, in scattered order), 60%
 * IPv4 (a tenth of those in tcp6 as IPv4-mapped) and 40% IPv6 in 2001:db8::/32; 80% ESTABLISHED,
 * 15% SYN_RECV, 5% TIME_WAIT; and 20 heavy hitters with 150 half-open connections each, so that
 * the rules have something to flag.
 */
function writeTickTables(procRoot: string, rows: number): { tcp: number; tcp6: number; distinct: number } {
  mkdirSync(path.join(procRoot, 'net'), { recursive: true });
  const tcp = new TableWriter(path.join(procRoot, 'net/tcp'));
  const tcp6 = new TableWriter(path.join(procRoot, 'net/tcp6'));
  const local4 = word(0xc0000201);
  const local6 = `${word(0x20010db8)}${word(0)}${word(0)}${word(1)}`;
  const sources = Math.floor(rows / 2);
  const hitters = 20;
  const floodRows = hitters * 150;
  const distinct = new Set<number>();
  for (let i = 0; i < rows; i++) {
    let s: number;
    let state: number;
    if (i < floodRows) {
      s = sources + (i % hitters);
      state = 3;
    } else {
      s = mix32(i) % sources;
      const u = mix32(i ^ 0x5bd1e995) % 100;
      state = u < 80 ? 1 : u < 95 ? 3 : 6;
    }
    if (distinct.size < 2_000_000) distinct.add(s);
    const kind = mix32(s ^ 0x27d4eb2f) % 100;
    const localPort = mix32(i + 99) % 10 < 7 ? 443 : 80;
    const remotePort = 1024 + (mix32(i + 7) % 64000);
    if (kind < 54) tcp.line(local4, word(ipv4Of(s)), remotePort, state, localPort);
    else if (kind < 60)
      tcp6.line(local6, `${word(0)}${word(0)}${word(0xffff)}${word(ipv4Of(s))}`, remotePort, state, localPort);
    else
      tcp6.line(
        local6,
        `${word(0x20010db8)}${word(mix32(s + 1))}${word(mix32(s + 2))}${word(mix32(s + 3))}`,
        remotePort,
        state,
        localPort,
      );
  }
  return { tcp: tcp.close(), tcp6: tcp6.close(), distinct: distinct.size };
}

/** A scan capture: `rows` sockets, `perSource` per source (1: every source distinct), a third SYN_RECV. */
function writeScanTable(file: string, rows: number, perSource: number): number {
  const out = new TableWriter(file);
  const local = word(0xc0000201);
  const sources = Math.ceil(rows / perSource);
  let synRecv = 0;
  for (let i = 0; i < rows; i++) {
    const s = perSource === 1 ? i : mix32(i) % sources;
    const state = mix32(i ^ 0x1b873593) % 3 === 0 ? 3 : 1;
    if (state === 3) synRecv++;
    out.line(local, word(ipv4Of(s)), 1024 + (mix32(i + 5) % 64000), state, 443);
  }
  out.close();
  return synRecv;
}

// ---------------------------------------------------------------------------------------------
// tick: the daemon against one awk pass

const sleep = (msValue: number) => new Promise((resolve) => setTimeout(resolve, msValue));

function vmRssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
function vmHwmKiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function tick(): Promise<string[][]> {
  const procRoot = path.join(dir, 'proc');
  log(`tick: writing a ${count(ROWS)}-row table`);
  const t = writeTickTables(procRoot, ROWS);
  const tcp = path.join(procRoot, 'net/tcp');
  const tcp6 = path.join(procRoot, 'net/tcp6');
  const awk = `awk 'FNR>1{split($3,a,":"); c[a[1]]++} END{n=0; for(k in c) n++; print n}' ${q(tcp)} ${q(tcp6)}`;
  log(
    `tick: ${t.tcp} tcp + ${t.tcp6} tcp6 rows, ${t.distinct} distinct sources (awk: ${runOnce(sh(awk)).stdout.trim()} distinct address texts)`,
  );

  const stateDir = path.join(dir, 'state');
  const policyFile = path.join(dir, 'policy.yaml');
  // The default policy as shipped, its interval shortened so the run takes less time.
  const policyText = readFileSync(path.join(ROOT, 'policies/default.yaml'), 'utf8').replace(
    /^interval:.*$/m,
    'interval: 3s',
  );
  if (!/^mode: dry-run/m.test(policyText))
    throw new Error('policies/default.yaml is no longer dry-run: this benchmark must not enforce');
  writeFileSync(policyFile, policyText);
  const daemonLog = openSync(path.join(dir, 'daemon.log'), 'w');
  // As the systemd unit runs it: NODE_OPTIONS gives node the daemon's small young generation.
  const daemon = spawn(FLOODGATE[0]!, [...FLOODGATE.slice(1), 'run', '--policy', policyFile, '--state-dir', stateDir], {
    stdio: ['ignore', daemonLog, daemonLog],
    env: { ...SERVER_ENV, FLOODGATE_PROC_ROOT: procRoot, NODE_OPTIONS: SERVICE_NODE_OPTIONS },
  });
  children.add(daemon);
  const rss: number[] = [];
  const sampler = setInterval(() => {
    try {
      rss.push(vmRssKiB(daemon.pid!));
    } catch {
      /* exited */
    }
  }, 200);
  const ticks: number[] = [];
  const awkMs: number[] = [];
  let lastAt = 0;
  const deadline = Date.now() + 60_000 + RUNS * 20_000;
  // One awk pass right after each tick the daemon reports, while it waits for the next: interleaved.
  while (ticks.length < RUNS + 1 && Date.now() < deadline) {
    await sleep(250);
    if (daemon.exitCode !== null)
      throw new Error(`the daemon exited ${daemon.exitCode}; see ${path.join(dir, 'daemon.log')}`);
    let status: { lastScan?: { at: number; durationMs: number; sockets: number } | null };
    try {
      status = JSON.parse(
        runOnce([...FLOODGATE, 'status', '--json', '--state-dir', stateDir, '--policy', policyFile]).stdout,
      );
    } catch {
      continue;
    }
    const scan = status.lastScan;
    if (!scan || scan.at === lastAt) continue;
    lastAt = scan.at;
    if (scan.sockets !== t.tcp + t.tcp6)
      throw new Error(`the daemon scanned ${scan.sockets} sockets, expected ${t.tcp + t.tcp6}`);
    ticks.push(scan.durationMs);
    log(`tick: scan ${scan.durationMs} ms`);
    awkMs.push(runOnce(sh(awk)).ms);
  }
  clearInterval(sampler);
  const hwm = vmHwmKiB(daemon.pid!);
  daemon.kill('SIGTERM');
  children.delete(daemon);
  if (ticks.length < 2) throw new Error('the daemon reported fewer than two scans');
  // The first scan is the cold one (JIT, first allocation of the columns): reported apart.
  const [cold, ...warm] = ticks;
  const tickMs = stats(warm).median;
  const awkMedian = stats(awkMs).median;
  const mib = (kib: number) => (kib / 1024).toFixed(0);
  return [
    [
      'daemon tick (status --json → lastScan.durationMs), warm',
      ms(tickMs),
      ratio(tickMs, awkMedian),
      `first (cold) ${ms(cold!)} ms`,
    ],
    ['awk: sockets per remote address, one pass over tcp and tcp6', ms(awkMedian), '1.00x', ''],
    [
      'daemon VmRSS, median / highest sample / VmHWM (MiB)',
      `${mib(stats(rss).median)} / ${mib(stats(rss).max)} / ${mib(hwm)}`,
      '',
      'goal < 150 MiB',
    ],
  ];
}

// ---------------------------------------------------------------------------------------------
// scan: whole process against the awk | sort | uniq -c pipeline, SYN_RECV by /24

async function scan(): Promise<string[][]> {
  const out: string[][] = [];
  for (const perSource of [8, 1]) {
    const file = path.join(dir, `tcp-${perSource}.txt`);
    log(`scan: writing ${count(ROWS)} rows, ${perSource} per source`);
    const synRecv = writeScanTable(file, ROWS, perSource);
    const check = JSON.parse(
      runOnce([...FLOODGATE, 'scan', '--input', file, '--state', 'SYN_RECV', '--by', 'net', '--top', '1', '--json'])
        .stdout,
    ) as { total: number };
    if (check.total !== synRecv) throw new Error(`floodgate counted ${check.total} SYN_RECV, generated ${synRecv}`);
    const floodgate = sh(`${FLOODGATE.map(q).join(' ')} scan --input ${q(file)} --state SYN_RECV --by net --top 10`);
    const cases = [
      { name: 'floodgate scan --input FILE --state SYN_RECV --by net --top 10', argv: floodgate },
      {
        name: `awk '$4=="03"{print substr($3,3,6)}' FILE \\| sort \\| uniq -c \\| sort -rn \\| head`,
        argv: sh(`awk '$4=="03"{print substr($3,3,6)}' ${q(file)} | sort | uniq -c | sort -rn | head`),
      },
      // Also as this machine runs node, where it sets NODE_EXTRA_CA_CERTS (see bench-harness.ts).
      ...(EXTRA_CA_ENV
        ? [{ name: 'floodgate scan, NODE_EXTRA_CA_CERTS set', argv: floodgate, env: EXTRA_CA_ENV }]
        : []),
    ];
    log(`scan: timing ${RUNS} rounds`);
    const [fg, awk, withCa] = await timeCommands(cases, RUNS);
    const label = perSource === 1 ? 'every source distinct' : `${perSource} sockets per source`;
    out.push([
      `${count(ROWS)} rows, ${label}: floodgate scan`,
      ms(fg!.wall.median),
      ratio(fg!.wall.median, awk!.wall.median),
      `CPU ${ms(fg!.cpuMs)} ms`,
    ]);
    if (withCa) {
      out.push([
        `${count(ROWS)} rows, ${label}: floodgate scan, NODE_EXTRA_CA_CERTS set`,
        ms(withCa.wall.median),
        ratio(withCa.wall.median, awk!.wall.median),
        `CPU ${ms(withCa.cpuMs)} ms`,
      ]);
    }
    out.push([
      `${count(ROWS)} rows, ${label}: awk \\| sort \\| uniq -c`,
      ms(awk!.wall.median),
      '1.00x',
      `CPU ${ms(awk!.cpuMs)} ms`,
    ]);
    rmSync(file);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// startup

async function startup(): Promise<string[][]> {
  const cases = [
    { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
    {
      name: 'floodgate --version (npm: node dist/src/cli/main.cjs, as its #! line runs it)',
      argv: [...FLOODGATE, '--version'],
    },
    ...(existsSync(SEA) ? [{ name: 'floodgate --version (single executable)', argv: [SEA, '--version'] }] : []),
    ...(EXTRA_CA_ENV
      ? [
          { name: 'node -e 0, NODE_EXTRA_CA_CERTS set', argv: [process.execPath, '-e', '0'], env: EXTRA_CA_ENV },
          {
            name: 'floodgate --version, NODE_EXTRA_CA_CERTS set',
            argv: [...FLOODGATE, '--version'],
            env: EXTRA_CA_ENV,
          },
        ]
      : []),
  ];
  log(`startup: timing ${Math.max(RUNS, 15)} rounds`);
  const results = await timeCommands(cases, Math.max(RUNS, 15), 2);
  // Each against node -e 0 in the same environment.
  const base = (i: number) => results[cases[i]!.env === undefined ? 0 : cases.findIndex((c) => c.env)]!.wall.median;
  const rows = results.map((r, i) => [
    r.name,
    ms(r.wall.median),
    ratio(r.wall.median, base(i)),
    `CPU ${ms(r.cpuMs)} ms`,
  ]);
  if (!existsSync(SEA)) rows.push(['single executable', '–', '', 'not built (npm run package)']);
  return rows;
}

async function main(): Promise<void> {
  console.log(
    `## floodgate at scale (issue 15)\n\n${machineLine()}\n` +
      `commands run as their #! line runs them: node ${[...NODE_FLAGS, path.relative(ROOT, CLI)].join(' ')}; ` +
      `the daemon as the systemd unit runs it: NODE_OPTIONS=${SERVICE_NODE_OPTIONS}\n`,
  );
  const rows: string[][] = [];
  if (args.only === undefined || args.only === 'tick') rows.push(...(await tick()));
  if (args.only === undefined || args.only === 'scan') rows.push(...(await scan()));
  if (args.only === undefined || args.only === 'startup') rows.push(...(await startup()));
  console.log(markdownTable(['what', 'median ms', 'ratio to its baseline', 'note'], rows));
}

main().catch((error: unknown) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
