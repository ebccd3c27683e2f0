// `floodgate scan`: totals per state and the top sources of the live or a captured table.
import { setTimeout as sleep } from 'node:timers/promises';
import type { WhatIf, WhatIfSpared } from '../detect/what-if.js';
import { UsageError } from '../errors.js';
import { type Grouping, countTop } from '../table/count-sockets.js';
import { FLOOD_COUNTERS, type FloodCounters, counterRates } from '../table/kernel-counters.js';
import { defaultProcRoot, liveTableFiles, readKernelCounters, readLiveTable } from '../table/live-table.js';
import { type MalformedLine, type RowsWanted, quoteLine, rowsRead } from '../table/parse-result.js';
import type { TableFormat } from '../table/parse-table.js';
import { type InputTable, mergeRows, readInput } from '../table/read-input.js';
import { STATES, type SocketState } from '../table/socket-row.js';

export interface ScanOptions {
  readonly input?: string[];
  readonly format?: TableFormat;
  readonly strict?: boolean;
  readonly by: 'ip' | 'net' | 'port';
  readonly prefix4: number;
  readonly prefix6: number;
  readonly state?: SocketState[];
  readonly port?: number[];
  readonly proto: 'tcp' | 'udp' | 'all';
  readonly top: number;
  readonly json?: boolean;
  readonly interval?: number;
  /** What-if: run this policy's detector on the captures, as the daemon would at one tick. */
  readonly policy?: string;
}

interface Counters {
  readonly total: FloodCounters;
  readonly perSecond?: FloodCounters;
  readonly seconds?: number;
  /** From the first /proc/net/netstat capture to the last, when more than one is given (they carry no time). */
  readonly change?: FloodCounters;
  /** The captures they were read from; absent for the live kernel. */
  readonly files?: readonly string[];
}

/** The counters of the /proc/net/netstat captures among the inputs: the last one's, and the change since the first. */
function capturedCounters(tables: readonly InputTable[]): Counters | undefined {
  const captures = tables.filter((t) => t.counters !== undefined);
  if (captures.length === 0) return undefined;
  const first = captures[0]!.counters!;
  const last = captures.at(-1)!.counters!;
  const change =
    captures.length > 1
      ? (Object.fromEntries(FLOOD_COUNTERS.map((name) => [name, last[name] - first[name]])) as FloodCounters)
      : undefined;
  return { total: last, ...(change && { change }), files: captures.map((t) => t.name) };
}

