// Benchmarks floodgate's bans end to end in a throw-away lab (two network namespaces, see lab/lab.ts):
//   1. ban throughput: 10k bans through `floodgate ban --from-file` into a running `floodgate run
//      --enforce`, per backend, beside the classic one `iptables -A` per address and the raw restore
//   2. time to ban: from the first SYN of a 30-connection half-open flood to the rule in the kernel
//   3. per-packet cost: a SYN flood against the server with 10k bans in place (none matching), per
//      backend and with no bans at all
//   4. memory: the daemon's RSS with 100k active bans and a 1M-row table, and the detector's alone on
//      a 1M-row table in process
//
// usage (root): sudo npx tsx scripts/bench-bans.ts [--quick] [--only 1,2,3,4] [--profile DIR]
//   --quick  fewer runs (about 2.5 minutes instead of about 4.5 on a busy 2-core machine)
//   --only   run only these parts (comma list of 1-4)
//   --profile DIR  CPU-profile the daemon and `floodgate ban` of part 1 and the 100k-ban daemon of
//            part 4 (also its heap: node --cpu-prof / --heap-prof into DIR) and print where their time
//            and memory go; the profiler slows them, so those timings read high
// Needs the build (npx tsc -p .), iproute2, iptables, ipset, nft, hping3. Every firewall and hping3
// command runs inside the lab's namespaces (removed at the end, on error and on Ctrl-C); addresses are
// documentation and benchmarking ranges only (192.0.2.0/24, 198.51.100.0/24, 198.18.0.0/15).
// Prints markdown tables on stdout, progress on stderr.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  SERVER_ENV,
  type Stats,
  childCpuMs,
  log,
  machineLine,
  markdownTable,
  ms,
  ratio,
  serviceNodeOptions,
  shebangFlags,
  stats,
} from './bench-harness.js';
import { generateTable, writeTable } from './bench-tables.js';
import { type Lab, createLab } from './lab/lab.js';
import { firewallInstance } from '../src/firewall/instance.js';

/** The instance id every benchmarked state directory is given, so that its firewall names are known. */
const BENCH = firewallInstance('0bec0bec');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/src/cli/main.cjs');
const DEFAULT_POLICY = readFileSync(path.join(ROOT, 'policies/default.yaml'), 'utf8');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', default: '1,2,3,4' },
    profile: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    `${readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('\nimport ')[0]!
      .split('\n')
      .map((l) => l.replace(/^\/\/ ?/, ''))
      .join('\n')}\n`,
  );
  process.exit(0);
}
const parts = new Set(args.only.split(',').map((p) => p.trim()));
for (const part of parts)
  if (!['1', '2', '3', '4'].includes(part))
    throw new Error(`expected --only to be a comma list of 1, 2, 3, 4, got ${JSON.stringify(args.only)}`);

const QUICK = args.quick;
const PROFILE_DIR = args.profile === undefined ? undefined : path.resolve(args.profile);
if (PROFILE_DIR !== undefined) mkdirSync(PROFILE_DIR, { recursive: true });
/** node flags for a profiled process (not allowed in NODE_OPTIONS), one profile file per process. */
function profileFlags(label: string): string[] {
  return PROFILE_DIR === undefined
    ? []
    : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${label}.cpuprofile`];
}
/** Runs per case; the classic per-address loop is slow, so it gets fewer. */
const RUNS = {
  throughput: QUICK ? 2 : 5,
  floor: QUICK ? 3 : 5,
  classic: QUICK ? 1 : 2,
  timeToBan: QUICK ? 3 : 5,
  flood: QUICK ? 2 : 3,
} as const;
const BACKENDS = ['iptables', 'ipset', 'nftables'] as const;
type Backend = (typeof BACKENDS)[number];
/** Backends timed in part 2; the goal is stated for iptables (the default), the others ride along. */
const TIME_TO_BAN_BACKENDS: readonly Backend[] = QUICK ? ['iptables'] : BACKENDS;
const BANS = 10_000;
const MEMORY_BANS = 100_000;
const TABLE_ROWS = 1_000_000;
const FLOOD_SECONDS = QUICK ? 2 : 3;
/** Every ban of every part is below this offset in 198.18.0.0/15; the flood comes from above. */
const FLOOD_SOURCE = '198.19.255.200';
const CLASSIC_FIRST = 1_000;
const CLASSIC_TAIL = 100;
const GOALS = {
  throughput: { iptables: 3000, ipset: 1000, nftables: 1000 } as Record<Backend, number>,
  timeToBan: 2000,
  rssMiB: 150,
};

// ---------------------------------------------------------------------------------------------
// addresses, policies, small helpers

/** The n-th address of 198.18.0.0/15 (RFC 2544's benchmarking range), n from 1. */
function benchAddress(n: number): string {
  if (n < 1 || n > 131_070) throw new Error(`benchAddress: ${n} is outside 198.18.0.0/15`);
  const value = ((198 << 24) | (18 << 16)) + n;
  return `${(value >>> 24) & 255}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}
const benchAddresses = (count: number, first = 1): string[] =>
  Array.from({ length: count }, (_, i) => benchAddress(first + i));

/** The default policy with `ban:` and the backend replaced; checked so that a changed default fails loudly. */
function policyText(backend: Backend, ban: string, interval?: string): string {
  let text = DEFAULT_POLICY.replace(/^ban: .*$/m, `ban: ${ban}`).replace(
    /^firewall: \{backend: iptables,/m,
    `firewall: {backend: ${backend},`,
  );
  if (interval !== undefined) text = text.replace(/^interval: .*$/m, `interval: ${interval}`);
  if (
    !text.includes(`ban: ${ban}`) ||
    !text.includes(`backend: ${backend},`) ||
    (interval !== undefined && !text.includes(`interval: ${interval}`))
  ) {
    throw new Error(
      'policies/default.yaml no longer has the `interval:`, `ban:` or `firewall:` line this benchmark rewrites',
    );
  }
  return text;
}
const BULK_BAN = '{ttl: 1h, max_ttl: 24h, max_active: 20000, rate: 100000/s, kill_connections: false}';
const MEMORY_BAN = '{ttl: 1h, max_ttl: 24h, max_active: 200000, rate: 1000000/s, kill_connections: false}';

const seconds = (msValue: number): string => (msValue / 1000).toFixed(2);
const range = (s: Stats, format: (n: number) => string = seconds): string => `${format(s.min)}–${format(s.max)}`;
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const met = (ok: boolean): string => (ok ? 'yes' : '**no**');
const kpps = (pps: number): string => `${(pps / 1000).toFixed(1)}k`;

// ---------------------------------------------------------------------------------------------
// the lab, our processes in it, and their removal whatever happens

let lab: Lab | undefined;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fg-bench-bans-'));
const children = new Set<ChildProcess>();

function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
function removeTmp(): void {
  rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', () => {
  killChildren();
  removeTmp();
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    log(`${signal}: removing the lab`);
    killChildren();
    removeTmp();
    // The lab's own handler kills everything in its namespaces and deletes them; wait for it.
    void (lab?.destroy() ?? Promise.resolve()).finally(() => process.exit(128 + os.constants.signals[signal]));
  });
}

function theLab(): Lab {
  if (lab === undefined) throw new Error('no lab');
  return lab;
}

/** A command in the server namespace; throws with its stderr on failure unless `allowFail`. */
async function srv(
  argv: string[],
  opts: { input?: string; timeoutMs?: number; allowFail?: boolean; env?: Record<string, string> } = {},
) {
  const result = await theLab().execServer(argv, {
    ...(opts.input !== undefined && { input: opts.input }),
    ...(opts.env && { env: opts.env }),
    timeoutMs: opts.timeoutMs ?? 120_000,
  });
  if (result.exitCode !== 0 && !opts.allowFail)
    throw new Error(
      `${argv.join(' ')} (server ns) exited ${result.exitCode}: ${(result.stderr || result.stdout).trim().slice(0, 500)}`,
    );
  return result;
}

