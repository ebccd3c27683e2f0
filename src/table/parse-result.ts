// What every table parser returns, and the small pieces the text formats share.
import type { AddressBook, SocketTable } from './socket-table.js';

export interface MalformedLine {
  /** 1-based line number within the input. */
  readonly line: number;
  readonly text: string;
}

export interface ParsedTable {
  readonly rows: SocketTable;
  /** Lines that looked like table rows but could not be read. */
  readonly malformed: MalformedLine[];
}

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

/** Calls `visit` with each line and its 1-based number, without building an array of lines. */
export function forEachLine(text: string, visit: (line: string, lineNo: number) => void): void {
  let start = 0;
  let lineNo = 0;
  const length = text.length;
  while (start < length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = length;
    lineNo++;
    const stop = end > start && text.charCodeAt(end - 1) === 13 /* \r */ ? end - 1 : end;
    visit(text.slice(start, stop), lineNo);
    start = end + 1;
  }
}
