// Parses /proc/net/tcp, tcp6, udp and udp6: the kernel's own table, hex addresses in host byte order.
// This is the hot path of every scan, so it reads the text in place by character codes: no line
// arrays, no substrings for well-formed rows, and each distinct address is formatted once.
import { formatIpv4, formatIpv6Groups } from '../net/ip.js';
import type { MalformedLine, ParsedTable } from './parse-result.js';
import { KERNEL_STATES, type Proto, type SocketRow, type SocketState } from './socket-row.js';

/** The value of `count` hex digits at `at`, or -1 if one of them is not a hex digit. */
function hexAt(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const c = text.charCodeAt(i);
    let digit: number;
    if (c >= 48 && c <= 57) digit = c - 48;
    else if (c >= 65 && c <= 70) digit = c - 55;
    else if (c >= 97 && c <= 102) digit = c - 87;
    else return -1;
    value = value * 16 + digit;
  }
  return value;
}

// The kernel prints each 32-bit word of an address as a number in host byte order. Every Linux
// machine floodgate targets (x86-64, arm64) is little-endian, as are the captures operators paste.
const swap32 = (word: number): number =>
  (((word & 255) << 24) | (((word >>> 8) & 255) << 16) | (((word >>> 16) & 255) << 8) | (word >>> 24)) >>> 0;

function ipv6FromHex(text: string, at: number): string | null {
  const groups = new Array<number>(8);
  for (let w = 0; w < 4; w++) {
    const word = hexAt(text, at + w * 8, 8);
    if (word < 0) return null;
    const be = swap32(word);
    groups[w * 2] = be >>> 16;
    groups[w * 2 + 1] = be & 0xffff;
  }
  if (groups.every((g) => g === 0)) return '';
  // ::ffff:a.b.c.d is the IPv4 client of a dual-stack listener: it is that IPv4 address.
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    const v4 = ((groups[6]! << 16) | groups[7]!) >>> 0;
    return v4 === 0 ? '' : formatIpv4(v4);
  }
  return formatIpv6Groups(groups);
}

/**
 * IPv4 address text by its 32-bit value, in an open-addressing table. A Map would do, but most
 * addresses are above 2^30, which V8 keys as heap numbers: this is four times faster on a flood.
 */
class Ipv4Names {
  private keys = new Uint32Array(1024);
  private used = new Uint8Array(1024);
  // Filled, so the array starts and stays a packed array of strings (V8 deoptimises on the change).
  private names: string[] = new Array<string>(1024).fill('');
  private count = 0;

  get(word: number): string {
    let mask = this.keys.length - 1;
    let slot = Math.imul(word, 0x9e3779b1) >>> 0 & mask;
    while (this.used[slot] === 1) {
      if (this.keys[slot] === word) return this.names[slot]!;
      slot = (slot + 1) & mask;
    }
    const name = formatIpv4(swap32(word));
    if (++this.count * 2 > this.keys.length) {
      this.grow();
      mask = this.keys.length - 1;
      slot = Math.imul(word, 0x9e3779b1) >>> 0 & mask;
      while (this.used[slot] === 1) slot = (slot + 1) & mask;
    }
    this.used[slot] = 1;
    this.keys[slot] = word;
    this.names[slot] = name;
    return name;
  }

  private grow(): void {
    const { keys, used, names } = this;
    const size = keys.length * 2;
    this.keys = new Uint32Array(size);
    this.used = new Uint8Array(size);
    this.names = new Array<string>(size).fill('');
    for (let i = 0; i < keys.length; i++) {
      if (used[i] !== 1) continue;
      let slot = Math.imul(keys[i]!, 0x9e3779b1) >>> 0 & (size - 1);
      while (this.used[slot] === 1) slot = (slot + 1) & (size - 1);
      this.used[slot] = 1;
      this.keys[slot] = keys[i]!;
      this.names[slot] = names[i]!;
    }
  }
}

/** The proto a /proc/net header names: the UDP tables add "ref pointer drops" after "inode". */
export function procProtoFromHeader(text: string): Proto {
  const headerEnd = text.indexOf('\n');
  const header = headerEnd < 0 ? text : text.slice(0, headerEnd);
  return /\bdrops\b/.test(header) ? 'udp' : 'tcp';
}

/**
 * Parses /proc/net text as it arrives, chunk by chunk, so that a large live table never has to be
 * held whole in memory (a 1M-socket table is 143 MB of text).
 */
