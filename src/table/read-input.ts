// Reads captured tables named by --input (files or "-" for stdin), detecting each one's format.
import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import type { ParsedTable } from './parse-result.js';
import { type TableFormat, detectFormat, parseTable } from './parse-table.js';
import { parseProcNetBytes } from './proc-net-parser.js';
import { SocketTable } from './socket-table.js';

export interface InputTable extends ParsedTable {
  readonly name: string;
  readonly format: TableFormat;
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
  const format = forced ?? detectFormat(bytes.toString('latin1', 0, Math.min(bytes.length, 64 * 1024)));
  if (format === null) {
    throw new UsageError(
      `cannot tell the format of ${name === '-' ? 'standard input' : name}: expected /proc/net/tcp contents, ` +
        '`netstat -an` output or `ss -tan` output; use --format proc|netstat|ss to say which',
    );
  }
  // /proc text is parsed as bytes: a 1M-row capture is 143 MB, and as a string it was copied twice.
  return { name, format, ...(format === 'proc' ? parseProcNetBytes(bytes) : parseTable(bytes.toString('latin1'), format)) };
}

export function mergeRows(tables: readonly ParsedTable[]): SocketTable {
  if (tables.length === 1) return tables[0]!.rows;
  const rows = new SocketTable();
  for (const table of tables) rows.append(table.rows);
  return rows;
}
