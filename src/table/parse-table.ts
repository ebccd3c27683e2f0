// Reads a captured table in any supported format: detects the format, then hands it to its parser.
import { parseNetstat } from './netstat-parser.js';
import type { ParsedTable, RowsWanted, TableText } from './parse-result.js';
import { parseProcNet } from './proc-net-parser.js';
import { parseSs } from './ss-parser.js';

export const FORMATS = ['proc', 'netstat', 'ss'] as const;
export type TableFormat = (typeof FORMATS)[number];

const PROC_ROW = /^\s*\d+: [0-9A-Fa-f]{8}(?:[0-9A-Fa-f]{24})?:[0-9A-Fa-f]{4} /;
const NETSTAT_ROW = /^(?:tcp6?|udp6?)\s+\d+\s+\d+\s/;
const SS_ROW =
  /^(?:(?:tcp|udp|mptcp)\s+)?(?:ESTAB|SYN-SENT|SYN-RECV|FIN-WAIT-[12]|TIME-WAIT|UNCONN|CLOSE-WAIT|LAST-ACK|LISTEN|CLOSING|CLOSED)\s+\d+\s+\d+\s/;

/** Looks at the first lines; null when nothing there says which tool wrote the text. */
export function detectFormat(text: string): TableFormat | null {
  let seen = 0;
  for (const line of text.slice(0, 64 * 1024).split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s*sl\s+local_address/.test(line) || PROC_ROW.test(line)) return 'proc';
    if (/^(?:Active Internet|Active Connections|Proto\s+Recv-Q|\s+Proto\s+Local)/.test(line) || NETSTAT_ROW.test(line))
      return 'netstat';
    // ss's header; without State when ss was asked for one state (`ss -tan state syn-recv`).
    if (/^(?:Netid\s+)?(?:State\s+)?Recv-Q\s+Send-Q\s+Local Address:Port/.test(line) || SS_ROW.test(line)) return 'ss';
    if (++seen >= 20) break;
  }
  return null;
}

/** `wanted.ssState` is the state of the rows of ss output that has no State column. */
export function parseTable(text: TableText, format: TableFormat, wanted: RowsWanted = {}): ParsedTable {
  switch (format) {
    case 'proc':
      return parseProcNet(typeof text === 'string' ? text : [...text].join(''));
    case 'netstat':
      return parseNetstat(text);
    case 'ss':
      return parseSs(text, 'tcp', wanted.ssState);
  }
}
