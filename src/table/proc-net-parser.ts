// Parses /proc/net/tcp, tcp6, udp and udp6: the kernel's own table, hex addresses in host byte order.
// This is the hot path of every scan, so it reads the bytes in place: no line strings, no objects
// for well-formed rows, and each distinct address is numbered once (see socket-table.ts).
import { type MalformedLine, type ParsedTable, QUOTE_MAX, type RowsWanted, malformedLine } from './parse-result.js';
import { KERNEL_STATES, type Proto, STATES, type SocketState } from './socket-row.js';
import { SocketTable, protoIndex, stateIndex } from './socket-table.js';

/** Per byte: its value as a hex digit, or 16 for a byte that is no hex digit. */
const HEX = new Uint8Array(256).fill(16);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[65 + c] = HEX[97 + c] = 10 + c;

// Digits are read a fixed number at a time, each width its own function, so that the optimizing
// compiler sees straight-line code: with a loop per field a 1M-row table parsed about a fifth slower.

/** The value of the 2 hex digits at `at`, or -1 if one is no hex digit. */
function hex2(b: Uint8Array, at: number): number {
  const d0 = HEX[b[at]!]!;
  const d1 = HEX[b[at + 1]!]!;
  return (d0 | d1) & 16 ? -1 : (d0 << 4) | d1;
}

/** The value of the 4 hex digits at `at`, or -1 if one is no hex digit. */
function hex4(b: Uint8Array, at: number): number {
  const d0 = HEX[b[at]!]!;
  const d1 = HEX[b[at + 1]!]!;
  const d2 = HEX[b[at + 2]!]!;
  const d3 = HEX[b[at + 3]!]!;
  return (d0 | d1 | d2 | d3) & 16 ? -1 : (d0 << 12) | (d1 << 8) | (d2 << 4) | d3;
}

/** Whether the 8 bytes at `at` are hex digits. */
function isHex8(b: Uint8Array, at: number): boolean {
  return (
    ((HEX[b[at]!]! |
      HEX[b[at + 1]!]! |
      HEX[b[at + 2]!]! |
      HEX[b[at + 3]!]! |
      HEX[b[at + 4]!]! |
      HEX[b[at + 5]!]! |
      HEX[b[at + 6]!]! |
      HEX[b[at + 7]!]!) &
      16) ===
    0
  );
}

/**
 * The 32-bit word of an address printed as 8 hex digits at `at`, in network byte order; -1 if one is
 * no hex digit. The kernel prints each word as a number in host byte order, and every Linux machine
 * floodgate targets (x86-64, arm64) is little-endian, as are the captures operators paste: the digit
 * pairs are the bytes, last first. "0100A8C0" is 192.168.0.1.
 */
function word8(b: Uint8Array, at: number): number {
  const d0 = HEX[b[at]!]!;
  const d1 = HEX[b[at + 1]!]!;
  const d2 = HEX[b[at + 2]!]!;
  const d3 = HEX[b[at + 3]!]!;
  const d4 = HEX[b[at + 4]!]!;
  const d5 = HEX[b[at + 5]!]!;
  const d6 = HEX[b[at + 6]!]!;
  const d7 = HEX[b[at + 7]!]!;
  if ((d0 | d1 | d2 | d3 | d4 | d5 | d6 | d7) & 16) return -1;
  // The top byte multiplied, not shifted: a shift would make it a negative 32-bit number.
  return ((d6 << 4) | d7) * 0x1000000 + ((((d4 << 4) | d5) << 16) | (((d2 << 4) | d3) << 8) | ((d0 << 4) | d1));
}

/** The proto a /proc/net header names: the UDP tables add "ref pointer drops" after "inode". */
export function procProtoFromHeader(text: string): Proto {
  const headerEnd = text.indexOf('\n');
  const header = headerEnd < 0 ? text : text.slice(0, headerEnd);
  return /\bdrops\b/.test(header) ? 'udp' : 'tcp';
}

const NEWLINE = 10;

/**
 * Parses /proc/net bytes as they arrive, chunk by chunk, into a SocketTable: a large live table is
 * never held whole in memory as text (a 1M-socket table is 143 MB of it), and a well-formed row
 * allocates nothing.
 */
