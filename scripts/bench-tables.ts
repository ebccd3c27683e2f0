// Generates realistic connection tables for the benchmarks: the same sockets as /proc/net/tcp text
// (byte for byte the kernel's format, padded to 149 columns) and as `netstat -ant` text.
import { closeSync, openSync, writeSync } from 'node:fs';

/** Kernel TCP state numbers (include/net/tcp_states.h) and netstat's names for them. */
const ESTABLISHED = 0x01;
const SYN_RECV = 0x03;
const FIN_WAIT1 = 0x04;
const FIN_WAIT2 = 0x05;
const TIME_WAIT = 0x06;
const CLOSE_WAIT = 0x08;
const LAST_ACK = 0x09;
const LISTEN = 0x0a;
const NETSTAT_NAMES: Record<number, string> = {
  [ESTABLISHED]: 'ESTABLISHED',
  [SYN_RECV]: 'SYN_RECV',
  [FIN_WAIT1]: 'FIN_WAIT1',
  [FIN_WAIT2]: 'FIN_WAIT2',
  [TIME_WAIT]: 'TIME_WAIT',
  [CLOSE_WAIT]: 'CLOSE_WAIT',
  [LAST_ACK]: 'LAST_ACK',
  [LISTEN]: 'LISTEN',
};

/** Share of the connected rows in each state: a busy HTTPS server under a SYN flood. */
const STATE_MIX: readonly [state: number, share: number][] = [
  [ESTABLISHED, 0.555],
  [TIME_WAIT, 0.22],
  [SYN_RECV, 0.15], // 0.03 legitimate handshakes + 0.12 flood, see FLOOD_SHARE
  [FIN_WAIT2, 0.03],
  [CLOSE_WAIT, 0.02],
  [FIN_WAIT1, 0.015],
  [LAST_ACK, 0.01],
];
/** Of all connected rows, this share is SYN_RECV from the attackers; the rest of SYN_RECV is legitimate. */
const FLOOD_SHARE = 0.12;
const LEGIT_SOURCES = 4000;
const HEAVY_HITTERS = 20;

export type SourceMix = 'realistic' | 'distinct';

/** The sockets of one table, column by column. Addresses are 32-bit numbers in network order. */
export interface GeneratedTable {
  readonly rows: number;
  readonly state: Uint8Array;
  readonly local: Uint32Array;
  readonly localPort: Uint16Array;
  readonly remote: Uint32Array;
  readonly remotePort: Uint16Array;
  readonly txQueue: Uint32Array;
  readonly rxQueue: Uint32Array;
  /** Expected SYN_RECV count, for checking a tool's output. */
  readonly synRecv: number;
  readonly sources: SourceMix;
}

/** mulberry32: a small seeded generator, so every run and every machine gets the same tables. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SERVER = ((192 << 24) | (0 << 16) | (2 << 8) | 1) >>> 0; // 192.0.2.1
const LOOPBACK = 0x7f000001;

/** Where a realistic table's sources come from, when not from the whole public space. */
export interface AddressRange {
  /** The first address, as a number; a multiple of 256. */
  readonly first: number;
  /** How many addresses; a multiple of 256. */
  readonly count: number;
}

/**
 * A plausible public unicast address (first octet 1..223, not 127, not 0 in the last octet), or
 * an address of `range` (for tables a daemon bans from: documentation ranges only).
 */
function publicAddress(next: () => number, range?: AddressRange): number {
  for (;;) {
    if (range !== undefined) {
      const a = (range.first + Math.floor(next() * range.count)) >>> 0;
      if ((a & 255) !== 0 && (a & 255) !== 255) return a;
      continue;
    }
    const a = (next() * 4294967296) >>> 0;
    const first = a >>> 24;
    if (first === 0 || first === 10 || first === 127 || first >= 224 || (a & 255) === 0) continue;
    return a;
  }
}

/**
 * `rows` sockets: a few listeners first (the kernel prints the listening hash first), then connected
 * sockets in random (hash-like) order. 'realistic': 4000 client addresses with a skewed share each,
 * plus the flood from 20 heavy hitters (60%) and one /24 botnet (40%). 'distinct': every connected
 * row has its own remote address, the worst case for any per-address table.
 */