/** Starts a process in a lab namespace; its output goes to `logFile`. */
function spawnIn(ns: string, argv: string[], logFile: string, env: Record<string, string> = {}): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
    stdio: ['ignore', fd, fd],
    env: { ...SERVER_ENV, ...env },
  });
  closeSync(fd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

// ---------------------------------------------------------------------------------------------
// the firewall in the server namespace

/** floodgate's IPv4 rules or elements in the kernel now. */
async function kernelCount(backend: Backend): Promise<number> {
  switch (backend) {
    case 'iptables': {
      const { stdout } = await srv(['iptables', '-w', '-S', 'INPUT']);
      return stdout
        .split('\n')
        .filter((line) => line.startsWith('-A INPUT -s ') && line.includes(`--comment ${BENCH.tag} `)).length;
    }
    case 'ipset': {
      const result = await srv(['ipset', 'list', BENCH.sets[4], '-t'], { allowFail: true });
      return result.exitCode === 0 ? Number(/Number of entries: (\d+)/.exec(result.stdout)?.[1] ?? 0) : 0;
    }
    case 'nftables': {
      const result = await srv(['nft', '-j', 'list', 'set', 'inet', BENCH.table, 'hosts4'], { allowFail: true });
      if (result.exitCode !== 0) return 0;
      const parsed = JSON.parse(result.stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
      return parsed.nftables.reduce((n, item) => n + (item.set?.elem?.length ?? 0), 0);
    }
  }
}

/** Whether `address` is banned in the kernel now (one cheap command, for polling). */
async function isBanned(backend: Backend, address: string): Promise<boolean> {
  switch (backend) {
    case 'iptables':
      return (await srv(['iptables', '-w', '-S', 'INPUT'])).stdout.includes(`-A INPUT -s ${address}/32 `);
    case 'ipset':
      return (await srv(['ipset', 'test', BENCH.sets[4], address], { allowFail: true })).exitCode === 0;
    case 'nftables':
      return (
        (await srv(['nft', 'get', 'element', 'inet', BENCH.table, 'hosts4', `{ ${address} }`], { allowFail: true }))
          .exitCode === 0
      );
  }
}

/** Removes every rule, set and table of every backend (and of the raw baselines) in the server namespace. */
async function resetFirewall(): Promise<void> {
  for (const argv of [
    ['iptables', '-w', '-F', 'INPUT'],
    ['ip6tables', '-w', '-F', 'INPUT'],
    ['ipset', 'destroy', BENCH.sets[4]],
    ['ipset', 'destroy', BENCH.sets[6]],
    ['ipset', 'destroy', 'bench4'],
    ['nft', 'delete', 'table', 'inet', BENCH.table],
  ]) {
    await srv(argv, { allowFail: true });
  }
  for (const backend of BACKENDS) {
    const left = await kernelCount(backend);
    if (left !== 0) throw new Error(`resetFirewall: ${left} ${backend} entries left in the server namespace`);
  }
}

// ---------------------------------------------------------------------------------------------
// the daemon

interface Daemon {
  readonly child: ChildProcess;
  /** node's pid: `ip netns exec` execs the command, so it is the spawned pid. */
  readonly pid: number;
  readonly logFile: string;
}

async function startDaemon(
  name: string,
  policy: string,
  extraEnv: Record<string, string> = {},
  nodeFlags: string[] = [],
): Promise<{ daemon: Daemon; stateDir: string; policyFile: string }> {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const stateDir = path.join(dir, 'state');
  // A known instance id, so that the rule comment, set and table names below are known up front.
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(path.join(stateDir, 'instance-id'), `${BENCH.id}\n`, { mode: 0o600 });
  const policyFile = path.join(dir, 'policy.yaml');
  const logFile = path.join(dir, 'daemon.log');
  writeFileSync(policyFile, policy);
  // Started as the systemd unit starts it: the executable's #! line (and its node flags, if any) and
  // the unit's NODE_OPTIONS; with profiling flags, node is given those flags as well.
  const argv = [process.execPath, ...shebangFlags(CLI), ...nodeFlags, CLI];
  const child = spawnIn(
    theLab().server,
    [...argv, 'run', '--enforce', '--policy', policyFile, '--state-dir', stateDir],
    logFile,
    { FLOODGATE_LOG_LEVEL: 'debug', NODE_OPTIONS: serviceNodeOptions(), ...extraEnv },
  );
  const socket = path.join(stateDir, 'control.sock');
  const deadline = Date.now() + 30_000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `floodgate run did not come up (${child.exitCode ?? child.signalCode ?? 'timeout'}): ${readFileSync(logFile, 'utf8').slice(-1500)}`,
      );
    }
    await sleep(20);
  }
  const pid = child.pid!;
  if (!readlinkSync(`/proc/${pid}/exe`).includes('node'))
    throw new Error(`pid ${pid} is not node: ip netns exec forked`);
  return { daemon: { child, pid, logFile }, stateDir, policyFile };
}

async function stopDaemon(daemon: Daemon): Promise<void> {
  const { child } = daemon;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timeout = sleep(30_000).then(() => 'timeout');
  if ((await Promise.race([exited, timeout])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

interface LogEvent {
  readonly level: number;
  readonly time: string;
  readonly event?: string;
  readonly msg?: string;
  readonly ms?: number;
  readonly argv?: string[];
}

function readLog(file: string, fromByte = 0): LogEvent[] {
  const text = readFileSync(file).subarray(fromByte).toString('utf8');
  const events: LogEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      events.push(JSON.parse(line) as LogEvent);
    } catch {
      /* a line cut by a kill */
    }
  }
  return events;
}

/** The firewall commands the daemon ran, summed by tool: "iptables-restore 812 ms, iptables 64 ms (2x)". */
function commandSummary(events: readonly LogEvent[]): { totalMs: number; text: string } {
  const byTool = new Map<string, { ms: number; n: number }>();
  for (const e of events) {
    if (e.event !== 'command' || e.argv === undefined) continue;
    const tool = e.argv[0]!;
    const entry = byTool.get(tool) ?? { ms: 0, n: 0 };
    entry.ms += e.ms ?? 0;
    entry.n++;
    byTool.set(tool, entry);
  }
  const totalMs = [...byTool.values()].reduce((sum, e) => sum + e.ms, 0);
  const text = [...byTool]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([tool, e]) => `${tool} ${e.ms} ms${e.n > 1 ? ` (${e.n}x)` : ''}`)
    .join(', ');
  return { totalMs, text: text || 'none' };
}

