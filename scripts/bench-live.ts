// Benchmarks reading the live connection table at 100k+ sockets: fills a private network namespace
// with loopback TCP connections, then times the kernel's own tools (cat /proc/net/tcp*, ss) beside
// `floodgate scan` and, in process, readLiveTable() (/proc) beside spawning `ss -tan` + parseSs; and the
// SYN_RECV-only routes side by side: readLiveTable with a state filter against the kernel's own filter
// (`ss -tanH state syn-recv` + parseSs), with a check that both count the same half-open sockets.
//
// usage (root): npx tsx scripts/bench-live.ts [--conns 60000] [--sources 4] [--syn-recv 20000]
//                                             [--runs 9] [--hold 0]
//   --conns    loopback connections to open; each is two sockets in the table (default 60000)
//   --sources  127.0.0.x client addresses to spread them over, each with its own ports (default 4)
//   --syn-recv half-open (SYN_RECV) sockets to add, a SYN flood from 40 addresses 127.1.0.x with a
//              skewed share each: their SYN-ACKs are dropped by an iptables rule inside the namespace
//              (default 20000; 0 for none; above 65535 the namespace's somaxconn and
//              tcp_max_syn_backlog are raised to twice it, inside the namespace only)
//   --runs     timed runs per case (default 9)
//   --hold     keep the filled namespace for this many seconds before timing, to look around by hand
//              (ip netns exec fgb-<pid> ...); Ctrl-C still removes it (default 0)
// Needs the build (npx tsc -p .), iproute2 (ip, ss), netstat (net-tools) and iptables. Everything
// happens in a namespace fgb-<pid>, on its loopback only; the namespace is removed at the end, on
// error and on SIGINT/SIGTERM/SIGHUP. Prints markdown tables on stdout, progress on stderr.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countSockets, topGroups } from '../src/table/count-sockets.js';
import { readLiveTable } from '../src/table/live-table.js';
import { stateIndex } from '../src/table/socket-table.js';
import { parseProcNet } from '../src/table/proc-net-parser.js';
import { parseSs } from '../src/table/ss-parser.js';
import {
  type Stats,
  childCpuMs,
  count,
  log,
  machineLine,
  markdownTable,
  ms,
  ratio,
  stats,
  timeCommands,
  usage,
} from './bench-harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/src/cli/main.cjs');
const NS = `fgb-${process.pid}`;
/** Bounds on the setup, so that a stuck run stops by itself. */
const CONNECT_DEADLINE_MS = 300_000;