export async function scanCommand(options: ScanOptions): Promise<void> {
  const live = options.input === undefined || options.input.length === 0;
  if (!live && options.interval !== undefined)
    throw new UsageError('--interval samples the live kernel counters; it cannot be used with --input');
  if (live && options.policy !== undefined)
    throw new UsageError('--policy runs a what-if on captured tables; give them with --input');
  // Read first: a policy file with a mistake is reported before any capture is read.
  // The policy modules (YAML, the schema) and the detector are loaded for a what-if only: they are
  // most of a plain scan's start-up otherwise.
  const policy =
    options.policy === undefined
      ? undefined
      : (await import('../policy/load-policy.js')).loadPolicy(options.policy).policy;
  // Rows of other states are left out as they are read, and by net the sources are numbered as their
  // networks: one table of numbers to count, not one of addresses and then one of their networks.
  // What-if judges every row, by address: it keeps them all.
  const kept = policy === undefined && options.state ? new Set(options.state) : undefined;
  const networks =
    policy === undefined && options.by === 'net' ? { prefix4: options.prefix4, prefix6: options.prefix6 } : undefined;
  // One --state is also the state of the rows of `ss … state X` output, which has no State column.
  const ssState = options.state?.length === 1 ? options.state[0] : undefined;
  const keep: RowsWanted = {
    ...(kept && { states: kept }),
    ...(networks && { networks }),
    ...(ssState && { ssState }),
  };

  let tables: InputTable[];
  let counters: Counters | undefined;
  if (live) {
    let before: FloodCounters | undefined;
    if (options.interval !== undefined) {
      before = await readKernelCounters();
      await sleep(options.interval);
    }
    const [table, after] = await Promise.all([
      readLiveTable(options.proto, undefined, undefined, keep),
      readKernelCounters(),
    ]);
    tables = [{ name: 'live', format: 'proc', ...table }];
    counters =
      before === undefined
        ? { total: after }
        : {
            total: after,
            perSecond: counterRates(before, after, options.interval! / 1000),
            seconds: options.interval! / 1000,
          };
  } else {
    tables = await Promise.all(options.input!.map((name) => readInput(name, options.format, keep)));
    counters = capturedCounters(tables);
  }
  const socketTables = tables.filter((t) => t.format !== 'counters');

  const malformed: (MalformedLine & { file: string })[] = tables.flatMap((t) =>
    t.malformed.map((m) => ({ ...m, file: t.name })),
  );
  if (options.strict && malformed.length > 0) {
    const first = malformed[0]!;
    throw new UsageError(
      `${first.file}:${first.line}: not a row of a ` +
        `${tables.find((t) => t.name === first.file)!.format} table: ${quoteLine(first)}`,
    );
  }

  const grouping: Grouping =
    options.by === 'net' ? { by: 'net', prefix4: options.prefix4, prefix6: options.prefix6 } : { by: options.by };
  const table = mergeRows(tables, networks);
  const counts = countTop(
    table,
    {
      ...(options.state && { states: new Set(options.state) }),
      ...(options.port && { ports: new Set(options.port) }),
      proto: options.proto,
    },
    grouping,
    options.top,
  );
  const groups = counts.top;
  const states = Object.fromEntries(
    STATES.filter((s) => counts.states[s] !== undefined).map((s) => [s, counts.states[s]!]),
  );
  // The top sources shown are accounted for too: banned, or spared and why.
  const outcome =
    policy &&
    (await import('../detect/what-if.js')).whatIf(table, policy, options.by === 'port' ? [] : groups.map((g) => g.key));

  if (options.json) {
    const out = {
      total: counts.total,
      states,
      groups,
      distinct: counts.distinct,
      malformed: malformed.length,
      // One shape for both: what was read, as what, how many rows; the live table also names its files.
      source: tables.map((t) => ({
        input: t.name,
        format: t.format,
        rows: rowsRead(t),
        ...(live && { files: liveTableFiles(options.proto) }),
      })),
      ...(counters && {
        counters: counters.total,
        ...(counters.perSecond && { countersPerSecond: counters.perSecond }),
        ...(counters.change && { countersChange: counters.change }),
      }),
      ...(outcome && {
        bans: outcome.bans,
        spared: outcome.spared,
        ...(outcome.attack && { attack: outcome.attack.reasons }),
      }),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }

  const lines: string[] = [];
  // Only /proc/net/netstat captures given: the counters are all there is to show.
  const countersOnly = !live && socketTables.length === 0;
  const source = live
    ? `live kernel table (${defaultProcRoot()}/net/tcp, tcp6, udp, udp6)`
    : socketTables.map((t) => `${t.name} (${t.format})`).join(', ');
  if (!countersOnly) lines.push(`${counts.total} sockets matched in ${source}`);
  if (malformed.length > 0) {
    lines.push(
      `${malformed.length} malformed line${malformed.length === 1 ? '' : 's'} skipped ` +
        `(first: ${malformed[0]!.file}:${malformed[0]!.line}; --strict to stop on them)`,
    );
  }
  if (!countersOnly) {
    lines.push('', 'STATE         COUNT');
    for (const [state, n] of Object.entries(states)) lines.push(`${state.padEnd(12)} ${String(n).padStart(6)}`);
    if (counts.total === 0) lines.push('(no sockets)');
  }
  if (options.top > 0 && !countersOnly) {
    const what = options.by === 'ip' ? 'REMOTE IP' : options.by === 'net' ? 'REMOTE NETWORK' : 'LOCAL PORT';
    const filters = [
      options.state && `state ${[...new Set(options.state)].join(',')}`,
      options.port && `local port ${options.port.join(',')}`,
      options.proto !== 'all' && options.proto,
    ].filter(Boolean);
    lines.push(
      '',
      `top ${groups.length} of ${counts.distinct} by ${options.by}${filters.length ? ` (${filters.join('; ')})` : ''}`,
    );
    lines.push(` COUNT  ${what}`);
    for (const group of groups) lines.push(`${String(group.count).padStart(6)}  ${group.key}`);
  }
  if (counters) {
    if (!countersOnly) lines.push('');
    if (counters.files) lines.push(`kernel flood counters in ${counters.files.join(', ')} (/proc/net/netstat)`);
    const column = counters.perSecond
      ? `   PER SECOND (over ${counters.seconds}s)`
      : counters.change
        ? '       CHANGE (first capture to last)'
        : '';
    lines.push(`KERNEL FLOOD COUNTER    SINCE BOOT${column}`);
    for (const name of FLOOD_COUNTERS) {
      const extra = counters.perSecond
        ? `   ${counters.perSecond[name].toFixed(1).padStart(10)}`
        : counters.change
          ? `   ${String(counters.change[name]).padStart(10)}`
          : '';
      lines.push(`${name.padEnd(22)} ${String(counters.total[name]).padStart(11)}${extra}`);
    }
  }
  if (outcome) lines.push('', ...whatIfLines(outcome, options.policy!));
  process.stdout.write(`${lines.join('\n')}\n`);
}

function whatIfLines(outcome: WhatIf, file: string): string[] {
  const lines = [`WHAT IF: ${file} at one tick, with nothing banned yet`];
  const width = Math.max(
    16,
    ...outcome.bans.map((b) => b.target.length),
    ...outcome.spared.map((s) => s.target.length),
  );
  if (outcome.bans.length === 0) lines.push('no bans');
  else {
    lines.push(
      `${outcome.bans.length} ban${outcome.bans.length === 1 ? '' : 's'}`,
      `${'TARGET'.padEnd(width)}  ${'RULE'.padEnd(20)}   COUNT  TTL`,
    );
    for (const ban of outcome.bans)
      lines.push(`${ban.target.padEnd(width)}  ${ban.rule.padEnd(20)}  ${String(ban.count).padStart(6)}  ${ban.ttl}`);
  }
  if (outcome.spared.length > 0) {
    lines.push('', `${outcome.spared.length} spared`, `${'TARGET'.padEnd(width)}  REASON`);
    for (const spared of outcome.spared) lines.push(`${spared.target.padEnd(width)}  ${SPARED_REASONS[spared.reason]}`);
  }
  if (outcome.attack) lines.push('', `SYN flood with nobody to ban: ${outcome.attack.reasons.join('; ')}`);
  return lines;
}

const SPARED_REASONS: Readonly<Record<WhatIfSpared['reason'], string>> = {
  allowlist: 'allowlist (an allowlisted address, or a network holding one)',
  min_sources: 'min_sources (over a per-net threshold, from too few sources)',
  'under threshold': 'under threshold (under every rule that counts it)',
  max_active: 'max_active (ban.max_active bans made already)',
};