export class ProcNetParser {
  readonly malformed: MalformedLine[] = [];
  /** The unfinished last line of the previous chunk. */
  private carry = Buffer.allocUnsafe(256);
  private carryLength = 0;
  private lineNo = 0;
  private readonly proto: number;
  /** Per STATES index, 1 for the states kept; null keeps every state. */
  private readonly kept: Uint8Array | null;
  /** Well-formed rows left out because their state was not asked for. */
  private skipped = 0;

  constructor(
    proto: Proto,
    /** Several parsers (tcp and udp) may fill one table. */
    readonly table: SocketTable = new SocketTable(),
    /** Only rows in these states are kept; the others are checked and counted in `skipped`. */
    states?: ReadonlySet<SocketState>,
  ) {
    this.proto = protoIndex(proto);
    this.kept = keepMask(states);
  }

  /** Parses every complete line of chunk[0, length) (with what the previous chunk left unfinished). */
  push(chunk: Buffer, length = chunk.length): void {
    let start = 0;
    if (this.carryLength > 0) {
      const newline = chunk.indexOf(NEWLINE);
      if (newline < 0 || newline >= length) {
        this.keep(chunk, 0, length);
        return;
      }
      this.keep(chunk, 0, newline + 1);
      this.parseLines(this.carry, 0, this.carryLength);
      this.carryLength = 0;
      start = newline + 1;
    }
    const last = length > start ? chunk.lastIndexOf(NEWLINE, length - 1) : -1;
    if (last < start) {
      this.keep(chunk, start, length);
      return;
    }
    this.parseLines(chunk, start, last + 1);
    this.keep(chunk, last + 1, length);
  }

  end(): ParsedTable {
    if (this.carryLength > 0) {
      // Ended like every other line, so that no scan runs on into stale bytes.
      this.keep(Buffer.from([NEWLINE]), 0, 1);
      this.parseLines(this.carry, 0, this.carryLength);
      this.carryLength = 0;
    }
    return { rows: this.table, malformed: this.malformed, skipped: this.skipped };
  }

  private keep(chunk: Buffer, from: number, to: number): void {
    const needed = this.carryLength + (to - from);
    if (needed > this.carry.length) {
      const bigger = Buffer.allocUnsafe(Math.max(needed, this.carry.length * 2));
      this.carry.copy(bigger, 0, 0, this.carryLength);
      this.carry = bigger;
    }
    chunk.copy(this.carry, this.carryLength, from, to);
    this.carryLength = needed;
  }

  /** Parses the lines in bytes[from, to), where `to` is just past a newline. */
  private parseLines(bytes: Buffer, from: number, to: number): void {
    let lineStart = from;
    let lineNo = this.lineNo;
    while (lineStart < to) {
      let lineEnd = bytes.indexOf(NEWLINE, lineStart);
      if (lineEnd < 0 || lineEnd > to) lineEnd = to;
      lineNo++;
      const start = lineStart;
      lineStart = lineEnd + 1;
      if (this.row(bytes, start, lineEnd) === MALFORMED) {
        const stop = lineEnd > start && bytes[lineEnd - 1] === 13 ? lineEnd - 1 : lineEnd;
        this.malformed.push(
          malformedLine(lineNo, bytes.toString('latin1', start, Math.min(stop, start + QUOTE_MAX + 1)), stop - start),
        );
      }
    }
    this.lineNo = lineNo;
    this.table.settle();
  }

