// Reads captured tables named by --input (files or "-" for stdin, gzip or not), detecting each one's
// format; a /proc/net/netstat capture gives the kernel's flood counters instead of sockets.
import { constants } from 'node:buffer';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { UsageError } from '../errors.js';
import { type FloodCounters, parseKernelCounters } from './kernel-counters.js';
import { type ParsedTable, QUOTE_MAX, type RowsWanted, quoteLine, rowsRead } from './parse-result.js';
import { type TableFormat, detectFormat, parseTable } from './parse-table.js';
import { ProcNetParser, parseProcNetBytes, procProtoFromHeader } from './proc-net-parser.js';
import { type NetworkSize, SocketTable } from './socket-table.js';

export interface InputTable extends ParsedTable {
  readonly name: string;
  /**
   * 'empty' for a capture with nothing but blank space in it: no format to tell, and 0 sockets;
   * 'counters' for a /proc/net/netstat capture: no sockets, the kernel's counters.
   */
  readonly format: TableFormat | 'empty' | 'counters';
  /** The flood counters of a /proc/net/netstat capture. */
  readonly counters?: FloodCounters;
}

/** A /proc/net/netstat capture: its TcpExt name line is followed by its value line. */
const TCP_EXT = /^TcpExt:[ \t]+[A-Za-z]/m;

/**
 * All of a stream (standard input), up to `limit` bytes, the most a plain file is read: a pipe that
 * never ends (`--input - < /dev/zero`) is refused there rather than filling the memory.
 */
export async function readStream(stream: AsyncIterable<unknown>, limit: number = STDIN_MAX): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), 'latin1');
    size += bytes.length;
    if (size > limit) {
      throw new UsageError(
        `cannot read standard input: it holds more than ${formatBytes(limit)}; save the capture to a file ` +
          'and name the file with --input',
      );
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}

const formatBytes = (n: number): string =>
  n >= 1 << 30 ? `${n / (1 << 30)} GiB` : n >= 1 << 20 ? `${n / (1 << 20)} MiB` : `${n} bytes`;

const STREAM_CHUNK = 1 << 20;

/**
 * A /proc/net capture in a plain file of more than a megabyte, parsed a megabyte at a time as it is
 * read. A 1M-row capture is 150 MB: read whole, the fresh buffer's page faults cost twice what the
 * chunks do. Two buffers take turns: the next megabyte is read (on libuv's thread pool, so on the
 * other core) while this one is parsed, and the kernel's copy costs no time on the parsing thread.
 * Null for anything else (small, gzip, another format, not readable): the ordinary path then reads
 * it and reports what is wrong.
 */
async function streamProcFile(
  name: string,
  forced: TableFormat | undefined,
  wanted: RowsWanted,
): Promise<ParsedTable | null> {
  let file: FileHandle;
  try {
    file = await open(name, 'r');
  } catch {
    return null;
  }
  try {
    let buffer = Buffer.allocUnsafe(STREAM_CHUNK);
    let spare = Buffer.allocUnsafe(STREAM_CHUNK);
    let length = 0;
    for (let m = 1; m > 0 && length < STREAM_CHUNK; length += m)
      m = (await file.read(buffer, length, STREAM_CHUNK - length, null)).bytesRead;
    if (length < STREAM_CHUNK || (buffer[0] === 0x1f && buffer[1] === 0x8b)) return null;
    const head = buffer.toString('latin1', 0, 64 * 1024);
    if ((forced ?? detectFormat(head)) !== 'proc') return null;
    const parser = new ProcNetParser(procProtoFromHeader(head), new SocketTable(wanted.networks), wanted.states);
    while (length > 0) {
      // The parser keeps what it needs of a chunk (an unfinished line): the buffer is free after push.
      const next = file.read(spare, 0, STREAM_CHUNK, null);
      parser.push(buffer, length);
      length = (await next).bytesRead;
      [buffer, spare] = [spare, buffer];
    }
    return parser.end();
  } catch {
    return null;
  } finally {
    await file.close();
  }
}

/**
 * A captured table. `wanted` applies to /proc/net text (the format scan reads fastest, so the one
 * worth narrowing as it is read); the other formats keep every row, as addresses.
 */