function procStatus(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** utime + stime of one process, ms. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100; // USER_HZ; /proc/<pid>/stat counts in these on every Linux ABI floodgate targets

/** `floodgate ban --from-file` in the server namespace, timed from start to exit. */
async function banFromFile(
  file: string,
  stateDir: string,
  policyFile: string,
  expected: number,
  direct = false,
  nodeFlags: string[] = [],
): Promise<{ ms: number; stdout: string }> {
  const argv = [
    process.execPath,
    ...nodeFlags,
    CLI,
    'ban',
    '--from-file',
    file,
    '--state-dir',
    stateDir,
    '--policy',
    policyFile,
    ...(direct ? ['--enforce'] : []),
  ];
  const { ms: took, value: result } = await timed(() => srv(argv, { timeoutMs: 300_000 }));
  const summary = result.stdout.trim().split('\n').pop() ?? '';
  if (!summary.startsWith(`${expected} banned, 0 already banned, 0 refused`))
    throw new Error(`floodgate ban: unexpected result: ${summary}\n${result.stderr.slice(-1000)}`);
  if (!direct && !summary.includes('through the running daemon'))
    throw new Error(`floodgate ban did not go through the daemon: ${summary}`);
  return { ms: took, stdout: result.stdout };
}

/** Polls the kernel until `expected` entries are there; the time since `t0` when the check that saw them began. */
async function waitForCount(backend: Backend, expected: number, t0: number, timeoutMs = 60_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const at = performance.now();
    const n = await kernelCount(backend);
    if (n === expected) return at - t0;
    if (n > expected || performance.now() > deadline)
      throw new Error(`${backend}: ${n} entries in the kernel, expected ${expected}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// part 1: ban throughput

/** Where one `floodgate ban` of 10k goes, from the bench's clock and the daemon's log (ms resolution). */
const PHASES = [
  'CLI start → daemon logs the 1st ban (node start, imports, read + check 10k targets, request)',
  '1st → last ban logged (10k Enforcer.ban: store, queue, one log line each)',
  'last ban → firewall command starts (store saved, batch built)',
  'firewall command(s)',
  'last command done → CLI exits (response, output)',
] as const;

interface ThroughputResult {
  readonly backend: Backend;
  readonly inKernel: Stats;
  readonly commandsMs: Stats;
  readonly commands: string;
  readonly inDaemonMs: Stats;
  /** Median ms of each phase, from the daemon's log: see PHASES. */
  readonly phases: number[];
  readonly floor: Stats;
}

async function partThroughput(): Promise<{ rows: ThroughputResult[]; classic: ClassicResult; startup: Stats }> {
  log(`\n== 1. ban throughput: ${BANS} bans per backend, ${RUNS.throughput} runs each`);
  const banFile = path.join(tmp, 'bans-10k.txt');
  writeFileSync(banFile, `${benchAddresses(BANS).join('\n')}\n`);
  const samples = new Map<
    Backend,
    { inKernel: number[]; commandsMs: number[]; inDaemon: number[]; commands: string[]; phases: number[][] }
  >();
  for (const backend of BACKENDS)
    samples.set(backend, { inKernel: [], commandsMs: [], inDaemon: [], commands: [], phases: PHASES.map(() => []) });

  // Interleaved: one run of each backend per round, so that a burst of load on the machine hits all.
  for (let run = 0; run < RUNS.throughput; run++) {
    for (const backend of BACKENDS) {
      await resetFirewall();
      const { daemon, stateDir, policyFile } = await startDaemon(
        `p1-${backend}-${run}`,
        policyText(backend, BULK_BAN),
        {},
        profileFlags(`daemon-${backend}-${run}`),
      );
      try {
        const logFrom = statSync(daemon.logFile).size;
        const wallStart = Date.now();
        const t0 = performance.now();
        const ban = await banFromFile(
          banFile,
          stateDir,
          policyFile,
          BANS,
          false,
          profileFlags(`ban-${backend}-${run}`),
        );
        const wallEnd = Date.now();
        const inKernel = Math.max(ban.ms, await waitForCount(backend, BANS, t0));
        const events = readLog(daemon.logFile, logFrom);
        const bans = events.filter((e) => e.event === 'ban');
        const commands = commandSummary(events);
        const s = samples.get(backend)!;
        s.inKernel.push(inKernel);
        s.commandsMs.push(commands.totalMs);
        s.commands.push(commands.text);
        // From the first ban the daemon logged to the last firewall command's end: the daemon's share.
        const lastCommand = events.filter((e) => e.event === 'command').pop();
        if (bans.length > 0 && lastCommand) s.inDaemon.push(Date.parse(lastCommand.time) - Date.parse(bans[0]!.time));
        const firewall = events.filter(
          (e) => e.event === 'command' && Date.parse(e.time) >= Date.parse(bans.at(-1)?.time ?? ''),
        );
        if (bans.length > 0 && firewall.length > 0) {
          const firstBan = Date.parse(bans[0]!.time);
          const lastBan = Date.parse(bans.at(-1)!.time);
          const commandsStart = Date.parse(firewall[0]!.time) - (firewall[0]!.ms ?? 0);
          const commandsEnd = Date.parse(firewall.at(-1)!.time);
          const phases = [
            firstBan - wallStart,
            lastBan - firstBan,
            commandsStart - lastBan,
            commandsEnd - commandsStart,
            wallEnd - commandsEnd,
          ];
          for (const [i, v] of phases.entries()) s.phases[i]!.push(v);
        }
        log(`  ${backend} run ${run + 1}: ${seconds(inKernel)} s (firewall commands: ${commands.text})`);
      } finally {
        await stopDaemon(daemon);
      }
    }
  }
  await resetFirewall();

  // The floor: the same 10k in one raw restore, with the set or table made beforehand (as init does).
  const addresses = benchAddresses(BANS);
  const floors = new Map<Backend, number[]>();
  const iptablesInput = `*filter\n${addresses.map((a) => `-A INPUT -s ${a}/32 -m comment --comment ${BENCH.tag} -j DROP`).join('\n')}\nCOMMIT\n`;
  const ipsetInput = `${addresses.map((a) => `add ${BENCH.sets[4]} ${a} timeout 4200 -exist`).join('\n')}\n`;
  const nftInput = `${addresses.map((a) => `add element inet ${BENCH.table} hosts4 { ${a} timeout 4200s }`).join('\n')}\n`;
  log(`  floor: raw restore of the same ${BANS}, ${RUNS.floor} runs each`);
  for (let run = 0; run < RUNS.floor; run++) {
    for (const backend of BACKENDS) {
      await resetFirewall();
      if (backend === 'ipset')
        await srv(['ipset', 'create', BENCH.sets[4], 'hash:net', 'family', 'inet', 'timeout', '0', 'maxelem', '20000']);
      if (backend === 'nftables') {
        await srv(['nft', '-f', '-'], {
          input: `add table inet ${BENCH.table}\nadd set inet ${BENCH.table} hosts4 { type ipv4_addr; flags timeout; size 20000; }\n`,
        });
      }
      const t0 = performance.now();
      if (backend === 'iptables') await srv(['iptables-restore', '-w', '--noflush'], { input: iptablesInput });
      else if (backend === 'ipset') await srv(['ipset', 'restore', '-exist'], { input: ipsetInput });
      else await srv(['nft', '-f', '-'], { input: nftInput });
      const took = performance.now() - t0;
      if ((await kernelCount(backend)) !== BANS) throw new Error(`floor ${backend}: not every entry arrived`);
      floors.set(backend, [...(floors.get(backend) ?? []), took]);
    }
  }
  await resetFirewall();

  // What every `floodgate ban` pays before it does anything: node and the CLI starting in the namespace.
  const startupSamples: number[] = [];
  for (let run = 0; run < 5; run++)
    startupSamples.push((await timed(() => srv([process.execPath, CLI, '--version']))).ms);

  const classic = await partClassic();
  const rows = BACKENDS.map((backend) => {
    const s = samples.get(backend)!;
    const medianIndex = s.inKernel.indexOf([...s.inKernel].sort((a, b) => a - b)[s.inKernel.length >> 1]!);
    return {
      backend,
      inKernel: stats(s.inKernel),
      commandsMs: stats(s.commandsMs),
      commands: s.commands[medianIndex] ?? '',
      inDaemonMs: stats(s.inDaemon.length > 0 ? s.inDaemon : [NaN]),
      phases: s.phases.map((p) => (p.length > 0 ? stats(p).median : NaN)),
      floor: stats(floors.get(backend)!),
    };
  });
  return { rows, classic, startup: stats(startupSamples) };
}

interface ClassicResult {
  /** Mean ms per `iptables -A` into a chain of 0..1k rules, and of 9.9k..10k rules. */
  readonly firstPerAdd: Stats;
  readonly tailPerAdd: Stats;
  readonly firstTotal: Stats;
  readonly extrapolated10k: number;
}

/** DDoS-Deflate style: one `iptables -w -A INPUT -s X -j DROP` per address, from a shell loop. */
async function partClassic(): Promise<ClassicResult> {
  log(
    `  classic: one iptables -A per address, ${CLASSIC_FIRST} into an empty chain and ${CLASSIC_TAIL} into a chain of ${BANS - CLASSIC_TAIL}, ${RUNS.classic} run(s) each`,
  );
  const loop = (file: string): string[] => [
    'sh',
    '-c',
    'while read -r a; do iptables -w -A INPUT -s "$a" -j DROP || exit 1; done < "$0"',
    file,
  ];
  const first = path.join(tmp, 'classic-first.txt');
  writeFileSync(first, `${benchAddresses(CLASSIC_FIRST).join('\n')}\n`);
  const tail = path.join(tmp, 'classic-tail.txt');
  writeFileSync(tail, `${benchAddresses(CLASSIC_TAIL, 60_001).join('\n')}\n`);
  const preload = `*filter\n${benchAddresses(BANS - CLASSIC_TAIL, 20_001)
    .map((a) => `-A INPUT -s ${a}/32 -j DROP`)
    .join('\n')}\nCOMMIT\n`;
  const firstTotal: number[] = [];
  const tailTotal: number[] = [];
  const countDrops = async () =>
    (await srv(['iptables', '-w', '-S', 'INPUT'])).stdout.split('\n').filter((l) => l.startsWith('-A INPUT -s '))
      .length;
  for (let run = 0; run < RUNS.classic; run++) {
    await resetFirewall();
    firstTotal.push((await timed(() => srv(loop(first), { timeoutMs: 600_000 }))).ms);
    if ((await countDrops()) !== CLASSIC_FIRST) throw new Error('classic: not every rule arrived');
    await resetFirewall();
    await srv(['iptables-restore', '-w', '--noflush'], { input: preload });
    tailTotal.push((await timed(() => srv(loop(tail), { timeoutMs: 600_000 }))).ms);
    if ((await countDrops()) !== BANS) throw new Error('classic: not every rule arrived');
    log(
      `    run ${run + 1}: ${CLASSIC_FIRST} into 0: ${seconds(firstTotal.at(-1)!)} s; ${CLASSIC_TAIL} into ${BANS - CLASSIC_TAIL}: ${seconds(tailTotal.at(-1)!)} s`,
    );
  }
  await resetFirewall();
  const firstPerAdd = stats(firstTotal.map((t) => t / CLASSIC_FIRST));
  const tailPerAdd = stats(tailTotal.map((t) => t / CLASSIC_TAIL));
  // Linear in the chain length between the two measured points (means at 500 and 9950 rules): the
  // 10k adds cost 10k times the cost at the middle, 4999.5 rules.
  const slope = (tailPerAdd.median - firstPerAdd.median) / (BANS - CLASSIC_TAIL / 2 - CLASSIC_FIRST / 2);
  const extrapolated10k = BANS * (firstPerAdd.median + slope * ((BANS - 1) / 2 - CLASSIC_FIRST / 2));
  return { firstPerAdd, tailPerAdd, firstTotal: stats(firstTotal), extrapolated10k };
}

// ---------------------------------------------------------------------------------------------
// --profile: where a node process's CPU time went, from its .cpuprofile

interface CpuProfile {
  readonly nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  readonly samples: number[];
  readonly timeDeltas: number[];
}

/** Self and inclusive ms per function (name file:line), busiest first; idle time left out. */
function profileSummary(file: string, top = 12): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const parent = new Map<number, number>();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (id: number): string => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const where =
      url === ''
        ? ''
        : ` ${url
            .replace(/^file:\/\//, '')
            .replace(`${ROOT}/`, '')
            .replace(/.*node_modules\//, '')}:${lineNumber + 1}`;
    return `${functionName || '(anonymous)'}${where}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const name = label(id);
    if (name.startsWith('(idle)')) return;
    busy += us;
    self.set(name, (self.get(name) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = label(at);
      if (seen.has(frame)) continue;
      seen.add(frame);
      inclusive.set(frame, (inclusive.get(frame) ?? 0) + us);
    }
  });
  const rows = (map: Map<string, number>) =>
    [...map]
      .filter(([name]) => !name.startsWith('(root)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => [name, ms(us / 1000), `${((100 * us) / busy).toFixed(0)}%`]);
  return [
    `${path.basename(file)}: ${ms(busy / 1000)} ms of CPU outside (idle)`,
    '',
    markdownTable(['self time', 'ms', 'share'], rows(self)),
    '',
    markdownTable(['inclusive time', 'ms', 'share'], rows(inclusive)),
    '',
  ].join('\n');
}

interface HeapProfileNode {
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly selfSize: number;
  readonly children: HeapProfileNode[];
}

/** node --heap-prof: the sampled allocations still live when the process ended, by allocating function and by its caller chain. */
function heapProfileSummary(file: string, top = 12): string {
  const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapProfileNode };
  const frame = (node: HeapProfileNode): string => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where =
      url === ''
        ? ''
        : ` ${url
            .replace(/^file:\/\//, '')
            .replace(`${ROOT}/`, '')
            .replace(/.*node_modules\//, '')}:${lineNumber + 1}`;
    return `${functionName || '(anonymous)'}${where}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapProfileNode, stack: string[]): number => {
    const name = frame(node);
    let size = node.selfSize;
    if (node.selfSize > 0) self.set(name, (self.get(name) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const child of node.children) size += walk(child, [...stack, name]);
    if (!stack.includes(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + size);
    return size;
  };
  walk(head, []);
  const rows = (map: Map<string, number>) =>
    [...map]
      .filter(([name]) => !name.startsWith('(root)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, bytes]) => [name, mib(bytes), `${((100 * bytes) / total).toFixed(0)}%`]);
  return [
    `${path.basename(file)}: ${mib(total)} MiB of sampled allocations live at exit`,
    '',
    markdownTable(['allocated by (self)', 'MiB', 'share'], rows(self)),
    '',
    markdownTable(['allocated under (inclusive)', 'MiB', 'share'], rows(inclusive)),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// part 2: time to ban

interface TimeToBanResult {
  readonly backend: Backend;
  readonly total: Stats;
  readonly detect: Stats;
  readonly enforce: Stats;
  readonly poll: Stats;
}

async function partTimeToBan(): Promise<TimeToBanResult[]> {
  log(
    `\n== 2. time to ban: 30 half-open connections from one source, interval 1s, default thresholds, ${RUNS.timeToBan} runs per backend`,
  );
  const out: TimeToBanResult[] = [];
  let sourceNo = 10;
  for (const backend of TIME_TO_BAN_BACKENDS) {
    const total: number[] = [];
    const detect: number[] = [];
    const enforce: number[] = [];
    const polls: number[] = [];
    for (let run = 0; run < RUNS.timeToBan; run++) {
      const source = `198.51.100.${sourceNo++}`;
      await resetFirewall();
      const { daemon } = await startDaemon(
        `p2-${backend}-${run}`,
        policyText(backend, '{ttl: 10m, max_ttl: 24h, max_active: 5000, rate: 20/s, kill_connections: true}', '1s'),
      );
      try {
        // The source address and its SYN-ACK drop rule first, so that the timed call sends SYNs at once.
        await theLab().synFlood({ sources: [source], perSource: 0, port: 80 });
        // Spread the flood's start over the daemon's 1 s scan cycle (it scans as soon as it is up).
        await sleep(150 + (1000 * run) / RUNS.timeToBan);
        const logFrom = statSync(daemon.logFile).size;
        const wallStart = Date.now();
        const t0 = performance.now();
        const flood = theLab()
          .synFlood({ sources: [source], perSource: 30, port: 80 })
          .catch((error: Error) => error);
        let seenAt = NaN;
        while (performance.now() - t0 < 15_000) {
          const p0 = performance.now();
          const banned = await isBanned(backend, source);
          polls.push(performance.now() - p0);
          // The end of the check that saw the rule: an upper bound by at most one check.
          if (banned) {
            seenAt = performance.now() - t0;
            break;
          }
          await sleep(20);
        }
        const floodResult = await flood;
        if (Number.isNaN(seenAt))
          throw new Error(
            `${backend}: ${source} not banned within 15 s${floodResult instanceof Error ? ` (flood: ${floodResult.message})` : ''}: ${readFileSync(daemon.logFile, 'utf8').slice(-1500)}`,
          );
        const banEvent = readLog(daemon.logFile, logFrom).find((e) => e.event === 'ban');
        total.push(seenAt);
        if (banEvent) {
          const decided = Date.parse(banEvent.time) - wallStart;
          detect.push(decided);
          enforce.push(seenAt - decided);
        }
        log(
          `  ${backend} run ${run + 1}: ${seconds(seenAt)} s (decided after ${banEvent ? seconds(Date.parse(banEvent.time) - wallStart) : '?'} s)`,
        );
      } finally {
        await stopDaemon(daemon);
        await theLab().stopTraffic();
      }
    }
    out.push({
      backend,
      total: stats(total),
      detect: stats(detect.length ? detect : [NaN]),
      enforce: stats(enforce.length ? enforce : [NaN]),
      poll: stats(polls),
    });
  }
  await resetFirewall();
  return out;
}

// ---------------------------------------------------------------------------------------------
// part 3: per-packet cost

interface FloodResult {
  readonly config: string;
  readonly rules: string;
  readonly rxPps: Stats;
  readonly inSegsPps: Stats;
  readonly sentPps: Stats;
  readonly cpuUsPerPacket: Stats;
  readonly softirqShare: Stats;
}

async function serverCounters(): Promise<{ rx: number; inSegs: number }> {
  const { stdout } = await srv([
    'sh',
    '-c',
    `cat /sys/class/net/${theLab().serverIf}/statistics/rx_packets /proc/net/snmp`,
  ]);
  const [rx, ...snmp] = stdout.split('\n');
  const tcp = snmp.filter((line) => line.startsWith('Tcp:'));
  const names = tcp[0]!.split(/\s+/);
  const values = tcp[1]!.split(/\s+/);
  return { rx: Number(rx), inSegs: Number(values[names.indexOf('InSegs')]) };
}

/** The cpu line of /proc/stat: [total, softirq] in ticks, all cores (the host's, busy or not). */
function cpuTicks(): [number, number] {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  return [fields.reduce((a, b) => a + b, 0), fields[6]!];
}

/** One bounded hping3 SYN flood from the attacker namespace; rates and the flood's own CPU per packet. */
async function floodOnce(): Promise<{
  rxPps: number;
  inSegsPps: number;
  sentPps: number;
  cpuUsPerPacket: number;
  softirqShare: number;
}> {
  const L = theLab();
  const before = await serverCounters();
  const [total0, softirq0] = cpuTicks();
  const cpu0 = childCpuMs();
  const outFile = path.join(tmp, 'hping3.log');
  rmSync(outFile, { force: true });
  const t0 = performance.now();
  // timeout(1) bounds it; hping3 prints its statistics on the SIGINT.
  const child = spawnIn(
    L.attacker,
    [
      'timeout',
      '-s',
      'INT',
      '-k',
      '5',
      String(FLOOD_SECONDS),
      'hping3',
      '-q',
      '-S',
      '-p',
      '80',
      '--flood',
      '-a',
      FLOOD_SOURCE,
      L.serverAddr4,
    ],
    outFile,
  );
  const [code] = (await once(child, 'exit')) as [number | null];
  const elapsed = (performance.now() - t0) / 1000;
  // The flood's CPU, user + system: without IRQ time accounting the softirq work that receives its
  // packets (on the sending CPU, for a veth pair) is charged to it.
  const cpu = childCpuMs() - cpu0;
  const [total1, softirq1] = cpuTicks();
  const after = await serverCounters();
  const output = readFileSync(outFile, 'utf8');
  const sent = Number(/(\d+) packets transmitted/.exec(output)?.[1] ?? NaN);
  if (code !== 0 && code !== 124) throw new Error(`hping3 exited ${code}: ${output.slice(-500)}`);
  const rx = after.rx - before.rx;
  return {
    rxPps: rx / elapsed,
    inSegsPps: (after.inSegs - before.inSegs) / elapsed,
    sentPps: sent / elapsed,
    cpuUsPerPacket: (cpu * 1000) / rx,
    softirqShare: (softirq1 - softirq0) / Math.max(1, total1 - total0),
  };
}

async function partFlood(): Promise<FloodResult[]> {
  log(
    `\n== 3. per-packet cost: hping3 SYN flood for ${FLOOD_SECONDS} s from ${FLOOD_SOURCE}, ${BANS} bans in place, ${RUNS.flood} runs per case`,
  );
  // SYN cookies always: every SYN costs the server the same (no request sockets piling up); the
  // SYN-ACKs to the spoofed source go nowhere (a blackhole route), so the wire carries only the flood.
  await srv(['sysctl', '-q', '-w', 'net.ipv4.tcp_syncookies=2']);
  await srv(['ip', 'route', 'replace', 'blackhole', '198.18.0.0/15']);
  const banFile = path.join(tmp, 'bans-10k.txt');
  writeFileSync(banFile, `${benchAddresses(BANS).join('\n')}\n`);
  const out: FloodResult[] = [];
  try {
    for (const config of ['none', ...BACKENDS] as const) {
      await resetFirewall();
      let rules = 'no rule at all';
      if (config !== 'none') {
        const dir = path.join(tmp, `p3-${config}`);
        mkdirSync(dir, { recursive: true });
        const policyFile = path.join(dir, 'policy.yaml');
        writeFileSync(policyFile, policyText(config, BULK_BAN));
        // No daemon: the manual command applies the bans directly under the state lock.
        await banFromFile(banFile, path.join(dir, 'state'), policyFile, BANS, true);
        if ((await kernelCount(config)) !== BANS) throw new Error(`${config}: the 10k bans are not all in the kernel`);
        rules =
          config === 'iptables'
            ? `${BANS} rules in INPUT`
            : config === 'ipset'
              ? `1 rule, set of ${BANS}`
              : `4 rules, set of ${BANS}`;
      }
      if (await isBanned(config === 'none' ? 'iptables' : config, FLOOD_SOURCE))
        throw new Error('the flood source is banned');
      const runs: Awaited<ReturnType<typeof floodOnce>>[] = [];
      for (let run = 0; run < RUNS.flood; run++) {
        runs.push(await floodOnce());
        const r = runs.at(-1)!;
        log(
          `  ${config} run ${run + 1}: server received ${kpps(r.rxPps)} pkt/s (TCP InSegs ${kpps(r.inSegsPps)}/s), flood CPU ${r.cpuUsPerPacket.toFixed(2)} µs/pkt`,
        );
        await sleep(300);
      }
      out.push({
        config: config === 'none' ? 'no bans (baseline)' : config,
        rules,
        rxPps: stats(runs.map((r) => r.rxPps)),
        inSegsPps: stats(runs.map((r) => r.inSegsPps)),
        sentPps: stats(runs.map((r) => r.sentPps)),
        cpuUsPerPacket: stats(runs.map((r) => r.cpuUsPerPacket)),
        softirqShare: stats(runs.map((r) => r.softirqShare)),
      });
    }
  } finally {
    await resetFirewall();
    await srv(['ip', 'route', 'del', 'blackhole', '198.18.0.0/15'], { allowFail: true });
    await srv(['sysctl', '-q', '-w', 'net.ipv4.tcp_syncookies=0']);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// part 4: memory

interface DaemonMemory {
  readonly idle: { rss: number; hwm: number };
  /** VmRSS sampled while holding the bans, before the large table. */
  readonly withBans: RssSamples;
  /** VmRSS sampled while holding the bans and scanning the large table every second. */
  readonly withTable: RssSamples;
  /** VmHWM at the end: the peak of the whole run, the bulk load of the bans included. */
  readonly hwm: number;
  readonly banMs: number;
  readonly windowSeconds: number;
  readonly lastScan: { durationMs: number; sockets: number };
  readonly active: number;
  readonly commands: string;
}

interface RssSamples {
  readonly median: number;
  readonly max: number;
  readonly last: number;
  readonly cpuMsPerSecond: number;
}

/** VmRSS of `pid` sampled every 200 ms for `ms` (median, highest, last), and its CPU per second. */
async function sampleRss(pid: number, ms: number): Promise<RssSamples> {
  const cpu0 = processCpuMs(pid);
  const t0 = performance.now();
  const samples: number[] = [];
  while (performance.now() - t0 < ms) {
    samples.push(procStatus(pid).rss);
    await sleep(200);
  }
  const cpuMsPerSecond = (processCpuMs(pid) - cpu0) / ((performance.now() - t0) / 1000);
  return { median: stats(samples).median, max: Math.max(...samples), last: samples.at(-1)!, cpuMsPerSecond };
}

/** Sources of the daemon's large table: 198.19.136.0 up to the end of 198.18.0.0/15, above every ban. */
const TABLE_RANGE = { first: ((198 << 24) | (19 << 16) | (136 << 8)) >>> 0, count: 120 * 256 };

/**
 * The daemon with 100k active bans and a 1M-row table, as the issue asks: it reads its tables from
 * a directory named by FLOODGATE_PROC_ROOT, first copies of the server namespace's own (a few
 * sockets), then a generated 1M-row /proc/net/tcp whose sources lie in 198.18.0.0/15 above the bans.
 * The window covers at least one reconcile (every 30 s), when the daemon lists the whole set.
 */
async function partDaemonMemory(): Promise<DaemonMemory> {
  const windowSeconds = QUICK ? 35 : 65;
  log(
    `\n== 4a. daemon memory: ${MEMORY_BANS} bans, then a ${TABLE_ROWS}-row table (ipset, enforce, interval 1s, ${windowSeconds} s)`,
  );
  await resetFirewall();
  const banFile = path.join(tmp, 'bans-100k.txt');
  writeFileSync(banFile, `${benchAddresses(MEMORY_BANS).join('\n')}\n`);
  const procRoot = path.join(tmp, 'p4-proc');
  mkdirSync(path.join(procRoot, 'net'), { recursive: true });
  for (const file of ['tcp', 'tcp6', 'udp', 'udp6', 'netstat'])
    writeFileSync(path.join(procRoot, 'net', file), (await srv(['cat', `/proc/net/${file}`])).stdout);
  const largeTable = path.join(procRoot, 'tcp-1M');
  writeTable(generateTable(TABLE_ROWS, 'realistic', undefined, TABLE_RANGE), 'proc', largeTable);
  const heapFlags =
    PROFILE_DIR === undefined
      ? []
      : ['--heap-prof', `--heap-prof-dir=${PROFILE_DIR}`, '--heap-prof-name=daemon-100k.heapprofile'];
  const { daemon, stateDir, policyFile } = await startDaemon(
    'p4-daemon',
    policyText('ipset', MEMORY_BAN, '1s'),
    { FLOODGATE_PROC_ROOT: procRoot },
    [...profileFlags('daemon-100k'), ...heapFlags],
  );
  try {
    await sleep(3000);
    const idle = procStatus(daemon.pid);
    const logFrom = statSync(daemon.logFile).size;
    const t0 = performance.now();
    await banFromFile(banFile, stateDir, policyFile, MEMORY_BANS);
    const banMs = Math.max(performance.now() - t0, await waitForCount('ipset', MEMORY_BANS, t0));
    log(`  ${MEMORY_BANS} bans in ${seconds(banMs)} s`);
    await sleep(2000);
    const bans = await sampleRss(daemon.pid, 5000);
    log(
      `  with the bans: VmRSS median ${mib(bans.median)} MiB, up to ${mib(bans.max)} MiB, ${bans.cpuMsPerSecond.toFixed(0)} ms CPU per 1 s tick`,
    );
    renameSync(largeTable, path.join(procRoot, 'net', 'tcp'));
    const table = await sampleRss(daemon.pid, windowSeconds * 1000);
    const hwm = procStatus(daemon.pid).hwm;
    const status = JSON.parse(
      (await srv([process.execPath, CLI, 'status', '--json', '--state-dir', stateDir, '--policy', policyFile])).stdout,
    ) as { active: number; lastScan: { durationMs: number; sockets: number } | null };
    if (status.lastScan === null || status.lastScan.sockets < TABLE_ROWS)
      throw new Error(`the daemon did not scan the large table: ${JSON.stringify(status.lastScan)}`);
    const commands = commandSummary(readLog(daemon.logFile, logFrom)).text;
    log(
      `  with the table: VmRSS median ${mib(table.median)} MiB, up to ${mib(table.max)} MiB, at the end ${mib(table.last)} MiB, peak of the run ${mib(hwm)} MiB, ${table.cpuMsPerSecond.toFixed(0)} ms CPU per 1 s tick, scan ${status.lastScan.durationMs} ms, ${status.active} active bans`,
    );
    return {
      idle,
      withBans: bans,
      withTable: table,
      hwm,
      banMs,
      windowSeconds,
      lastScan: status.lastScan,
      active: status.active,
      commands,
    };
  } finally {
    await stopDaemon(daemon);
    await resetFirewall();
  }
}

interface DetectorMemory {
  readonly sources: string;
  readonly fileBytes: number;
  readonly stages: { stage: string; rss: number; heapUsed: number }[];
  readonly maxRss: number;
  /** maxRSS right after readLiveTable: the peak of reading and parsing. */
  readonly readPeak: number;
  readonly parseMs: number;
  readonly detectMs: number;
  readonly verdicts: number;
  readonly distinct: number;
}

/**
 * Runs in a fresh node (no tsx), importing the build: one daemon scan, stage by stage. The table is
 * read by readLiveTable itself, from a directory that stands in for /proc (net/tcp is the generated
 * table, the other three files are absent), inside a function as the daemon does: a top-level await
 * would keep the text alive in the module's frame and overstate the later stages.
 */
const DETECTOR_CHILD = `
import { readFileSync } from 'node:fs';
const [procRoot, dist] = process.argv.slice(1);
const { readLiveTable } = await import(dist + '/src/table/live-table.js');
const { detect } = await import(dist + '/src/detect/detector.js');
const { loadPolicy } = await import(dist + '/src/policy/load-policy.js');
const { buildAllowlist } = await import(dist + '/src/net/allowlist.js');
const { CidrSet } = await import(dist + '/src/net/cidr-set.js');
const { policy } = loadPolicy();
const stages = [];
const mark = (stage) => { const m = process.memoryUsage(); stages.push({ stage, rss: m.rss, heapUsed: m.heapUsed }); };
const peakSoFar = () => process.resourceUsage().maxRSS * 1024;
globalThis.gc(); mark('modules loaded, default policy');
async function scan() {
  const t0 = performance.now();
  const { rows } = await readLiveTable('all', procRoot);
  return { rows, ms: performance.now() - t0 };
}
const { rows, ms: readMs } = await scan();
const readPeak = peakSoFar();
globalThis.gc(); mark('readLiveTable done (text read and parsed), gc: rows kept');
const t0 = performance.now();
const verdicts = detect({ rows }, policy, Date.now(), { allowlist: buildAllowlist(policy.allowlist, []), suppressed: new CidrSet() });
const detectMs = performance.now() - t0;
mark('+ detect() done, before gc');
globalThis.gc(); mark('after detect, gc: rows kept');
const distinct = rows.addresses.size - 1;
process.stdout.write(JSON.stringify({ stages, readPeak, maxRss: peakSoFar(), parseMs: readMs, detectMs, verdicts: verdicts.length, rows: rows.length, distinct }));
`;

async function partDetectorMemory(): Promise<DetectorMemory[]> {
  const out: DetectorMemory[] = [];
  for (const sources of ['realistic', 'distinct'] as const) {
    log(`\n== 4b. detector memory: ${TABLE_ROWS} rows, ${sources} sources, in a fresh node`);
    const procRoot = path.join(tmp, `proc-1M-${sources}`);
    mkdirSync(path.join(procRoot, 'net'), { recursive: true });
    const file = path.join(procRoot, 'net', 'tcp');
    writeTable(generateTable(TABLE_ROWS, sources), 'proc', file);
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', DETECTOR_CHILD, procRoot, path.join(ROOT, 'dist')],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.add(child);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const [code] = (await once(child, 'exit')) as [number | null];
    children.delete(child);
    if (code !== 0) throw new Error(`the detector child failed (exit ${code})`);
    const result = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Omit<
      DetectorMemory,
      'sources' | 'fileBytes'
    > & { rows: number };
    if (result.rows < TABLE_ROWS - 10) throw new Error(`the detector child parsed ${result.rows} rows`);
    out.push({ ...result, sources, fileBytes: statSync(file).size });
    rmSync(procRoot, { recursive: true, force: true });
    log(
      `  peak RSS ${mib(result.maxRss)} MiB (${mib(result.readPeak)} MiB after the read); read+parse ${ms(result.parseMs)} ms, detect ${ms(result.detectMs)} ms, ${result.verdicts} verdicts`,
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('run as root: the lab needs network namespaces (sudo npx tsx scripts/bench-bans.ts)');
  if (!existsSync(CLI)) throw new Error(`no build at ${CLI}: run npx tsc -p . first`);
  const started = performance.now();
  const machine = machineLine();
  log(machine);
  const results: Record<string, unknown> = {};
  const say = (text: string) => process.stdout.write(`${text}\n`);
  say(`# floodgate ban benchmarks${QUICK ? ' (--quick)' : ''}\n\n${machine}\n`);
  lab = await createLab({});
  if (!/^fgl-/.test(lab.server) || !/^fgl-/.test(lab.attacker)) throw new Error('unexpected lab namespace names');
  log(`lab: ${lab.server} <-> ${lab.attacker}`);
  try {
    if (parts.has('1')) {
      const { rows, classic, startup } = await partThroughput();
      say(
        `## 1. Ban throughput: ${BANS} bans, \`floodgate ban --from-file\` into a running \`floodgate run --enforce\`\n`,
      );
      say(
        `Wall time from the command's start until all ${BANS} are in the kernel (checked with iptables -S / ipset list / nft list after the command returned; the command returns once the daemon's queue has drained). Policy: ban.rate 100000/s (one batch), max_active 20000, kill_connections false. Median of ${RUNS.throughput} runs, interleaved by backend.\n`,
      );
      say(
        markdownTable(
          [
            'backend',
            'ban → all in kernel (s)',
            'min–max',
            'goal',
            'met',
            'firewall commands in the daemon (median run)',
            'daemon: 1st ban → last command (s)',
            `raw restore of the same ${BANS} (s)`,
            'vs raw',
          ],
          rows.map((r) => [
            r.backend,
            seconds(r.inKernel.median),
            range(r.inKernel),
            `≤ ${seconds(GOALS.throughput[r.backend])}`,
            met(r.inKernel.median <= GOALS.throughput[r.backend]),
            r.commands,
            seconds(r.inDaemonMs.median),
            seconds(r.floor.median),
            ratio(r.inKernel.median, r.floor.median),
          ]),
        ),
      );
      say(
        `\nWhere the time goes (median ms per phase, from the daemon's debug log; phases can straddle a millisecond boundary). For reference, \`floodgate --version\` (node + CLI start-up alone) takes ${ms(startup.median)} ms in the namespace (median of ${startup.runs}).\n`,
      );
      say(
        markdownTable(
          ['phase', ...rows.map((r) => r.backend)],
          PHASES.map((phase, i) => [phase, ...rows.map((r) => ms(r.phases[i]!))]),
        ),
      );
      say('');
      say(
        `The classic way (DDoS Deflate style): one \`iptables -w -A INPUT -s X -j DROP\` per address from a shell loop (\`${(await srv(['iptables', '-V'])).stdout.trim()}\`). ${RUNS.classic} run(s).\n`,
      );
      say(
        markdownTable(
          ['case', 'addresses', 'measured (s)', 'per address (ms)', 'min–max per address (ms)'],
          [
            [
              `into an empty chain`,
              String(CLASSIC_FIRST),
              seconds(classic.firstTotal.median),
              ms(classic.firstPerAdd.median),
              range(classic.firstPerAdd, ms),
            ],
            [
              `into a chain of ${BANS - CLASSIC_TAIL} rules`,
              String(CLASSIC_TAIL),
              seconds(classic.tailPerAdd.median * CLASSIC_TAIL),
              ms(classic.tailPerAdd.median),
              range(classic.tailPerAdd, ms),
            ],
            [
              `**${BANS}, extrapolated** (not measured)`,
              String(BANS),
              `~${seconds(classic.extrapolated10k)}`,
              ms(classic.extrapolated10k / BANS),
              '–',
            ],
          ],
        ),
      );
      say(
        `\nThe 10k figure is extrapolated, not measured: each \`iptables -A\` rereads and rewrites the ruleset, so its cost grows with the chain; it assumes that growth is linear between the two measured points (mean cost over 0–${CLASSIC_FIRST} rules and over ${BANS - CLASSIC_TAIL}–${BANS} rules). floodgate's iptables backend is ${ratio(classic.extrapolated10k, rows[0]!.inKernel.median)} faster for 10k.\n`,
      );
      results.throughput = Object.fromEntries(
        rows.map((r) => [
          r.backend,
          {
            medianMs: Math.round(r.inKernel.median),
            minMs: Math.round(r.inKernel.min),
            maxMs: Math.round(r.inKernel.max),
            floorMs: Math.round(r.floor.median),
            goalMs: GOALS.throughput[r.backend],
            met: r.inKernel.median <= GOALS.throughput[r.backend],
          },
        ]),
      );
      if (PROFILE_DIR !== undefined) {
        say(`### Profiles (--profile ${PROFILE_DIR}; the profiler slows the runs above)\n`);
        for (const name of readdirSync(PROFILE_DIR)
          .filter((f) => f.endsWith('.cpuprofile') && /-0\.cpuprofile$/.test(f))
          .sort())
          say(profileSummary(path.join(PROFILE_DIR, name)));
      }
      results.classic = {
        perAddMsEmpty: +classic.firstPerAdd.median.toFixed(2),
        perAddMsAt9900: +classic.tailPerAdd.median.toFixed(2),
        extrapolated10kMs: Math.round(classic.extrapolated10k),
        first1kMs: Math.round(classic.firstTotal.median),
      };
    }
    if (parts.has('2')) {
      const rows = await partTimeToBan();
      say(
        `## 2. Time to ban: from the first SYN of a 30-connection half-open flood (one source) to the rule in the kernel\n`,
      );
      say(
        `\`floodgate run --enforce\`, default policy with interval 1s (syn-flood: > 20 SYN_RECV per ip). The flood starts at spread offsets in the daemon's 1 s scan cycle, timed from just before the lab's synFlood call (which lists the server's sockets once, ~10 ms, before the SYNs go: the times read slightly high); the rule is polled every ~20 ms plus the check's own time (median check ${ms(rows[0]!.poll.median)} ms), and the end of the check that saw it counts. "Decided" is the daemon's ban log line. Median of ${RUNS.timeToBan} runs.\n`,
      );
      say(
        markdownTable(
          [
            'backend',
            'first SYN → rule (s)',
            'min–max',
            'first SYN → decided (s)',
            'decided → rule seen (s)',
            'goal',
            'met',
          ],
          rows.map((r) => [
            r.backend,
            seconds(r.total.median),
            range(r.total),
            seconds(r.detect.median),
            seconds(r.enforce.median),
            `≤ ${seconds(GOALS.timeToBan)}`,
            met(r.total.median <= GOALS.timeToBan),
          ]),
        ),
      );
      say('');
      results.timeToBan = Object.fromEntries(
        rows.map((r) => [
          r.backend,
          {
            medianMs: Math.round(r.total.median),
            minMs: Math.round(r.total.min),
            maxMs: Math.round(r.total.max),
            decidedMs: Math.round(r.detect.median),
            met: r.total.median <= GOALS.timeToBan,
          },
        ]),
      );
    }
    if (parts.has('3')) {
      const rows = await partFlood();
      const base = rows[0]!;
      say(`## 3. Per-packet cost: SYN flood with ${BANS} bans in place (none matching)\n`);
      say(
        `hping3 -S --flood to ${theLab().serverAddr4}:80 from ${FLOOD_SOURCE} (not banned) for ${FLOOD_SECONDS} s, server with SYN cookies always on. The flood is CPU-bound on the sending core and a veth pair delivers each packet in the sender's softirq, so the firewall's per-packet cost shows as fewer packets per second. "Flood CPU" is hping3's user+system time per packet received (the receive path's softirq is charged to it); softirq share is of all cores (/proc/stat, a busy shared machine). Median of ${RUNS.flood} runs.\n`,
      );
      say(
        markdownTable(
          [
            'case',
            'rules',
            'server rx (pkt/s)',
            'min–max',
            'hping3 sent/s',
            'vs no bans',
            'TCP InSegs/s',
            'flood CPU (µs/pkt)',
            'over baseline (µs/pkt)',
            'softirq share',
          ],
          rows.map((r) => [
            r.config,
            r.rules,
            kpps(r.rxPps.median),
            range(r.rxPps, kpps),
            kpps(r.sentPps.median),
            ratio(r.rxPps.median, base.rxPps.median),
            kpps(r.inSegsPps.median),
            r.cpuUsPerPacket.median.toFixed(2),
            (r.cpuUsPerPacket.median - base.cpuUsPerPacket.median).toFixed(2),
            `${(r.softirqShare.median * 100).toFixed(0)}%`,
          ]),
        ),
      );
      say('');
      results.flood = Object.fromEntries(
        rows.map((r) => [
          r.config.startsWith('no bans') ? 'none' : r.config,
          {
            rxPps: Math.round(r.rxPps.median),
            cpuUsPerPacket: +r.cpuUsPerPacket.median.toFixed(3),
            vsBaseline: +(r.rxPps.median / base.rxPps.median).toFixed(3),
          },
        ]),
      );
    }
    if (parts.has('4')) {
      const daemon = await partDaemonMemory();
      const detector = await partDetectorMemory();
      say(`## 4. Memory\n`);
      say(
        `\`floodgate run --enforce\` (ipset, interval 1s, max_active 200000, ban.rate 1000000/s) in the lab's server namespace. ${MEMORY_BANS} bans loaded with \`ban --from-file\` (${seconds(daemon.banMs)} s to all in the kernel; firewall commands: ${daemon.commands}), then the daemon's table (read through FLOODGATE_PROC_ROOT) replaced by a generated ${TABLE_ROWS}-row /proc/net/tcp (realistic sources in 198.18.0.0/15, above the banned addresses), scanned every second for ${daemon.windowSeconds} s: a reconcile of the whole set falls in that window. The detector bans the table's flooders as well: ${daemon.active} active bans at the end. Last scan: ${daemon.lastScan.sockets} sockets in ${daemon.lastScan.durationMs} ms. VmRSS sampled every 200 ms from /proc/<pid>/status; VmHWM is the peak of the whole run.\n`,
      );
      say(
        markdownTable(
          [
            'daemon',
            'VmRSS median (MiB)',
            'highest (MiB)',
            'CPU per 1 s tick (ms)',
            `goal < ${GOALS.rssMiB} MiB met (median / highest)`,
          ],
          [
            ['idle, no bans', mib(daemon.idle.rss), '', '', ''],
            [
              `${MEMORY_BANS} active bans (5 s)`,
              mib(daemon.withBans.median),
              mib(daemon.withBans.max),
              daemon.withBans.cpuMsPerSecond.toFixed(0),
              '',
            ],
            [
              `**${MEMORY_BANS} active bans and a ${TABLE_ROWS}-row table** (${daemon.windowSeconds} s)`,
              `**${mib(daemon.withTable.median)}**`,
              mib(daemon.withTable.max),
              daemon.withTable.cpuMsPerSecond.toFixed(0),
              `${met(daemon.withTable.median < GOALS.rssMiB * 2 ** 20)} / ${met(daemon.withTable.max < GOALS.rssMiB * 2 ** 20)}`,
            ],
            [
              'peak of the whole run (VmHWM): the bulk load of the bans',
              '',
              mib(daemon.hwm),
              '',
              met(daemon.hwm < GOALS.rssMiB * 2 ** 20),
            ],
          ],
        ),
      );
      say('');
      for (const d of detector) {
        say(
          `Detector in process (fresh node, the build's parseProcNet + detect with the default policy), ${TABLE_ROWS} rows of /proc/net/tcp text (${mib(d.fileBytes)} MiB), ${d.sources} sources (${d.distinct} distinct addresses): readLiveTable (read + parse) ${ms(d.parseMs)} ms, detect ${ms(d.detectMs)} ms, ${d.verdicts} verdicts.\n`,
        );
        say(
          markdownTable(
            ['stage', 'RSS (MiB)', 'heapUsed (MiB)'],
            [
              ...d.stages.map((s) => [s.stage, mib(s.rss), mib(s.heapUsed)]),
              ['peak RSS by the end of readLiveTable', mib(d.readPeak), ''],
              ['**peak RSS (maxRSS)**', `**${mib(d.maxRss)}**`, ''],
            ],
          ),
        );
        say(`\nGoal < ${GOALS.rssMiB} MiB: ${met(d.maxRss < GOALS.rssMiB * 2 ** 20)}.\n`);
      }
      if (PROFILE_DIR !== undefined) {
        say(`### Profiles of the 100k-ban daemon (--profile ${PROFILE_DIR})\n`);
        for (const name of ['daemon-100k.cpuprofile', 'daemon-100k.heapprofile']) {
          const file = path.join(PROFILE_DIR, name);
          if (existsSync(file))
            say(name.endsWith('.cpuprofile') ? profileSummary(file, 20) : heapProfileSummary(file, 15));
        }
      }
      results.memory = {
        daemonIdleRssMiB: +mib(daemon.idle.rss),
        daemon100kRssMiB: +mib(daemon.withBans.median),
        daemon100k1MRowsRssMiB: {
          median: +mib(daemon.withTable.median),
          max: +mib(daemon.withTable.max),
          last: +mib(daemon.withTable.last),
        },
        daemonPeakMiB: +mib(daemon.hwm),
        daemonCpuMsPerTick: {
          bans: Math.round(daemon.withBans.cpuMsPerSecond),
          table: Math.round(daemon.withTable.cpuMsPerSecond),
        },
        detector1M: Object.fromEntries(
          detector.map((d) => [
            d.sources,
            { peakRssMiB: +mib(d.maxRss), parseMs: Math.round(d.parseMs), detectMs: Math.round(d.detectMs) },
          ]),
        ),
      };
    }
  } finally {
    await lab?.destroy();
  }
  say(`${machineLine()} (at the end)\n`);
  say(
    `machine-readable: ${JSON.stringify({ quick: QUICK, totalSeconds: Math.round((performance.now() - started) / 1000), ...results })}`,
  );
}

main().catch(async (error) => {
  console.error(error);
  killChildren();
  await lab?.destroy();
  process.exitCode = 1;
});