export class ProcNetParser {
  readonly rows: SocketRow[] = [];
  readonly malformed: MalformedLine[] = [];
  private readonly v4Names = new Ipv4Names();
  private readonly v6Names = new Map<string, string | null>();
  private carry = '';
  private lineNo = 0;

  constructor(private readonly proto: Proto) {}

  /** Parses every complete line of `chunk` (with what the previous chunk left unfinished). */
  push(chunk: string): void {
    const text = this.carry === '' ? chunk : this.carry + chunk;
    const lastNewline = text.lastIndexOf('\n');
    if (lastNewline < 0) {
      this.carry = text;
      return;
    }
    this.parseLines(text, lastNewline + 1);
    this.carry = text.slice(lastNewline + 1);
  }

  end(): ParsedTable {
    if (this.carry !== '') this.parseLines(this.carry, this.carry.length);
    this.carry = '';
    return { rows: this.rows, malformed: this.malformed };
  }

  /** Parses the lines in text[0, length), where length is just past a newline or the text's end. */
  private parseLines(text: string, length: number): void {
    const { rows, malformed, v4Names, v6Names, proto } = this;
    let lineStart = 0;
    let lineNo = this.lineNo;

    while (lineStart < length) {
      let lineEnd = text.indexOf('\n', lineStart);
      if (lineEnd < 0 || lineEnd > length) lineEnd = length;
      lineNo++;
      const start = lineStart;
      lineStart = lineEnd + 1;

      let p = start;
      while (text.charCodeAt(p) === 32) p++;
      if (p >= lineEnd || (p === lineEnd - 1 && text.charCodeAt(p) === 13)) continue; // blank line
      // The header ("  sl  local_address rem_address st …") has no "N:" slot number.
      if (text.charCodeAt(p) === 115 /* s */ && text.startsWith('sl ', p)) continue;
      const slot = p;
      while (text.charCodeAt(p) >= 48 && text.charCodeAt(p) <= 57) p++;
      let ok = p > slot && text.charCodeAt(p) === 58; /* : */
      p++;
      while (text.charCodeAt(p) === 32) p++;

      // local: 8 (IPv4) or 32 (IPv6) hex digits, ':', 4-digit port, ' ', then the remote alike.
      const width = text.charCodeAt(p + 8) === 58 ? 8 : text.charCodeAt(p + 32) === 58 ? 32 : 0;
      const remoteAt = p + width + 6;
      const stateAt = remoteAt + width + 6;
      ok = ok && width > 0 && stateAt + 2 <= lineEnd && text.charCodeAt(p + width + 5) === 32 && text.charCodeAt(remoteAt + width) === 58 && text.charCodeAt(remoteAt + width + 5) === 32;
      const localPort = ok ? hexAt(text, p + width + 1, 4) : -1;
      const remotePort = ok ? hexAt(text, remoteAt + width + 1, 4) : -1;
      const stateNo = ok ? hexAt(text, stateAt, 2) : -1;

      let remote: string | null | undefined = null;
      if (localPort >= 0 && remotePort >= 0 && stateNo >= 0) {
        if (width === 8) {
          const word = hexAt(text, remoteAt, 8);
          if (word === 0) remote = '';
          else if (word > 0) remote = v4Names.get(word);
        } else {
          const key = text.slice(remoteAt, remoteAt + 32);
          remote = v6Names.get(key);
          if (remote === undefined) {
            remote = ipv6FromHex(text, remoteAt);
            v6Names.set(key, remote);
          }
        }
      }
      let state: SocketState | undefined;
      if (proto === 'udp') state = stateNo === 1 ? 'ESTABLISHED' : 'UNCONN';
      else state = KERNEL_STATES[stateNo];
      if (remote === null || state === undefined) {
        const stop = lineEnd > start && text.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd;
        malformed.push({ line: lineNo, text: text.slice(start, stop) });
        continue;
      }
      const connected = remote !== '' && state !== 'LISTEN' && state !== 'UNCONN';
      rows.push({ proto, state, localPort, remote: connected ? remote : '', remotePort: connected ? remotePort : 0 });
    }
    this.lineNo = lineNo;
  }
}

export function parseProcNet(text: string, proto: Proto = procProtoFromHeader(text)): ParsedTable {
  const parser = new ProcNetParser(proto);
  parser.push(text);
  return parser.end();
}