export async function readInput(name: string, forced?: TableFormat, wanted: RowsWanted = {}): Promise<InputTable> {
  const streamed = name === '-' ? null : await streamProcFile(name, forced, wanted);
  if (streamed !== null) return checked({ name, format: 'proc', ...streamed }, name);
  let bytes: Buffer;
  try {
    bytes = name === '-' ? await readStream(process.stdin) : await readFile(name);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot read --input ${name}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`,
      { cause: error },
    );
  }
  const label = name === '-' ? 'standard input' : name;
  // A gzip capture (by its magic bytes, so stdin too), up to the size of the largest plain file
  // read (a gzip bomb stops there).
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: GUNZIP_MAX });
    } catch (error) {
      const why =
        (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
          ? 'it decompresses to more than 2 GiB'
          : `it starts like gzip, but does not decompress: ${(error as Error).message}`;
      throw new UsageError(`cannot read ${label}: ${why}`, { cause: error });
    }
  }
  // An empty capture is a table with no sockets (a quiet host, or `ss -H` with nothing open).
  if (isBlank(bytes)) return { name, format: forced ?? 'empty', rows: new SocketTable(), malformed: [] };
  const head = bytes.toString('latin1', 0, Math.min(bytes.length, 64 * 1024));
  // Told apart by its TcpExt: lines whatever --format says: --format names a socket table's format.
  if (TCP_EXT.test(head)) return readCounters(name, label, bytes.toString('latin1'));
  const format = forced ?? detectFormat(head);
  if (format === null) {
    throw new UsageError(
      `cannot tell the format of ${label}: expected /proc/net/tcp contents, ` +
        '`netstat -an` output or `ss -tan` output; use --format proc|netstat|ss to say which',
    );
  }
  // /proc text is parsed as bytes: a 1M-row capture is 143 MB, and as a string it was copied twice.
  // The others are read as text a chunk at a time: V8 makes no string over 512 MiB.
  return checked(
    {
      name,
      format,
      ...(format === 'proc'
        ? parseProcNetBytes(bytes, undefined, wanted)
        : parseTable(textChunks(bytes), format, wanted)),
    },
    label,
  );
}

function checked(table: InputTable & { readonly format: TableFormat }, label: string): InputTable {
  const { format } = table;
  // Rows whose state the capture does not say: refused whole, not counted as malformed one by one.
  if (table.noStateColumn) {
    throw new UsageError(
      `cannot read ${label} as ${FORMAT_NAMES[format]}: it has no State column (ss leaves it out when ` +
        'asked for one state, as `ss -tan state syn-recv` does); say which state its rows are in with ' +
        'one --state, for example --state SYN_RECV',
    );
  }
  // Not one line read: the wrong file, or the wrong --format. Counting 0 sockets would look like a
  // quiet host.
  if (rowsRead(table) === 0 && table.malformed.length > 0) {
    const first = table.malformed[0]!;
    const lines = table.malformed.length === 1 ? 'its only row is' : `all ${table.malformed.length} of its rows are`;
    throw new UsageError(
      `cannot read ${label} as ${FORMAT_NAMES[format]}: ${lines} malformed (line ${first.line}: ${quoteLine(first)})`,
    );
  }
  return table;
}

function readCounters(name: string, label: string, text: string): InputTable {
  const lines = text.split('\n');
  const at = lines.findIndex((line) => TCP_EXT.test(line));
  const values = lines[at + 1] ?? '';
  // A name line alone (a capture cut short) would read as every counter 0: a quiet host it is not.
  if (!/^TcpExt:([ \t]+\d+)+[ \t]*$/.test(values.trimEnd())) {
    throw new UsageError(
      `cannot read ${label} as a /proc/net/netstat capture: its TcpExt: name line (line ` +
        `${at + 1}) is not followed by a line of numbers, got ${JSON.stringify(values.slice(0, 60))}`,
    );
  }
  return { name, format: 'counters', rows: new SocketTable(), malformed: [], counters: parseKernelCounters(text) };
}

const FORMAT_NAMES: Readonly<Record<TableFormat, string>> = {
  proc: '/proc/net/tcp contents',
  netstat: '`netstat -an` output',
  ss: '`ss -tan` output',
};

/** The longest line of a text capture read whole; a longer one is cut (it is no table row anyway). */
const LINE_MAX = 64 * 1024;

/**
 * The text of `bytes` in chunks of at most `chunkBytes` that each end with a newline (the last one
 * perhaps not), so that every line but an over-long one lies whole in one chunk; of a line longer
 * than a chunk only the first LINE_MAX bytes are kept.
 */
export function* textChunks(bytes: Buffer, chunkBytes = 64 * 1024 * 1024): Generator<string> {
  let start = 0;
  while (start < bytes.length) {
    const end = start + chunkBytes;
    if (end >= bytes.length) {
      yield bytes.toString('latin1', start);
      return;
    }
    const newline = bytes.lastIndexOf(NEWLINE, end - 1);
    if (newline >= start) {
      yield bytes.toString('latin1', start, newline + 1);
      start = newline + 1;
      continue;
    }
    const next = bytes.indexOf(NEWLINE, end);
    yield `${bytes.toString('latin1', start, start + Math.max(Math.min(LINE_MAX, chunkBytes), QUOTE_MAX + 1))}\n`;
    if (next < 0) return;
    start = next + 1;
  }
}

const NEWLINE = 10;
/** readFile's own limit for a plain file: 2 GiB. */
const GUNZIP_MAX = Math.min(constants.MAX_LENGTH, 2 ** 31 - 1);
/** Standard input is read up to what a plain file may hold. */
const STDIN_MAX = 2 ** 31;

function isBlank(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 32 && byte !== 10 && byte !== 13 && byte !== 9) return false;
  return true;
}

/**
 * One table of all the tables' rows; of networks of these sizes when `networks` is given (a table
 * of addresses appended to it is numbered by network as it goes).
 */
export function mergeRows(tables: readonly ParsedTable[], networks?: NetworkSize): SocketTable {
  if (tables.length === 1) return tables[0]!.rows;
  const rows = new SocketTable(networks);
  for (const table of tables) rows.append(table.rows);
  return rows;
}
