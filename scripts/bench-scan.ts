// Benchmarks `floodgate scan` on captured tables: (a) in-process parse+count throughput, (b) the
// whole command beside the awk | sort | uniq -c pipelines it replaces, (c) where one scan's time goes.
//
// usage: npx tsx scripts/bench-scan.ts [--sizes 10k,126k,1M] [--runs 9] [--worst 126k]
//                                     [--only inproc|process] [--dir DIR] [--keep]
//   --sizes   table sizes in rows (default 10k,126k,1M)
//   --runs    timed runs per case (default 9; tables over 200k rows get half, at least 3)
//   --worst   sizes to also time whole-process with all-distinct sources (default 126k; "" for none)
//   --only    run only part (a) "inproc" or parts (b)+(c) "process"
//   --dir     where the generated tables go (default: a fresh directory under $TMPDIR, removed after)
//   --keep    keep the generated tables
// Needs the build: npx tsc -p .   Prints markdown tables on stdout, progress on stderr.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countTop } from '../src/table/count-sockets.js';
import { parseProcNet } from '../src/table/proc-net-parser.js';
import {
  type CommandCase,
  type CommandResult,
  count,
  log,
  machineLine,
  markdownTable,
  ms,
  parseCount,
  ratio,
  runOnce,
  stats,
  timeCommands,
  usage,
} from './bench-harness.js';
import { type GeneratedTable, type SourceMix, generateTable, tableText, writeTable } from './bench-tables.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/src/cli/main.cjs');
const FIXTURE = path.join(ROOT, 'test/fixtures/tables/mixed/proc-tcp.txt');
const SYN_RECV = new Set(['SYN_RECV'] as const);

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10k,126k,1M' },
    runs: { type: 'string', default: '9' },
    worst: { type: 'string', default: '126k' },
    only: { type: 'string' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(usage(import.meta.url));
  process.exit(0);
}
const sizes = args.sizes.split(',').filter(Boolean).map(parseCount);
const worstSizes = args.worst.split(',').filter(Boolean).map(parseCount);
const baseRuns = Number(args.runs);
if (!Number.isInteger(baseRuns) || baseRuns < 1)
  throw new Error(`expected --runs to be a whole number >= 1, got ${JSON.stringify(args.runs)}`);
if (args.only !== undefined && args.only !== 'inproc' && args.only !== 'process')
  throw new Error(`expected --only inproc or process, got ${JSON.stringify(args.only)}`);
const runsFor = (rows: number) => (rows > 200_000 ? Math.max(3, Math.ceil(baseRuns / 2)) : baseRuns);
const rate = (rows: number, msValue: number) => `${(((rows / msValue) * 1000) / 1e6).toFixed(2)}M`;

// ---------------------------------------------------------------------------------------------
// (a) in-process: parseProcNet + countTop (as scan does) on the table text