  /**
   * Reads the line bytes[start, end) into the table. A function of its own, apart from the loop over
   * lines: small enough to be optimized within the first few thousand rows of a scan.
   */
  private row(bytes: Buffer, start: number, end: number): number {
    let p = start;
    while (bytes[p] === 32) p++;
    if (p >= end || (p === end - 1 && bytes[p] === 13)) return BLANK;
    // The header ("  sl  local_address rem_address st …") has no "N:" slot number.
    if (bytes[p] === 115 /* s */ && bytes[p + 1] === 108 /* l */ && bytes[p + 2] === 32) return BLANK;
    const slot = p;
    while (bytes[p]! >= 48 && bytes[p]! <= 57) p++;
    if (p === slot || bytes[p] !== 58 /* : */) return MALFORMED;
    p++;
    while (bytes[p] === 32) p++;

    // local: 8 (IPv4) or 32 (IPv6) hex digits, ':', 4-digit port, ' ', then the remote alike.
    const width = bytes[p + 8] === 58 ? 8 : bytes[p + 32] === 58 ? 32 : 0;
    const remoteAt = p + width + 6;
    const stateAt = remoteAt + width + 6;
    if (
      width === 0 ||
      stateAt + 2 > end ||
      bytes[p + width + 5] !== 32 ||
      bytes[remoteAt + width] !== 58 ||
      bytes[remoteAt + width + 5] !== 32
    )
      return MALFORMED;
    const localPort = hex4(bytes, p + width + 1);
    const remotePort = hex4(bytes, remoteAt + width + 1);
    const stateNo = hex2(bytes, stateAt);
    if (localPort < 0 || remotePort < 0 || stateNo < 0) return MALFORMED;
    const proto = this.proto;
    const state =
      proto === UDP
        ? stateNo === 1
          ? ESTABLISHED
          : UNCONN
        : stateNo < KERNEL_STATE_INDEX.length
          ? KERNEL_STATE_INDEX[stateNo]!
          : -1;
    if (state < 0) return MALFORMED;

    const kept = this.kept;
    if (kept !== null && kept[state] === 0) {
      // A row of a state not asked for: checked as closely as any other, but its address is not
      // numbered nor the row kept. Numbering every source is most of a scan's cost, and `scan
      // --state SYN_RECV` on a busy server asks for a few of its rows.
      for (let at = remoteAt; at < remoteAt + width; at += 8) if (!isHex8(bytes, at)) return MALFORMED;
      this.skipped++;
      return SKIPPED;
    }
    // A listening or unconnected socket has no peer: its address (zero) is checked, not numbered.
    const connected = state !== LISTEN && state !== UNCONN;
    const table = this.table;
    if (width === 8) {
      const word = word8(bytes, remoteAt);
      if (word < 0) return MALFORMED;
      if (connected) table.pushIpv4(proto, state, localPort, word, remotePort);
      else table.push(proto, state, localPort, 0, remotePort);
    } else {
      const a = word8(bytes, remoteAt);
      const b = word8(bytes, remoteAt + 8);
      const c = word8(bytes, remoteAt + 16);
      const d = word8(bytes, remoteAt + 24);
      if (a < 0 || b < 0 || c < 0 || d < 0) return MALFORMED;
      if (connected) table.pushIpv6(proto, state, localPort, a, b, c, d, remotePort);
      else table.push(proto, state, localPort, 0, remotePort);
    }
    return KEPT;
  }
}

/** What row() made of a line. */
const KEPT = 0;
const SKIPPED = 1;
const BLANK = 2;
const MALFORMED = 3;

const UDP = protoIndex('udp');
const ESTABLISHED = stateIndex('ESTABLISHED');
const UNCONN = stateIndex('UNCONN');
const LISTEN = stateIndex('LISTEN');
/** STATES index per kernel state number; -1 for numbers that are no state. */
const KERNEL_STATE_INDEX = KERNEL_STATES.map((state) => (state === undefined ? -1 : stateIndex(state)));

function keepMask(states: ReadonlySet<SocketState> | undefined): Uint8Array | null {
  if (states === undefined) return null;
  const keep = new Uint8Array(STATES.length);
  for (const state of states) keep[stateIndex(state)] = 1;
  return keep;
}

export function parseProcNet(text: string, proto: Proto = procProtoFromHeader(text)): ParsedTable {
  return parseProcNetBytes(Buffer.from(text, 'latin1'), proto);
}

/** parseProcNet on the bytes of a file, without making them a string first. */
export function parseProcNetBytes(
  bytes: Buffer,
  proto: Proto = procProtoFromHeader(bytes.toString('latin1', 0, Math.min(bytes.length, 4096))),
  wanted: RowsWanted = {},
): ParsedTable {
  const parser = new ProcNetParser(proto, new SocketTable(wanted.networks), wanted.states);
  parser.push(bytes);
  return parser.end();
}
