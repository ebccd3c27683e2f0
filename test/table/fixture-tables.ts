// Loads the captured connection tables of test/fixtures/tables and summarises rows the way
// expected.json writes its counts, so that every test compares against the same numbers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countSockets } from '../../src/table/count-sockets.js';
import { detectFormat, parseTable } from '../../src/table/parse-table.js';
import { parseProcNet } from '../../src/table/proc-net-parser.js';
import type { SocketRow, SocketState } from '../../src/table/socket-row.js';
import { SocketTable } from '../../src/table/socket-table.js';

export const SCENARIOS = ['mixed', 'quiet', 'cookies'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** The captured text formats; /proc is two files (tcp + tcp6) and is read separately. */
export const TEXT_FORMATS = ['netstat-an', 'netstat-ant', 'netstat-antu', 'netstat-antW', 'ss-tan', 'ss-tanu'] as const;
export type TextFormat = (typeof TEXT_FORMATS)[number];
export const ALL_FORMATS = ['proc', ...TEXT_FORMATS] as const;
export type AnyFormat = (typeof ALL_FORMATS)[number];

type Counts = Record<string, number>;

export interface Expected {
  readonly states: Counts;
  readonly synRecvByIp: Counts;
  readonly establishedByIp: Counts;
  readonly timeWaitByIp: Counts;
  readonly byIpAllStatesButListen: Counts;
  readonly synRecvByNet: Counts;
  readonly establishedByNet: Counts;
  readonly synRecvByLocalPort: Counts;
  readonly procRows: { readonly tcp: number; readonly tcp6: number };
  readonly udpSockets: { readonly udp: number; readonly udp6: number };
  /** cookies only: which sources the kernel let hold a SYN_RECV at capture time. */
  readonly observedSynRecvByIp?: Counts;
}

const ROOT = fileURLToPath(new URL('../fixtures/tables/', import.meta.url));

export function fixtureText(scenario: Scenario, file: string): string {
  return readFileSync(join(ROOT, scenario, file), 'latin1');
}

export function expectedCounts(scenario: Scenario): Expected {
  return JSON.parse(fixtureText(scenario, 'expected.json')) as Expected;
}

/**
 * The counts the capture must show. expected.json holds counts by design; in `cookies` the kernel
 * picks which spoofed sources keep their one SYN_RECV, and expected.json records those picks in
 * observedSynRecvByIp, so they are added to the per-source maps here.
 */
export function capturedCounts(scenario: Scenario): Expected {
  const expected = expectedCounts(scenario);
  const observed = expected.observedSynRecvByIp;
  if (observed === undefined) return expected;
  return {
    ...expected,
    synRecvByIp: { ...expected.synRecvByIp, ...observed },
    byIpAllStatesButListen: { ...expected.byIpAllStatesButListen, ...observed },
  };
}

/** /proc/net/tcp and tcp6 together: the kernel's TCP table. */
export function procTcpRows(scenario: Scenario): SocketRow[] {
  return [
    ...parseProcNet(fixtureText(scenario, 'proc-tcp.txt')).rows,
    ...parseProcNet(fixtureText(scenario, 'proc-tcp6.txt')).rows,
  ];
}

/** All four /proc/net tables, as the daemon reads them. */
export function procAllRows(scenario: Scenario): SocketRow[] {
  return [
    ...procTcpRows(scenario),
    ...parseProcNet(fixtureText(scenario, 'proc-udp.txt')).rows,
    ...parseProcNet(fixtureText(scenario, 'proc-udp6.txt')).rows,
  ];
}

export function textRows(scenario: Scenario, format: TextFormat): SocketRow[] {
  const text = fixtureText(scenario, `${format}.txt`);
  const detected = detectFormat(text);
  if (detected === null) throw new Error(`${scenario}/${format}.txt: format not detected`);
  return parseTable(text, detected).rows.toRows();
}

export function rowsOf(scenario: Scenario, format: AnyFormat): SocketRow[] {
  return format === 'proc' ? procTcpRows(scenario) : textRows(scenario, format);
}

export function toObject(groups: ReadonlyMap<string, number>): Counts {
  return Object.fromEntries(groups);
}

const inStates = (...states: SocketState[]) => ({ proto: 'tcp' as const, states: new Set(states) });
const NETS = { by: 'net', prefix4: 24, prefix6: 64 } as const;

/** The rows' TCP counts in expected.json's shape. */
export function summarize(
  rowList: readonly SocketRow[],
): Omit<Expected, 'procRows' | 'udpSockets' | 'observedSynRecvByIp'> {
  const rows = SocketTable.from(rowList);
  return {
    states: countSockets(rows, { proto: 'tcp' }, { by: 'ip' }).states,
    synRecvByIp: toObject(countSockets(rows, inStates('SYN_RECV'), { by: 'ip' }).groups),
    establishedByIp: toObject(countSockets(rows, inStates('ESTABLISHED'), { by: 'ip' }).groups),
    timeWaitByIp: toObject(countSockets(rows, inStates('TIME_WAIT'), { by: 'ip' }).groups),
    // No state filter at all: LISTEN sockets must drop out because they have no source.
    byIpAllStatesButListen: toObject(countSockets(rows, { proto: 'tcp' }, { by: 'ip' }).groups),
    synRecvByNet: toObject(countSockets(rows, inStates('SYN_RECV'), NETS).groups),
    establishedByNet: toObject(countSockets(rows, inStates('ESTABLISHED'), NETS).groups),
    synRecvByLocalPort: toObject(countSockets(rows, inStates('SYN_RECV'), { by: 'port' }).groups),
  };
}

/** A row as one comparable string, for comparing tables as multisets. */
export const rowKey = (row: SocketRow): string =>
  `${row.proto} ${row.state} ${row.localPort} ${row.remote} ${row.remotePort}`;