async function inProcess(): Promise<void> {
  const rows: string[][] = [];
  for (const size of sizes) {
    for (const sources of ['realistic', 'distinct'] as SourceMix[]) {
      log(`(a) ${count(size)} rows, ${sources} sources: generating`);
      const text = tableText(generateTable(size, sources), 'proc');
      // Small tables are quick and noisier: more runs, and a few warm-ups so the JIT has settled.
      const runs = size <= 20_000 ? Math.max(baseRuns, 40) : runsFor(size);
      const warmup = size <= 20_000 ? 5 : 1;
      const parse: number[] = [];
      const syn: number[] = [];
      const all: number[] = [];
      let cold = 0;
      for (let i = 0; i < runs + warmup; i++) {
        const t0 = process.hrtime.bigint();
        const table = parseProcNet(text);
        const t1 = process.hrtime.bigint();
        countTop(table.rows, { states: SYN_RECV }, { by: 'ip' }, 10);
        const t2 = process.hrtime.bigint();
        countTop(table.rows, {}, { by: 'ip' }, 10);
        const t3 = process.hrtime.bigint();
        if (table.rows.length !== size || table.malformed.length !== 0)
          throw new Error(`parsed ${table.rows.length} rows (${table.malformed.length} malformed), expected ${size}`);
        // The first call of a table size in this process includes JIT warm-up, like a CLI run.
        if (i === 0) cold = Number(t2 - t0) / 1e6;
        if (i < warmup) continue;
        parse.push(Number(t1 - t0) / 1e6);
        syn.push(Number(t2 - t1) / 1e6);
        all.push(Number(t3 - t2) / 1e6);
      }
      const withSyn = stats(parse.map((p, i) => p + syn[i]!));
      const withAll = stats(parse.map((p, i) => p + all[i]!));
      rows.push([
        count(size),
        sources,
        ms(stats(parse).median),
        ms(stats(syn).median),
        ms(stats(all).median),
        `${rate(size, withSyn.median)} (${rate(size, withSyn.max)}–${rate(size, withSyn.min)})`,
        `${rate(size, withAll.median)} (${rate(size, withAll.max)}–${rate(size, withAll.min)})`,
        rate(size, cold),
        withSyn.median <= size / 1000 && withAll.median <= size / 1000 ? 'yes' : 'no',
      ]);
    }
  }
  console.log(`\n### (a) In-process parse + count, /proc/net/tcp text already in memory\n`);
  console.log(
    `parseProcNet, then countTop by ip, top 10 (as scan does); median of ${Math.max(baseRuns, 40)} runs after 5 warm-ups up to 20k rows, ${baseRuns} runs (${runsFor(1e6)} above 200k rows) after one warm-up above, rows/s as median (worst–best).\n`,
  );
  console.log(
    markdownTable(
      [
        'rows',
        'sources',
        'parse ms',
        'count SYN_RECV ms',
        'count all ms',
        'rows/s parse+SYN_RECV',
        'rows/s parse+all',
        'rows/s 1st run (cold)',
        '>= 1M rows/s',
      ],
      rows,
      2,
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// (b) whole process, side by side on the same files

const sh = (text: string): string[] => ['sh', '-c', text];
const q = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;

interface Files {
  readonly rows: number;
  readonly sources: SourceMix;
  readonly proc: string;
  readonly netstat: string;
  readonly table: GeneratedTable;
}

function makeFiles(dir: string, size: number, sources: SourceMix): Files {
  log(`(b) ${count(size)} rows, ${sources} sources: writing tables`);
  const table = generateTable(size, sources);
  const base = path.join(dir, `tcp-${count(size)}-${sources}`);
  writeTable(table, 'proc', `${base}.proc.txt`);
  writeTable(table, 'netstat', `${base}.netstat.txt`);
  return { rows: size, sources, proc: `${base}.proc.txt`, netstat: `${base}.netstat.txt`, table };
}

function scanCases(f: Files): CommandCase[] {
  const node = q(process.execPath);
  return [
    {
      name: 'floodgate scan --input (proc)',
      argv: sh(`${node} ${q(CLI)} scan --input ${q(f.proc)} --state SYN_RECV --top 10`),
    },
    {
      name: 'floodgate scan --input (netstat -ant)',
      argv: sh(`${node} ${q(CLI)} scan --input ${q(f.netstat)} --state SYN_RECV --top 10`),
    },
    {
      name: `awk '$4=="03"{print $3}' (proc) \\| sort \\| uniq -c \\| sort -rn \\| head`,
      argv: sh(`awk '$4=="03"{print $3}' ${q(f.proc)} | sort | uniq -c | sort -rn | head`),
    },
    {
      name: 'same, by address only: awk …print substr($3,1,8)…',
      argv: sh(`awk '$4=="03"{print substr($3,1,8)}' ${q(f.proc)} | sort | uniq -c | sort -rn | head`),
    },
    {
      name: `awk '$6=="SYN_RECV"{print $5}' (netstat) \\| cut -d: -f1 \\| sort \\| uniq -c \\| sort -rn \\| head`,
      argv: sh(`awk '$6=="SYN_RECV"{print $5}' ${q(f.netstat)} | cut -d: -f1 | sort | uniq -c | sort -rn | head`),
    },
    { name: 'cat (proc) > /dev/null (floor)', argv: sh(`cat ${q(f.proc)} > /dev/null`) },
  ];
}

/** Checks that floodgate and the awk pipeline see the same SYN_RECV sockets in both formats. */
function checkCounts(f: Files): void {
  const node = process.execPath;
  for (const file of [f.proc, f.netstat]) {
    const out = JSON.parse(
      runOnce([node, CLI, 'scan', '--input', file, '--state', 'SYN_RECV', '--top', '1', '--json']).stdout,
    ) as { total: number; malformed: number };
    if (out.total !== f.table.synRecv || out.malformed !== 0)
      throw new Error(
        `${file}: floodgate counted ${out.total} SYN_RECV (${out.malformed} malformed), generated ${f.table.synRecv}`,
      );
  }
  const awk = Number(runOnce(sh(`awk '$6=="SYN_RECV"' ${q(f.netstat)} | wc -l`)).stdout.trim());
  if (awk !== f.table.synRecv)
    throw new Error(`${f.netstat}: awk counted ${awk} SYN_RECV, generated ${f.table.synRecv}`);
}

function resultTable(results: readonly CommandResult[], awkIndex: number, catIndex: number): string {
  return markdownTable(
    ['command', 'median ms', 'min', 'max', 'CPU ms', 'vs awk (proc)', 'vs cat'],
    results.map((r) => [
      r.name,
      ms(r.wall.median),
      ms(r.wall.min),
      ms(r.wall.max),
      ms(r.cpuMs),
      ratio(r.wall.median, results[awkIndex]!.wall.median),
      ratio(r.wall.median, results[catIndex]!.wall.median),
    ]),
  );
}

async function wholeProcess(dir: string): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with npx tsc -p .`);
  const node = q(process.execPath);

  log('(b) fixed costs');
  const fixed = await timeCommands(
    [
      { name: 'sh -c : (shell start)', argv: sh(':') },
      { name: 'node -e 0 (node start)', argv: sh(`${node} -e 0`) },
      {
        name: 'floodgate scan --input fixture (337 rows)',
        argv: sh(`${node} ${q(CLI)} scan --input ${q(FIXTURE)} --state SYN_RECV --top 10`),
      },
    ],
    Math.max(baseRuns, 9),
  );
  const nodeStart = fixed[1]!.wall.median;
  const fixedCost = fixed[2]!.wall.median;

  console.log(`\n### (b) Whole process, same files side by side\n`);
  console.log(
    `Each command runs under sh -c, interleaved round by round; median of N runs after one warm-up; CPU = user+sys of the command and its children (mean per run, 10 ms tick resolution). Files are in the page cache. The proc awk command is the issue's: it groups by address:port ($3), not by address, so the "by address only" row is the like-for-like one.\n`,
  );
  console.log(
    markdownTable(
      ['fixed cost', 'median ms', 'min', 'max', 'CPU ms'],
      fixed.map((r) => [r.name, ms(r.wall.median), ms(r.wall.min), ms(r.wall.max), ms(r.cpuMs)]),
    ),
  );

  const summary: string[][] = [];
  const jobs: [number, SourceMix][] = [
    ...sizes.map((s): [number, SourceMix] => [s, 'realistic']),
    ...worstSizes.map((s): [number, SourceMix] => [s, 'distinct']),
  ];
  let phaseFiles: Files | undefined;
  for (const [size, sources] of jobs) {
    const f = makeFiles(dir, size, sources);
    checkCounts(f);
    const runs = runsFor(size);
    log(`(b) ${count(size)} ${sources}: timing ${runs} rounds`);
    const results = await timeCommands(scanCases(f), runs);
    const [scanProc, scanNetstat, awkProc, awkProcByIp, awkNetstat, cat] = results.map((r) => r.wall.median) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    console.log(
      `\n#### ${count(size)} rows, ${sources} sources (${f.table.synRecv} SYN_RECV; proc file ${((f.table.rows * 150) / 2 ** 20).toFixed(1)} MiB), ${runs} runs\n`,
    );
    console.log(resultTable(results, 2, 5));
    summary.push([
      `${count(size)} ${sources}`,
      ms(scanProc),
      ms(scanNetstat),
      ms(awkProc),
      ms(awkProcByIp),
      ms(awkNetstat),
      ms(cat),
      ratio(scanProc, awkProc),
      ratio(scanProc, awkNetstat),
      ms(scanProc - fixedCost),
      scanProc <= awkProc / 2 ? 'yes' : 'no',
    ]);
    if (size === 126_000 && sources === 'realistic') phaseFiles = f;
    else if (!args.keep) {
      rmSync(f.proc);
      rmSync(f.netstat);
    }
  }

  console.log(`\n### Summary: floodgate scan vs the awk pipelines (median ms)\n`);
  console.log(
    `node start (node -e 0): ${ms(nodeStart)} ms; floodgate fixed cost (scan of a 337-row fixture): ${ms(fixedCost)} ms. Goal: scan <= 0.5x the awk pipeline on the 126k file.\n`,
  );
  console.log(
    markdownTable(
      [
        'table',
        'scan (proc)',
        'scan (netstat)',
        'awk proc',
        'awk proc by addr',
        'awk netstat',
        'cat',
        'scan / awk proc',
        'scan / awk netstat',
        'scan − fixed cost',
        'goal <= 0.5x',
      ],
      summary,
    ),
  );

  if (phaseFiles) {
    await phases(phaseFiles, nodeStart, fixedCost, summary.find((r) => r[0] === '126k realistic')![1]!);
    if (!args.keep) {
      rmSync(phaseFiles.proc);
      rmSync(phaseFiles.netstat);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (c) where one scan's time goes: the fixed costs above plus what scan does with the file, in process

/**
 * One cold scan's work after startup, phase by phase, in a fresh node process per run (so the JIT is
 * as cold as in a CLI run), using the built modules that the CLI uses.
 */
const PHASE_PROBE = `
const t = () => Number(process.hrtime.bigint()) / 1e6;
const dist = process.argv[1], file = process.argv[2];
let t0 = t();
const { readFile } = await import('node:fs/promises');
const { detectFormat } = await import(dist + '/src/table/parse-table.js');
const { parseProcNet } = await import(dist + '/src/table/proc-net-parser.js');
const { countTop } = await import(dist + '/src/table/count-sockets.js');
let t1 = t();
const text = await readFile(file, 'latin1');
let t2 = t();
detectFormat(text);
let t3 = t();
const { rows } = parseProcNet(text);
let t4 = t();
countTop(rows, { states: new Set(['SYN_RECV']) }, { by: 'ip' }, 10);
let t5 = t();
process.stdout.write(JSON.stringify({ import: t1 - t0, read: t2 - t1, detect: t3 - t2, parse: t4 - t3, count: t5 - t4 }));
`;

async function phases(f: Files, nodeStart: number, fixedCost: number, scanMedian: string): Promise<void> {
  const runs = baseRuns;
  const samples: Record<string, number[]> = { import: [], read: [], detect: [], parse: [], count: [] };
  for (let i = 0; i < runs; i++) {
    const out = JSON.parse(
      runOnce([process.execPath, '--input-type=module', '-e', PHASE_PROBE, path.join(ROOT, 'dist'), f.proc]).stdout,
    ) as Record<string, number>;
    for (const key of Object.keys(samples)) samples[key]!.push(out[key]!);
  }
  const median = (key: string) => stats(samples[key]!).median;
  const rows: [string, number][] = [
    ['node start (node -e 0, measured above)', nodeStart],
    ['CLI fixed cost: module loading, commander, output (fixture scan − node start)', fixedCost - nodeStart],
    ['readFile, latin1 (18 MiB)', median('read')],
    ['detectFormat', median('detect')],
    ['parseProcNet (cold)', median('parse')],
    ['countTop SYN_RECV, top 10 (cold)', median('count')],
  ];
  const sum = rows.reduce((a, [, v]) => a + v, 0);
  console.log(`\n### (c) Where a scan of the 126k-row file goes (measured whole: ${scanMedian} ms)\n`);
  console.log(
    `Phases after startup timed inside a fresh node process per run (cold JIT, like the CLI), median of ${runs}.\n`,
  );
  console.log(
    markdownTable(
      ['phase', 'median ms', 'share of sum'],
      [...rows.map(([name, v]) => [name, ms(v), `${((v / sum) * 100).toFixed(0)}%`]), ['sum', ms(sum), '100%']],
    ),
  );
}

// ---------------------------------------------------------------------------------------------

const dir = args.dir ?? mkdtempSync(path.join(os.tmpdir(), 'fgb-scan-'));
mkdirSync(dir, { recursive: true });
const cleanup = () => {
  if (!args.keep && args.dir === undefined) rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    cleanup();
    process.exit(128 + os.constants.signals[signal]);
  });
}

async function main(): Promise<void> {
  console.log(`## floodgate scan benchmark\n\n${machineLine()}`);
  if (args.only !== 'process') await inProcess();
  if (args.only !== 'inproc') await wholeProcess(dir);
  if (args.keep) log(`tables kept in ${dir}`);
}

main().catch((error: unknown) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
