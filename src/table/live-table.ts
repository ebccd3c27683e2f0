// Reads the live kernel table from /proc/net (the calling process's network namespace). Chosen over
// `ss` after measuring both; see the README. Needs no privileges.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { type FloodCounters, parseKernelCounters } from './kernel-counters.js';
import type { MalformedLine, ParsedTable, RowsWanted } from './parse-result.js';
import { ProcNetParser } from './proc-net-parser.js';
import type { Proto } from './socket-row.js';
import { SocketTable } from './socket-table.js';

const SOURCES: readonly { file: string; proto: Proto }[] = [
  { file: 'tcp', proto: 'tcp' },
  { file: 'tcp6', proto: 'tcp' },
  { file: 'udp', proto: 'udp' },
  { file: 'udp6', proto: 'udp' },
];

// Synchronous on purpose: /proc files report size 0, and the promise API then reads them in 64 KiB
// thread-pool round trips, 1.3x slower on a 139k-socket table (scripts/bench-live.ts).
function readOptional(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch (error) {
    // A kernel without IPv6 has no tcp6/udp6: that is an empty table, not an error.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

const CHUNK = 1 << 20;
/** One read buffer for every scan: a daemon scans every second and need not allocate a megabyte each time. */
let readBuffer: Buffer | undefined;

/** Feeds a /proc/net file to the parser a megabyte at a time: the text is never held whole. */
function readInto(path: string, parser: ProcNetParser, buffer: Buffer): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    // A kernel without IPv6 has no tcp6/udp6: that is an empty table, not an error.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      parser.push(buffer, n);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Where the kernel's tables are read: /proc, or FLOODGATE_PROC_ROOT (a host's /proc mounted into a
 * container, or a directory of generated tables for a benchmark).
 */
export function defaultProcRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLOODGATE_PROC_ROOT || '/proc';
}

/** The files readLiveTable reads for `proto`, as scan --json names them ("/proc/net/tcp", …). */
export function liveTableFiles(proto: Proto | 'all' = 'all', procRoot = defaultProcRoot()): string[] {
  return SOURCES.filter((s) => proto === 'all' || s.proto === proto).map((s) => `${procRoot}/net/${s.file}`);
}

export async function readLiveTable(
  proto: Proto | 'all' = 'all',
  procRoot = defaultProcRoot(),
  /** A table to empty and fill again (the daemon's, from its previous scan); a new one when absent. */
  into?: SocketTable,
  /** What to keep; every row, as addresses, when absent. With `into`, `networks` must be its own. */
  wanted: RowsWanted = {},
): Promise<ParsedTable> {
  readBuffer ??= Buffer.allocUnsafe(CHUNK);
  const buffer = readBuffer;
  const { states } = wanted;
  // A table reused as it is: asked for networks it does not number, it would count addresses as them.
  if (into !== undefined && wanted.networks !== undefined && !into.addresses.numbers(wanted.networks))
    throw new Error('readLiveTable: the table given does not number the networks asked for');
  const table = into ?? new SocketTable(wanted.networks);
  table.clear();
  const malformed: MalformedLine[] = [];
  let skipped = 0;
  for (const source of SOURCES) {
    if (proto !== 'all' && source.proto !== proto) continue;
    // One parser per file: each file ends its last line, and one cut short must not glue onto the next.
    const parser = new ProcNetParser(source.proto, table, states);
    readInto(`${procRoot}/net/${source.file}`, parser, buffer);
    const parsed = parser.end();
    for (const line of parsed.malformed) malformed.push(line); // no spread: unbounded in principle
    skipped += parsed.skipped ?? 0;
  }
  return { rows: table, malformed, skipped };
}

export async function readKernelCounters(procRoot = defaultProcRoot()): Promise<FloodCounters> {
  return parseKernelCounters(readOptional(`${procRoot}/net/netstat`));
}
