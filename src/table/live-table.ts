// Reads the live kernel table from /proc/net (the calling process's network namespace). Chosen over
// `ss` after measuring both; see the README. Needs no privileges.
import { readFileSync } from 'node:fs';
import { type FloodCounters, parseKernelCounters } from './kernel-counters.js';
import type { MalformedLine, ParsedTable } from './parse-result.js';
import { parseProcNet } from './proc-net-parser.js';
import type { Proto, SocketRow } from './socket-row.js';

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

export async function readLiveTable(proto: Proto | 'all' = 'all', procRoot = '/proc'): Promise<ParsedTable> {
  const wanted = SOURCES.filter((source) => proto === 'all' || source.proto === proto);
  const texts = wanted.map((source) => readOptional(`${procRoot}/net/${source.file}`));
  const rows: SocketRow[] = [];
  const malformed: MalformedLine[] = [];
  texts.forEach((text, i) => {
    const parsed = parseProcNet(text, wanted[i]!.proto);
    for (const row of parsed.rows) rows.push(row);
    malformed.push(...parsed.malformed);
  });
  return { rows, malformed };
}

export async function readKernelCounters(procRoot = '/proc'): Promise<FloodCounters> {
  return parseKernelCounters(await readOptional(`${procRoot}/net/netstat`));
}
