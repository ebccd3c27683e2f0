// What every table parser returns, and the small pieces the text formats share.
import type { SocketState } from './socket-row.js';
import type { AddressBook, NetworkSize, SocketTable } from './socket-table.js';

export interface MalformedLine {
  /** 1-based line number within the input. */
  readonly line: number;
  /** The line, or its first QUOTE_MAX characters when it is longer. */
  readonly text: string;
  /** The whole line's length, when `text` is only its start. */
  readonly length?: number;
}

/**
 * How much of a bad line is kept and quoted: enough to recognise it, and never a whole megabyte of
 * it, nor the whole of a one-line file that is no table (a key file named by mistake, or on purpose
 * by someone running floodgate through sudo).
 */
export const QUOTE_MAX = 80;

/** A bad line as kept: `text` is the line, or at least its start; `length` the whole line's. */
export function malformedLine(line: number, text: string, length = text.length): MalformedLine {
  return length <= QUOTE_MAX ? { line, text } : { line, text: text.slice(0, QUOTE_MAX), length };
}

/** A bad line as a message shows it: quoted, and marked when cut. */
export function quoteLine(malformed: MalformedLine): string {
  const quoted = JSON.stringify(malformed.text);
  return malformed.length === undefined
    ? quoted
    : `${quoted}… (the first ${QUOTE_MAX} of ${malformed.length} characters)`;
}

/**
 * What a reader keeps of a table; everything, as addresses, when absent. `states` and `networks` apply
 * to /proc/net text, `ssState` to ss output.
 */
export interface RowsWanted {
  /** Only rows in these states are kept (the others are checked and counted in `skipped`). */
  readonly states?: ReadonlySet<SocketState>;
  /** Remote addresses are numbered as their networks of these sizes (see AddressBook). */
  readonly networks?: NetworkSize;
  /**
   * The state of the rows of `ss` output without its State column: ss leaves it out when asked for
   * one state (`ss -tan state syn-recv`), so only the operator can say which.
   */
  readonly ssState?: SocketState;
}

export interface ParsedTable {
  readonly rows: SocketTable;
  /** Lines that looked like table rows but could not be read. */
  readonly malformed: MalformedLine[];
  /** Well-formed rows the parser was told to leave out (a state not asked for); 0 when absent. */
  readonly skipped?: number;
  /** `ss` output whose header has no State column, and no state was given for its rows. */
  readonly noStateColumn?: boolean;
}

/** How many well-formed rows a table had, kept or left out. */
export const rowsRead = (table: ParsedTable): number => table.rows.length + (table.skipped ?? 0);

/** Remembers the AddressBook id of each address text seen: a flood repeats the same few sources. */
export class AddressCache {
  private readonly cache = new Map<string, number | null>();

  constructor(private readonly book: AddressBook) {}

  /** The id of the address `text` spells, or null when it is not an address. */
  id(text: string): number | null {
    let hit = this.cache.get(text);
    if (hit === undefined) {
      // "%eth0" scopes name an interface, not an address.
      const percent = text.indexOf('%');
      try {
        hit = this.book.idOf(percent < 0 ? text : text.slice(0, percent));
      } catch {
        hit = null;
      }
      this.cache.set(text, hit);
    }
    return hit;
  }
}

const UNSPECIFIED = new Set(['0.0.0.0', '::', '*']);

/**
 * Splits "addr:port", "[v6]:port", ":::80", "*:80" or "0.0.0.0:*" and numbers the address.
 * Returns null when the address is not an address (a host name from netstat without -n, a truncated
 * IPv6 address). An unspecified address (also mapped 0.0.0.0) or port comes back as 0.
 */
export function splitEndpoint(text: string, cache: AddressCache): { address: number; port: number } | null {
  const colon = text.lastIndexOf(':');
  if (colon <= 0 || colon === text.length - 1) return null;
  let address = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (address.charCodeAt(0) === 91 /* [ */ && address.charCodeAt(address.length - 1) === 93 /* ] */) {
    address = address.slice(1, -1);
  }
  let port = 0;
  if (portText !== '*') {
    port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535 || portText.length > 5) return null;
  }
  if (UNSPECIFIED.has(address)) return { address: 0, port };
  const id = cache.id(address);
  return id === null ? null : { address: id, port };
}

/**
 * Calls `visit` with each line and its 1-based number, without building an array of lines. For a
 * text read in chunks that each end with a newline: `linesBefore` is the number of lines of the
 * chunks before, and the result is the number of lines so far.
 */
export function forEachLine(text: string, visit: (line: string, lineNo: number) => void, linesBefore = 0): number {
  let start = 0;
  let lineNo = linesBefore;
  const length = text.length;
  while (start < length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = length;
    lineNo++;
    const stop = end > start && text.charCodeAt(end - 1) === 13 /* \r */ ? end - 1 : end;
    visit(text.slice(start, stop), lineNo);
    start = end + 1;
  }
  return lineNo;
}

/** A whole text, or the chunks of one that each end with a newline (read-input.ts's textChunks). */
export type TableText = string | Iterable<string>;

/** forEachLine over every chunk of a text, numbering lines across chunks. */
export function forEachLineOf(text: TableText, visit: (line: string, lineNo: number) => void): void {
  let lines = 0;
  for (const chunk of typeof text === 'string' ? [text] : text) lines = forEachLine(chunk, visit, lines);
}
