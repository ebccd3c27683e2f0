// Times whole commands for the benchmarks, from a small process of its own: fork() copies the
// parent's page tables, so spawning from a benchmark that holds big tables would slow every run.
// stdin: {"cases": [{"name", "argv", "runs"?, "env"?}], "runs", "warmup", "retries"?}; stdout: one JSON result.
// Runs are interleaved (one of each case per round) so that a burst of load hits every case alike.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** CPU time (user+sys, ms) of every child this process has waited for: cutime + cstime. */
function childCpuMs() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}

function runOnce(argv, env) {
  const cpu0 = childCpuMs();
  const t0 = process.hrtime.bigint();
  const result = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30, env });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = childCpuMs() - cpu0;
  const failed = result.error
    ? String(result.error)
    : result.status !== 0
      ? `exited ${result.status ?? result.signal}: ${result.stderr.toString().slice(0, 500)}`
      : null;
  return { ms, cpu, stdout: result.stdout?.toString('latin1') ?? '', failed };
}

const { cases, runs, warmup = 1, retries = 1 } = JSON.parse(readFileSync(0, 'utf8'));
const wanted = cases.map((c) => c.runs ?? runs);
const rounds = Math.max(...wanted) + warmup;
const results = cases.map(() => ({ samples: [], cpu: [], stdout: '' }));
for (let round = 0; round < rounds; round++) {
  process.stderr.write(`  round ${round + 1}/${rounds}\r`);
  cases.forEach((c, i) => {
    if (round >= wanted[i] + warmup) return;
    let run = runOnce(c.argv, c.env);
    // Other work on a shared tree may rebuild dist/ under us: try a failed run again before giving up.
    for (let retry = 0; run.failed !== null && retry < retries; retry++) {
      process.stderr.write(`\n  ${c.name}: ${run.failed}; retrying\n`);
      run = runOnce(c.argv, c.env);
    }
    if (run.failed !== null) {
      process.stderr.write(`\n${c.argv.join(' ')} ${run.failed}\n`);
      process.exit(1);
    }
    if (round < warmup) {
      results[i].stdout = run.stdout;
      return;
    }
    results[i].samples.push(run.ms);
    results[i].cpu.push(run.cpu);
  });
}
process.stderr.write('\n');
process.stdout.write(JSON.stringify(results));