const { values: args } = parseArgs({
  options: {
    conns: { type: 'string', default: '60000' },
    sources: { type: 'string', default: '4' },
    'syn-recv': { type: 'string', default: '20000' },
    runs: { type: 'string', default: '9' },
    hold: { type: 'string', default: '0' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(usage(import.meta.url));
  process.exit(0);
}
function wholeNumber(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`expected --${name} to be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
}
const conns = wholeNumber('conns', args.conns, 1, 500_000);
const sources = wholeNumber('sources', args.sources, 1, 200);
const runs = wholeNumber('runs', args.runs, 1, 1000);
const synRecv = wholeNumber('syn-recv', args['syn-recv'], 0, 200_000);
const holdSeconds = wholeNumber('hold', args.hold, 0, 3600);
if (conns / sources > 60_000)
  throw new Error(
    `--conns ${conns} over --sources ${sources} is more than 60000 ports per source address: add sources`,
  );
// Each process holds at most its fd limit of sockets; the connections are spread over several.

// ---------------------------------------------------------------------------------------------
// the namespace and the processes in it, and their removal whatever happens

const children: ChildProcess[] = [];
let nsCreated = false;

function nsPids(): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', NS], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 1 && pid !== process.pid);
  } catch {
    return [];
  }
}

/** Synchronous, so it also runs from process.on('exit'). Only touches our children and our namespace. */
function teardown(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  if (!nsCreated) return;
  // Anything still in the namespace was started by this script (the namespace is ours alone).
  for (let round = 0; round < 50; round++) {
    const pids = nsPids();
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    spawnSync('sleep', ['0.1']);
  }
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  nsCreated = false;
  log(`namespace ${NS} removed`);
}

process.on('exit', teardown);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    teardown();
    process.exit(128 + os.constants.signals[signal]);
  });
}

function nsRun(argv: readonly string[]): string {
  return execFileSync('ip', ['netns', 'exec', NS, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Holds every accepted connection on argv[1] (backlog argv[2]) open and unread; prints "ready" once listening. */
const SERVER = `
import net from 'node:net';
const held = [];
const server = net.createServer({ pauseOnConnect: true }, (socket) => { socket.on('error', () => {}); held.push(socket); });
server.listen({ host: '127.0.0.1', port: Number(process.argv[1]), backlog: Number(process.argv[2] ?? 65535) }, () => console.log('ready'));
setInterval(() => {}, 1 << 30);
`;

/**
 * Opens argv[1] connections to port argv[3] from 127.0.0.2.. (argv[2] addresses, round robin), 1000
 * in flight. Connection i of the whole run (argv[4] is this process's first) gets its own local port:
 * left to the kernel, each bind() searches the bound ports of its address, and past ~100k
 * connections the fill slows to a crawl (98% system time).
 */
const CLIENT = `
import net from 'node:net';
const total = Number(process.argv[1]), sources = Number(process.argv[2]), port = Number(process.argv[3]);
const first = Number(process.argv[4]);
const held = [];
let started = 0, connected = 0, failed = 0;
const open = () => {
  if (started >= total) return;
  const i = started++;
  const g = first + i;
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.' + (2 + (g % sources)), localPort: 1024 + Math.floor(g / sources) });
  socket.on('connect', () => { held.push(socket); connected++; done(); open(); });
  socket.on('error', (e) => { if (++failed <= 3) console.error('  connect failed: ' + e.message); done(); open(); });
};
const done = () => { if (connected + failed === total) console.log(JSON.stringify({ connected, failed })); };
for (let k = 0; k < 1000; k++) open();
setInterval(() => {}, 1 << 30);
`;

/**
 * Sends argv[1] SYNs to port argv[2] from 40 addresses 127.1.0.2.. (the first ones far more often),
 * in batches: connect, give the SYN a moment, then drop the socket. The SYN-ACKs are dropped, so the
 * server keeps one SYN_RECV request per SYN and this side keeps nothing. Each source counts its own
 * local ports: left to the kernel, a port freed by destroy() comes back, and a SYN on a 4-tuple that
 * already has a request is no new one (87.6k of 100k appeared).
 */
const FLOOD = `
import net from 'node:net';
const total = Number(process.argv[1]), port = Number(process.argv[2]);
let sent = 0;
const nextPort = new Array(40).fill(1024);
while (sent < total) {
  const batch = [];
  for (let k = 0; k < 2000 && sent < total; k++, sent++) {
    const k = Math.floor(40 * Math.random() ** 2);
    const localPort = nextPort[k] > 65535 ? 0 : nextPort[k]++;
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.1.0.' + (2 + k), localPort });
    socket.on('error', () => {});
    batch.push(socket);
  }
  await new Promise((r) => setTimeout(r, 300));
  for (const socket of batch) socket.destroy();
}
console.log(JSON.stringify({ sent }));
setInterval(() => {}, 1 << 30);
`;
const FLOOD_PORT = 7100;

/** Starts node code in the namespace; resolves with its first stdout line. */
function startInNs(
  name: string,
  code: string,
  codeArgs: string[],
  timeoutMs: number,
): Promise<{ child: ChildProcess; line: string }> {
  // ip netns exec execs, so the child's pid is node's pid. Node raises its soft fd limit to the hard one.
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, '--input-type=module', '-e', code, ...codeArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited early (${code ?? signal})`));
    });
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve({ child, line });
    });
  });
}

/** The hard limit on open files: a process can hold no more sockets than this (raising it needs CAP_SYS_RESOURCE). */
function hardFdLimit(): number {
  const n = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
  return Number.isInteger(n) && n > 0 ? n : 1024;
}

