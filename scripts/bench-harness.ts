// Timing and reporting shared by the benchmark scripts: interleaved runs of whole commands, medians,
// the machine line and markdown tables. No hyperfine needed: spawnSync + hrtime over several runs.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number;
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new Error('stats of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: sorted.length };
}

/**
 * The environment the timed commands run in: this one without NODE_EXTRA_CA_CERTS. Where it is set
 * (this development machine sets it for its HTTPS proxy), node reads and parses every certificate in
 * that file before running any script: 80 ms of each start here, where `node -e 0` otherwise takes
 * 40. A server running floodgate has no reason to set it, and the awk pipelines compared against
 * pay nothing for it. machineLine() says when it was left out; a benchmark may time a command with
 * it too (EXTRA_CA_ENV).
 */
export const SERVER_ENV: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(process.env).filter(
    (entry): entry is [string, string] => entry[0] !== 'NODE_EXTRA_CA_CERTS' && entry[1] !== undefined,
  ),
);
/** SERVER_ENV with this machine's NODE_EXTRA_CA_CERTS; undefined where it is not set. */
export const EXTRA_CA_ENV: Readonly<Record<string, string>> | undefined = process.env.NODE_EXTRA_CA_CERTS
  ? { ...SERVER_ENV, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS }
  : undefined;

/**
 * The NODE_OPTIONS the systemd unit (packaging/systemd/floodgate.service) runs the daemon with: the
 * benchmarks run their daemons as the service does.
 */
export function serviceNodeOptions(): string {
  const unit = readFileSync(fileURLToPath(new URL('../packaging/systemd/floodgate.service', import.meta.url)), 'utf8');
  return /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1] ?? '';
}

/**
 * The node flags a command's #! line gives node (`#!/usr/bin/env -S node <flags>`; floodgate's has
 * none today): the benchmarks run the CLI with them, as the installed command runs.
 */
export function shebangFlags(cli: string): string[] {
  const first = readFileSync(cli, 'utf8').split('\n', 1)[0]!;
  return (/^#!\S*env -S node(.*)$/.exec(first)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
}

/** One line saying what the numbers were measured on; a shared, noisy machine shows in the load. */
export function machineLine(): string {
  let cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (model) cpu = model[1]!.trim();
  } catch {
    /* not Linux: os.cpus() is the best we have */
  }
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  const memGiB = (os.totalmem() / 2 ** 30).toFixed(0);
  const locale = process.env.LC_ALL || process.env.LC_COLLATE || process.env.LANG || 'C';
  const unset = EXTRA_CA_ENV === undefined ? '' : ', NODE_EXTRA_CA_CERTS unset for the timed commands';
  return `machine: ${cpu}, ${os.availableParallelism()} cores, ${memGiB} GiB, Linux ${os.release()}, node ${process.version}, locale ${locale}, load ${load}${unset}`;
}

/** CPU time (user+sys, ms) of every child this process has waited for (cutime + cstime; 10 ms ticks). */
export function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

export interface CommandCase {
  readonly name: string;
  /** argv; use ['sh', '-c', text] for pipelines. */
  readonly argv: readonly string[];
  /** Runs for this case (default: the caller's). */
  readonly runs?: number;
  /** Its environment. @default SERVER_ENV */
  readonly env?: Readonly<Record<string, string>>;
}

export interface CommandResult {
  readonly name: string;
  readonly wall: Stats;
  /** Mean CPU time (user+sys) of the command and all its children, ms; 10 ms clock-tick resolution per run. */
  readonly cpuMs: number;
  readonly stdout: string;
}

/** Runs one command once (for checks, not timing); throws with its stderr if it fails. */
export function runOnce(argv: readonly string[]): { ms: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const result = spawnSync(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 30,
    env: SERVER_ENV,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(
      `${argv.join(' ')} exited ${result.status ?? result.signal}: ${result.stderr.toString().slice(0, 500)}`,
    );
  }
  return { ms, stdout: result.stdout.toString('latin1') };
}

/**
 * Times each case `runs` times after `warmup` untimed runs, interleaved round by round, in
 * bench-runner.mjs: a small process, so that fork() does not copy this one's (possibly big) heap.
 * Asynchronous, so that this process still handles signals (and cleans up) while it waits.
 */
export async function timeCommands(cases: readonly CommandCase[], runs: number, warmup = 1): Promise<CommandResult[]> {
  const child = spawn(process.execPath, [RUNNER], { stdio: ['pipe', 'pipe', 'inherit'] });
  runners.add(child);
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stdin.end(JSON.stringify({ cases: cases.map((c) => ({ env: SERVER_ENV, ...c })), runs, warmup }));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  runners.delete(child);
  if (code !== 0) throw new Error(`the benchmark runner failed (exit ${code ?? signal}); see above`);
  const raw = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    samples: number[];
    cpu: number[];
    stdout: string;
  }[];
  return cases.map((c, i) => ({
    name: c.name,
    wall: stats(raw[i]!.samples),
    cpuMs: raw[i]!.cpu.reduce((x, y) => x + y, 0) / raw[i]!.cpu.length,
    stdout: raw[i]!.stdout,
  }));
}
const runners = new Set<ChildProcess>();
process.on('exit', () => {
  for (const runner of runners) runner.kill('SIGKILL');
});
const RUNNER = fileURLToPath(new URL('./bench-runner.mjs', import.meta.url));

/** Times an in-process function: `runs` samples after `warmup` calls. */
export async function timeFunction(
  fn: () => unknown,
  runs: number,
  warmup = 1,
): Promise<{ wall: Stats; first: number }> {
  let first = 0;
  const samples: number[] = [];
  for (let i = 0; i < runs + warmup; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i === 0) first = ms;
    if (i >= warmup) samples.push(ms);
  }
  return { wall: stats(samples), first };
}

export function ms(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function ratio(value: number, base: number): string {
  if (!(base > 0)) return '–';
  const r = value / base;
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

export function count(n: number): string {
  if (n >= 1e6 && n % 1e6 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 1e3 === 0) return `${n / 1e3}k`;
  return String(n);
}

/** A markdown table: header row, alignment row (numbers right-aligned), rows. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  rightAlignFrom = 1,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length), 3));
  const pad = (cell: string, i: number) => (i >= rightAlignFrom ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => pad(c, i)).join(' | ')} |`;
  const align = `|${widths.map((w, i) => (i >= rightAlignFrom ? ` ${'-'.repeat(w - 1)}: ` : ` ${'-'.repeat(w)} `)).join('|')}|`;
  return [line(header), align, ...rows.map(line)].join('\n');
}

/** Parses "10k", "126k", "1M", "5000" into a row count. */
export function parseCount(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim());
  if (!m) throw new Error(`expected a row count such as 10k, 126k, 1M or 5000, got ${JSON.stringify(text)}`);
  const scale = m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1e6;
  return Math.round(Number(m[1]) * scale);
}

export function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** A script's usage text: its header comment from the "// usage" line on. */
export function usage(scriptUrl: string): string {
  const lines = readFileSync(fileURLToPath(scriptUrl), 'utf8').split('\n');
  const from = lines.findIndex((l) => l.startsWith('// usage'));
  const to = lines.findIndex((l, i) => i > from && !l.startsWith('//'));
  return `${lines
    .slice(from, to)
    .map((l) => l.replace(/^\/\/ ?/, ''))
    .join('\n')}\n`;
}