export function generateTable(rows: number, sources: SourceMix, seed = 20240611, range?: AddressRange): GeneratedTable {
  if (range !== undefined && sources === 'distinct')
    throw new Error('generateTable: a range holds too few addresses for distinct sources');
  const next = random(seed);
  const t: GeneratedTable = {
    rows,
    state: new Uint8Array(rows),
    local: new Uint32Array(rows),
    localPort: new Uint16Array(rows),
    remote: new Uint32Array(rows),
    remotePort: new Uint16Array(rows),
    txQueue: new Uint32Array(rows),
    rxQueue: new Uint32Array(rows),
    synRecv: 0,
    sources,
  };
  const legit = Array.from({ length: LEGIT_SOURCES }, () => publicAddress(next, range));
  const hitters = Array.from({ length: HEAVY_HITTERS }, () => publicAddress(next, range));
  const botnet = (publicAddress(next, range) & 0xffffff00) >>> 0;
  const listeners: [number, number][] = [
    [0, 443],
    [0, 80],
    [0, 22],
    [LOOPBACK, 5432],
  ];
  let synRecv = 0;
  for (let i = 0; i < rows; i++) {
    if (i < listeners.length && rows > 100) {
      t.state[i] = LISTEN;
      t.local[i] = listeners[i]![0];
      t.localPort[i] = listeners[i]![1];
      continue;
    }
    t.local[i] = SERVER;
    t.localPort[i] = next() < 0.7 ? 443 : 80;
    t.remotePort[i] = 1024 + Math.floor(next() * 64512);
    let u = next();
    let state = STATE_MIX[STATE_MIX.length - 1]![0];
    for (const [s, share] of STATE_MIX) {
      if (u < share) {
        state = s;
        break;
      }
      u -= share;
    }
    t.state[i] = state;
    const flood = state === SYN_RECV && next() < FLOOD_SHARE / 0.15;
    if (state === SYN_RECV) synRecv++;
    if (sources === 'distinct') {
      // An odd multiplier is a bijection on 32 bits: every row gets a different address.
      t.remote[i] = (Math.imul(i + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1;
    } else if (flood) {
      t.remote[i] =
        next() < 0.6
          ? hitters[Math.floor(HEAVY_HITTERS * next() ** 2)]!
          : (botnet | (1 + Math.floor(next() * 254))) >>> 0;
    } else {
      t.remote[i] = legit[Math.floor(LEGIT_SOURCES * next() ** 2)]!;
    }
    if (state === ESTABLISHED && next() < 0.05) t.txQueue[i] = Math.floor(next() * 0x4000);
    if (state === CLOSE_WAIT) t.rxQueue[i] = 1;
  }
  return { ...t, synRecv };
}

const hex = (value: number, width: number): string => value.toString(16).toUpperCase().padStart(width, '0');
/** The kernel prints an IPv4 address as one 32-bit word in host (little-endian) byte order. */
const procAddress = (be: number): string =>
  hex((((be & 255) << 24) | (((be >>> 8) & 255) << 16) | (((be >>> 16) & 255) << 8) | (be >>> 24)) >>> 0, 8);
const dotted = (be: number): string => `${be >>> 24}.${(be >>> 16) & 255}.${(be >>> 8) & 255}.${be & 255}`;

const PROC_HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const NETSTAT_HEADER =
  'Active Internet connections (servers and established)\nProto Recv-Q Send-Q Local Address           Foreign Address         State      \n';

/** Row i as the kernel prints it (net/ipv4/tcp_ipv4.c: get_tcp4_sock, get_openreq4, get_timewait4_sock). */
function procLine(t: GeneratedTable, i: number, next: () => number): string {
  const state = t.state[i]!;
  const head = `${String(i).padStart(4)}: ${procAddress(t.local[i]!)}:${hex(t.localPort[i]!, 4)} ${procAddress(t.remote[i]!)}:${hex(t.remotePort[i]!, 4)} ${hex(state, 2)}`;
  const pointer = `00000000${((next() * 4294967296) >>> 0).toString(16).padStart(8, '0')}`;
  let tail: string;
  if (state === SYN_RECV) {
    const retries = Math.floor(next() * 4);
    tail = ` 00000000:00000000 01:${hex(Math.floor(next() * 3000), 8)} ${hex(retries, 8)}     0        0 0 0 ${pointer}`;
  } else if (state === TIME_WAIT) {
    tail = ` 00000000:00000000 03:${hex(Math.floor(next() * 6000), 8)} 00000000     0        0 0 3 ${pointer}`;
  } else if (state === LISTEN) {
    tail = ` 00000000:00000000 00:00000000 00000000     0        0 ${40000 + i} 1 ${pointer} 100 0 0 10 0`;
  } else {
    const timer =
      t.txQueue[i]! > 0
        ? `01:${hex(20 + Math.floor(next() * 40), 8)}`
        : next() < 0.3
          ? `02:${hex(Math.floor(next() * 700000), 8)}`
          : '00:00000000';
    const inode = 1_000_000 + i * 3;
    tail = ` ${hex(t.txQueue[i]!, 8)}:${hex(t.rxQueue[i]!, 8)} ${timer} 00000000    33        0 ${inode} 1 ${pointer} 20 4 ${next() < 0.5 ? 30 : 0} 10 ${next() < 0.7 ? -1 : 7 + Math.floor(next() * 30)}`;
  }
  return `${head}${tail}`.padEnd(149);
}

function netstatLine(t: GeneratedTable, i: number): string {
  const state = t.state[i]!;
  const local = `${dotted(t.local[i]!)}:${t.localPort[i]}`;
  const remote = state === LISTEN ? '0.0.0.0:*' : `${dotted(t.remote[i]!)}:${t.remotePort[i]}`;
  return `tcp   ${String(t.rxQueue[i]).padStart(6)} ${String(t.txQueue[i]).padStart(6)} ${local.padEnd(23)} ${remote.padEnd(23)} ${NETSTAT_NAMES[state]!.padEnd(11)}`;
}

/** Calls `write` with chunks of the table's text, about 1 MB each. */
function emit(t: GeneratedTable, format: 'proc' | 'netstat', write: (chunk: string) => void): void {
  const next = random(7);
  let chunk: string[] = [format === 'proc' ? `${PROC_HEADER.padEnd(149)}\n` : NETSTAT_HEADER];
  for (let i = 0; i < t.rows; i++) {
    chunk.push(format === 'proc' ? procLine(t, i, next) : netstatLine(t, i), '\n');
    if (chunk.length >= 16384) {
      write(chunk.join(''));
      chunk = [];
    }
  }
  if (chunk.length > 0) write(chunk.join(''));
}

export function tableText(t: GeneratedTable, format: 'proc' | 'netstat'): string {
  const parts: string[] = [];
  emit(t, format, (chunk) => parts.push(chunk));
  return parts.join('');
}

export function writeTable(t: GeneratedTable, format: 'proc' | 'netstat', path: string): void {
  const fd = openSync(path, 'w');
  try {
    emit(t, format, (chunk) => writeSync(fd, chunk, null, 'latin1'));
  } finally {
    closeSync(fd);
  }
}