async function fillNamespace(): Promise<{ serverPid: number; rows: number; processes: number }> {
  execFileSync('ip', ['netns', 'add', NS]);
  nsCreated = true;
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  // Per-namespace settings: a wide port range per source address and room in the accept queues.
  // Without SYN cookies and with 10 SYN-ACK retries a half-open socket stays for ~17 minutes. A
  // listener holds at most min(backlog, somaxconn) requests, and without cookies the kernel drops SYNs
  // once the queue is three quarters of tcp_max_syn_backlog: twice the flood leaves room.
  const queue = Math.max(65535, 2 * synRecv);
  nsRun([
    'sysctl',
    '-q',
    '-w',
    'net.ipv4.ip_local_port_range=1024 65535',
    `net.core.somaxconn=${queue}`,
    `net.ipv4.tcp_max_syn_backlog=${queue}`,
    'net.ipv4.tcp_syncookies=0',
    'net.ipv4.tcp_synack_retries=10',
  ]);
  // One server and one client process per share of the connections that fits under the fd limit.
  const perProcess = Math.max(1000, hardFdLimit() - 512);
  const processes = Math.ceil(conns / perProcess);
  const ports = Array.from({ length: processes }, (_, i) => 7001 + i);
  log(`namespace ${NS}: ${processes} server and ${processes} client processes, ${perProcess} connections at most each`);
  const servers = await Promise.all(ports.map((port) => startInNs(`server :${port}`, SERVER, [String(port)], 30_000)));
  log(`namespace ${NS}: opening ${conns} connections from ${sources} source addresses`);
  const started = Date.now();
  const shares = ports.map((_, i) => Math.floor(conns / processes) + (i < conns % processes ? 1 : 0));
  const firsts = shares.map((_, i) => shares.slice(0, i).reduce((a, b) => a + b, 0));
  const clients = await Promise.all(
    ports.map((port, i) =>
      startInNs(
        `client :${port}`,
        CLIENT,
        [String(shares[i]), String(sources), String(port), String(firsts[i])],
        CONNECT_DEADLINE_MS,
      ),
    ),
  );
  const results = clients.map((c) => JSON.parse(c.line) as { connected: number; failed: number });
  const connected = results.reduce((a, r) => a + r.connected, 0);
  const failed = results.reduce((a, r) => a + r.failed, 0);
  log(`  ${connected} connected, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (failed > conns / 100) throw new Error(`${failed} of ${conns} connections failed`);
  // Both ends of every connection are in the table; wait until the servers have accepted them all.
  for (let i = 0; i < 100; i++) {
    const established = Number(nsRun(['sh', '-c', 'ss -tanH state established | wc -l']).trim());
    if (established >= 2 * connected) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (synRecv > 0) {
    log(
      `namespace ${NS}: SYN flood of ${synRecv} to :${FLOOD_PORT} from 127.1.0.2-41, SYN-ACKs dropped inside the namespace`,
    );
    nsRun([
      'iptables',
      '-w',
      '-A',
      'INPUT',
      '-i',
      'lo',
      '-p',
      'tcp',
      '--sport',
      String(FLOOD_PORT),
      '--tcp-flags',
      'SYN,ACK',
      'SYN,ACK',
      '-j',
      'DROP',
    ]);
    await startInNs(`server :${FLOOD_PORT}`, SERVER, [String(FLOOD_PORT), String(queue)], 30_000);
    await startInNs('flood', FLOOD, [String(synRecv), String(FLOOD_PORT)], CONNECT_DEADLINE_MS);
    let halfOpen = 0;
    for (let i = 0; i < 50 && halfOpen < synRecv; i++) {
      halfOpen = Number(nsRun(['sh', '-c', 'ss -tanH state syn-recv | wc -l']).trim());
      if (halfOpen < synRecv) await new Promise((r) => setTimeout(r, 200));
    }
    log(`  ${halfOpen} SYN_RECV`);
    if (halfOpen < synRecv * 0.95) throw new Error(`only ${halfOpen} of ${synRecv} half-open sockets appeared`);
  }
  const serverPid = servers[0]!.child.pid!;
  const rows = readFileSync(`/proc/${serverPid}/net/tcp`, 'latin1').split('\n').length - 2;
  return { serverPid, rows, processes };
}

// ---------------------------------------------------------------------------------------------
// in-process timing with CPU split: system time is the kernel producing the table

interface Timed {
  readonly wall: Stats;
  readonly user: number;
  readonly system: number;
  /** Mean CPU of the children waited for (a spawned ss). */
  readonly children: number;
}

async function timeInProcess(fn: () => unknown, n: number): Promise<Timed> {
  await fn(); // warm-up: JIT, page cache, slab
  const wall: number[] = [];
  const user: number[] = [];
  const system: number[] = [];
  const child0 = childCpuMs();
  for (let i = 0; i < n; i++) {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const cpu = process.cpuUsage(cpu0);
    user.push(cpu.user / 1000);
    system.push(cpu.system / 1000);
  }
  return {
    wall: stats(wall),
    user: stats(user).median,
    system: stats(system).median,
    children: (childCpuMs() - child0) / n,
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench-live needs root: it creates a network namespace');
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with npx tsc -p .`);
  console.log(`## floodgate live table benchmark\n\n${machineLine()}`);

  const { serverPid, rows, processes } = await fillNamespace();
  const procRoot = `/proc/${serverPid}`;
  if (holdSeconds > 0) {
    log(`namespace ${NS} is ready (${rows} rows, first server pid ${serverPid}); holding it for ${holdSeconds} s`);
    await new Promise((r) => setTimeout(r, holdSeconds * 1000));
  }
  const ssRows = Number(nsRun(['sh', '-c', 'ss -tanH | wc -l']).trim());
  console.log(
    `\n${count(conns)} loopback connections + ${synRecv} half-open in namespace ${NS}: ${rows} rows in /proc/net/tcp, ${ssRows} in ss -tan (both ends of each connection, plus the listeners), held by ${processes} server and ${processes} client processes.\n`,
  );

  // ---- whole process, in the namespace
  const inNs = (text: string) => ['ip', 'netns', 'exec', NS, 'sh', '-c', text];
  const node = `'${process.execPath}'`;
  const cases = [
    { name: 'ip netns exec + sh -c : (entry cost, in every row)', argv: inNs(':') },
    {
      name: 'cat /proc/net/tcp /proc/net/tcp6 > /dev/null',
      argv: inNs('cat /proc/net/tcp /proc/net/tcp6 > /dev/null'),
    },
    { name: 'ss -tan > /dev/null', argv: inNs('ss -tan > /dev/null') },
    { name: 'ss -tan \\| wc -l', argv: inNs('ss -tan | wc -l') },
    { name: 'netstat -ant > /dev/null', argv: inNs('netstat -ant > /dev/null') },
    { name: 'node -e 0 (node start)', argv: inNs(`${node} -e 0`) },
    { name: 'floodgate scan (live)', argv: inNs(`${node} '${CLI}' scan`) },
    {
      name: 'floodgate scan --state SYN_RECV --top 10 (live)',
      argv: inNs(`${node} '${CLI}' scan --state SYN_RECV --top 10`),
    },
    {
      name: 'ss -tanH state syn-recv \\| wc -l (filtered in the kernel)',
      argv: inNs('ss -tanH state syn-recv | wc -l'),
    },
    {
      name: 'ss -tanH state syn-recv > /dev/null',
      argv: inNs('ss -tanH state syn-recv > /dev/null'),
    },
  ];
  log(`whole process: ${runs} rounds of ${cases.length} commands`);
  const results = await timeCommands(cases, runs);
  const [entry, cat, ss] = results.map((r) => r.wall.median) as [number, number, number];
  console.log(`### Whole process, in the namespace (${rows} sockets)\n`);
  console.log(
    `Interleaved rounds, median of ${runs} after one warm-up; CPU = user+sys of the command and its children (mean, 10 ms tick resolution). "− entry" subtracts the cost of ip netns exec + sh.\n`,
  );
  console.log(
    markdownTable(
      ['command', 'median ms', 'min', 'max', 'CPU ms', '− entry', 'vs cat', 'vs ss -tan'],
      results.map((r) => [
        r.name,
        ms(r.wall.median),
        ms(r.wall.min),
        ms(r.wall.max),
        ms(r.cpuMs),
        r === results[0] ? '–' : ms(r.wall.median - entry),
        r === results[0] ? '–' : ratio(r.wall.median - entry, cat - entry),
        r === results[0] ? '–' : ratio(r.wall.median - entry, ss - entry),
      ]),
    ),
  );
  const scanLive = results[6]!.wall.median - entry;
  const scanSyn = results[7]!.wall.median - entry;
  const ssSyn = results[8]!.wall.median - entry;
  const kernel = Math.min(cat, ss) - entry;
  const matched = /^(\d+) sockets matched/.exec(results[7]!.stdout)?.[1];
  if (synRecv > 0 && (matched === undefined || Number(matched) < synRecv * 0.95))
    throw new Error(
      `floodgate scan --state SYN_RECV saw ${matched ?? 'no'} sockets, expected about ${synRecv}: ${results[7]!.stdout.slice(0, 300)}`,
    );
  console.log(
    `\nGoal (live scan <= 1.3x the kernel producing the table): scan ${ms(scanLive)} ms vs ${ms(kernel)} ms (${cat <= ss ? 'cat' : 'ss'}): ${ratio(scanLive, kernel)}, ${scanLive <= 1.3 * kernel ? 'met' : 'not met'}; without node's start (${ms(results[5]!.wall.median - entry)} ms): ${ratio(scanLive - (results[5]!.wall.median - entry), kernel)}.`,
  );
  const ssSynNull = results[9]!.wall.median - entry;
  console.log(
    `floodgate scan --state SYN_RECV (${matched} matched) ${ms(scanSyn)} ms vs ss -tanH state syn-recv | wc -l (${results[8]!.stdout.trim()} lines) ${ms(ssSyn)} ms: ${ratio(scanSyn, ssSyn)}; ss -tanH state syn-recv > /dev/null ${ms(ssSynNull)} ms is ${ratio(ssSynNull, cat - entry)} of cat.`,
  );

  // ---- in process: the same table read from this process through /proc/<pid>/net (the namespace's view)
  log(`in process: ${runs} runs of each`);
  const files = ['tcp', 'tcp6', 'udp', 'udp6'].map((f) => `${procRoot}/net/${f}`);
  let ssText = '';
  let procText = '';
  const ssSpawn = () => {
    const out = spawnSync('ss', ['-N', NS, '-tan'], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
    if (out.status !== 0) throw new Error(`ss -N ${NS} -tan exited ${out.status}: ${out.stderr.toString()}`);
    return out.stdout.toString('latin1');
  };
  const inProc: [string, Timed, string][] = [];
  const add = async (name: string, fn: () => unknown, note = '') =>
    inProc.push([name, await timeInProcess(fn, runs), note]);
  await add(
    'readFileSync /proc/net/{tcp,tcp6,udp,udp6}',
    () => {
      procText = files.map((f) => readFileSync(f, 'latin1')).join('');
    },
    'the kernel producing the text, read in big chunks',
  );
  await add(
    'fs.promises.readFile, the same four files',
    () => Promise.all(files.map((f) => readFile(f, 'latin1'))),
    'what readLiveTable reads with',
  );
  await add('readLiveTable() (read + parseProcNet)', () => readLiveTable('all', procRoot));
  await add(
    'readLiveTable() + countSockets by ip + topGroups',
    async () => {
      const table = await readLiveTable('all', procRoot);
      topGroups(countSockets(table.rows, {}, { by: 'ip' }).groups, 20);
    },
    'what scan does after startup',
  );
  await add('parseProcNet alone (text in memory)', () => parseProcNet(procText));
  await add(
    'spawnSync ss -N NS -tan (stdout captured)',
    () => {
      ssText = ssSpawn();
    },
    'netlink dump + formatting + pipe',
  );
  await add('spawnSync ss -tan + parseSs', () => parseSs(ssSpawn()));
  await add('parseSs alone (text in memory)', () => parseSs(ssText));
  const base = inProc[0]![1].wall.median;
  console.log(
    `\n### In process (this process reads the namespace's table via ${'/proc/<server pid>/net'}; ss via ss -N)\n`,
  );
  console.log(
    `Median of ${runs} after one warm-up. user/sys: this process's CPU (median); ss CPU: the spawned ss's user+sys (mean, 10 ms ticks). sys is the kernel producing the table.\n`,
  );
  console.log(
    markdownTable(
      ['what', 'median ms', 'min', 'max', 'user ms', 'sys ms', 'ss CPU ms', 'vs readFileSync', 'note'],
      inProc.map(([name, t, note]) => [
        name,
        ms(t.wall.median),
        ms(t.wall.min),
        ms(t.wall.max),
        ms(t.user),
        ms(t.system),
        t.children > 0 ? ms(t.children) : '–',
        ratio(t.wall.median, base),
        note,
      ]),
      1,
    ),
  );
  const live = inProc[2]![1].wall.median;
  const ssParsed = inProc[6]![1].wall.median;
  console.log(
    `\nproc vs ss, read + parse in process: readLiveTable ${ms(live)} ms, ss -tan + parseSs ${ms(ssParsed)} ms: ${live <= ssParsed ? `/proc is cheaper (ss costs ${ratio(ssParsed, live)})` : `ss is cheaper (/proc costs ${ratio(live, ssParsed)})`}.`,
  );
  console.log(
    `Raw text only: cat ${ms(cat - entry)} ms vs ss ${ms(ss - entry)} ms whole process; readFileSync ${ms(base)} ms vs spawn ss ${ms(inProc[5]![1].wall.median)} ms in process.`,
  );

  await stateFiltered(procRoot);
}

// ---------------------------------------------------------------------------------------------
// SYN_RECV only: floodgate's route (readLiveTable with a state filter: the kernel makes every row,
// the parser keeps the half-open ones) against asking the kernel to filter (ss state syn-recv over
// netlink) and parsing ss's text. Interleaved round by round, as the whole-process cases are.

async function stateFiltered(procRoot: string): Promise<void> {
  const SYN_RECV = new Set(['SYN_RECV'] as const);
  // With one state asked for, ss leaves out its State column, which parseSs needs: (b) asks for a
  // second state (SYN_SENT, none here) so that ss prints the column; (b') puts it back in before parsing.
  const ssStates = (...states: string[]) => {
    const argv = ['-N', NS, '-tanH', ...states.flatMap((state) => ['state', state])];
    const out = spawnSync('ss', argv, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
    if (out.status !== 0) throw new Error(`ss ${argv.join(' ')} exited ${out.status}: ${out.stderr.toString()}`);
    return out.stdout.toString('latin1');
  };
  const synRecvIndex = stateIndex('SYN_RECV');
  const countSynRecv = (text: string) => {
    const parsed = parseSs(text);
    if (parsed.malformed.length > 0)
      throw new Error(`parseSs: ${parsed.malformed.length} malformed lines, first ${parsed.malformed[0]!.text}`);
    let n = 0;
    for (let i = 0; i < parsed.rows.length; i++) if (parsed.rows.states[i] === synRecvIndex) n++;
    return n;
  };
  let procCount = 0;
  let ssCount = 0;
  let ssCount1 = 0;
  const cases: { name: string; note: string; fn: () => unknown }[] = [
    {
      name: 'readFileSync /proc/net/{tcp,tcp6}',
      note: 'reference: the kernel producing every TCP row as text',
      fn: () => [`${procRoot}/net/tcp`, `${procRoot}/net/tcp6`].map((f) => readFileSync(f, 'latin1')),
    },
    {
      name: "(a) readLiveTable('tcp', …, states {SYN_RECV})",
      note: "floodgate's route today (scan --state)",
      fn: async () => {
        const parsed = await readLiveTable('tcp', procRoot, undefined, { states: SYN_RECV });
        procCount = parsed.rows.length;
      },
    },
    {
      name: 'spawnSync ss -N NS -tanH state syn-recv (stdout captured)',
      note: 'reference: the kernel filtering, ss formatting, the pipe',
      fn: () => ssStates('syn-recv'),
    },
    {
      name: '(b) spawnSync ss -tanH state syn-recv state syn-sent + parseSs',
      note: 'asking the kernel to filter; the second state makes ss print the State column',
      fn: () => {
        ssCount = countSynRecv(ssStates('syn-recv', 'syn-sent'));
      },
    },
    {
      name: "(b') spawnSync ss -tanH state syn-recv, State column added, + parseSs",
      note: 'the same with one state; the text rewritten before parsing',
      fn: () => {
        ssCount1 = countSynRecv(ssStates('syn-recv').replace(/^(?=.)/gm, 'SYN-RECV '));
      },
    },
  ];
  log(`SYN_RECV only, in process: ${runs} interleaved rounds of ${cases.length}`);
  const wall: number[][] = cases.map(() => []);
  const user: number[][] = cases.map(() => []);
  const system: number[][] = cases.map(() => []);
  const child: number[][] = cases.map(() => []);
  const counts: { proc: number; ss: number; ss1: number }[] = [];
  for (let round = 0; round <= runs; round++) {
    for (const [i, c] of cases.entries()) {
      const child0 = childCpuMs();
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await c.fn();
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
      const cpu = process.cpuUsage(cpu0);
      if (round === 0) continue; // warm-up: JIT, page cache, slab
      wall[i]!.push(elapsed);
      user[i]!.push(cpu.user / 1000);
      system[i]!.push(cpu.system / 1000);
      child[i]!.push(childCpuMs() - child0);
    }
    // (a) and (b) ran one after the other: the same half-open sockets, less those that timed out.
    counts.push({ proc: procCount, ss: ssCount, ss1: ssCount1 });
  }
  const base = stats(wall[0]!).median;
  console.log(`\n### SYN_RECV only, in process (/proc/<server pid>/net against ss -N)\n`);
  console.log(
    `Interleaved rounds, median of ${runs} after one warm-up round. user/sys: this process's CPU (median); ss CPU: the spawned ss's user+sys (mean, 10 ms ticks).\n`,
  );
  console.log(
    markdownTable(
      ['what', 'median ms', 'min', 'max', 'user ms', 'sys ms', 'ss CPU ms', 'vs readFileSync', 'note'],
      cases.map((c, i) => {
        const w = stats(wall[i]!);
        const childMean = child[i]!.reduce((a, b) => a + b, 0) / child[i]!.length;
        return [
          c.name,
          ms(w.median),
          ms(w.min),
          ms(w.max),
          ms(stats(user[i]!).median),
          ms(stats(system[i]!).median),
          childMean > 0 ? ms(childMean) : '–',
          ratio(w.median, base),
          c.note,
        ];
      }),
      1,
    ),
  );
  const a = stats(wall[1]!).median;
  const b = stats(wall[3]!).median;
  console.log(
    `\nSYN_RECV only: (a) /proc + filter ${ms(a)} ms, (b) ss state syn-recv + parseSs ${ms(b)} ms: ${a <= b ? `/proc is cheaper (ss costs ${ratio(b, a)})` : `ss is cheaper (/proc costs ${ratio(a, b)})`}.`,
  );
  const b1 = stats(wall[4]!).median;
  console.log(`(b') with one state and the column added: ${ms(b1)} ms, ${ratio(b1, a)} of (a).`);
  const drift = counts.flatMap((c) => [c.proc - c.ss, c.proc - c.ss1]);
  console.log(
    `SYN_RECV counted per round, (a)/(b)/(b'), one after the other: ${counts.map((c) => `${c.proc}/${c.ss}/${c.ss1}`).join(', ')}; (a) − (b) and (a) − (b'): min ${Math.min(...drift)}, max ${Math.max(...drift)}.`,
  );
  const worst = Math.max(...drift.map(Math.abs));
  if (worst > Math.max(100, synRecv / 100))
    throw new Error(`(a) and (b) disagree by ${worst} SYN_RECV sockets: more than half-open sockets timing out`);
}

main()
  .catch((error: unknown) => {
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  })
  .finally(() => {
    teardown();
    // The server and client are killed; nothing else keeps this process alive.
  });
