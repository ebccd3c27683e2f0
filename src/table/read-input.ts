// Reads captured tables named by --input (files or "-" for stdin), detecting each one's format.
import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import type { ParsedTable } from './parse-result.js';
import { type TableFormat, detectFormat, parseTable } from './parse-table.js';
import { parseProcNetBytes } from './proc-net-parser.js';
import { SocketTable } from './socket-table.js';

export interface InputTable extends ParsedTable {
  readonly name: string;
  /** 'empty' for a capture with nothing but blank space in it: no format to tell, and 0 sockets. */
  readonly format: TableFormat | 'empty';
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function readInput(name: string, forced?: TableFormat): Promise<InputTable> {
  let bytes: Buffer;
  try {
    bytes = name === '-' ? await readStdin() : await readFile(name);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read --input ${name}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`, { cause: error });
  }
  const label = name === '-' ? 'standard input' : name;
  // An empty capture is a table with no sockets (a quiet host, or `ss -H` with nothing open).
  if (isBlank(bytes)) return { name, format: forced ?? 'empty', rows: new SocketTable(), malformed: [] };
  const format = forced ?? detectFormat(bytes.toString('latin1', 0, Math.min(bytes.length, 64 * 1024)));
  if (format === null) {
    throw new UsageError(
      `cannot tell the format of ${label}: expected /proc/net/tcp contents, ` +
        '`netstat -an` output or `ss -tan` output; use --format proc|netstat|ss to say which',
    );
  }
  // /proc text is parsed as bytes: a 1M-row capture is 143 MB, and as a string it was copied twice.
  const table = { name, format, ...(format === 'proc' ? parseProcNetBytes(bytes) : parseTable(bytes.toString('latin1'), format)) };
  // Not one line read: the wrong file, or the wrong --format. Counting 0 sockets would look like a
  // quiet host.
  if (table.rows.length === 0 && table.malformed.length > 0) {
    const first = table.malformed[0]!;
    const lines = table.malformed.length === 1 ? 'its only row is' : `all ${table.malformed.length} of its rows are`;
    throw new UsageError(`cannot read ${label} as ${FORMAT_NAMES[format]}: ${lines} malformed (line ${first.line}: ${JSON.stringify(first.text)})`);
  }
  return table;
}

const FORMAT_NAMES: Readonly<Record<TableFormat, string>> = { proc: '/proc/net/tcp contents', netstat: '`netstat -an` output', ss: '`ss -tan` output' };

function isBlank(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 32 && byte !== 10 && byte !== 13 && byte !== 9) return false;
  return true;
}

export function mergeRows(tables: readonly ParsedTable[]): SocketTable {
  if (tables.length === 1) return tables[0]!.rows;
  const rows = new SocketTable();
  for (const table of tables) rows.append(table.rows);
  return rows;
}
