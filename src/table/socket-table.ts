// The connection table in columns: one typed-array slot per socket field, and each distinct remote
// address stored once and numbered. A million sockets take about 10 MB this way; as row objects
// they took about 70 MB and most of a daemon's memory (scripts/bench-bans.ts, part 4).
import { formatIpv4, formatIpv6Groups, parseIp } from '../net/ip.js';
import { STATES, type Proto, type SocketRow, type SocketState } from './socket-row.js';

export const PROTOS: readonly Proto[] = ['tcp', 'udp'];
const PROTO_INDEX: Readonly<Record<Proto, number>> = { tcp: 0, udp: 1 };
const STATE_INDEX = new Map<SocketState, number>(STATES.map((state, i) => [state, i]));

/** The column value of a state: its index in STATES. */
export const stateIndex = (state: SocketState): number => STATE_INDEX.get(state)!;
export const protoIndex = (proto: Proto): number => PROTO_INDEX[proto];

const hash1 = (a: number): number => Math.imul(a, 0x9e3779b1) >>> 0;
const hash4 = (a: number, b: number, c: number, d: number): number =>
  Math.imul(a ^ Math.imul(b, 0x85ebca6b) ^ Math.imul(c, 0xc2b2ae35) ^ Math.imul(d, 0x27d4eb2f), 0x9e3779b1) >>> 0;

/**
 * The distinct remote addresses of a table, numbered from 1; 0 means "no peer". Looked up by value
 * in open-addressing tables (no string per lookup); an IPv4 address gets its text only when asked.
 */
export class AddressBook {
  private v4Keys = new Uint32Array(1024);
  /** id per slot of v4Keys; 0 marks an empty slot. */
  private v4Slots = new Int32Array(1024);
  private v6Keys = new Uint32Array(4 * 64);
  private v6Slots = new Int32Array(64);
  /** Per id: 4 or 6. */
  private families = new Uint8Array(1024);
  /** Per id: the IPv4 address as a number (unused for IPv6). */
  private v4Values = new Uint32Array(1024);
  /** Per id: the text, '' until an IPv4 address's is first asked for. */
  private names: string[] = [''];
  private v4Count = 0;
  private v6Count = 0;

  /** Forgets every address and keeps the memory, for the next scan. */
  clear(): void {
    this.v4Slots.fill(0);
    this.v6Slots.fill(0);
    this.names = [''];
    this.v4Count = 0;
    this.v6Count = 0;
  }

  /** How many ids are in use, counting the unused id 0: arrays indexed by id need this length. */
  get size(): number {
    return this.names.length;
  }

  family(id: number): 4 | 6 {
    return this.families[id] === 6 ? 6 : 4;
  }

  /** The IPv4 address of an id of family 4, as a number. */
  ipv4(id: number): number {
    return this.v4Values[id]!;
  }

  name(id: number): string {
    let name = this.names[id]!;
    if (name === '' && id !== 0) {
      name = formatIpv4(this.v4Values[id]!);
      this.names[id] = name;
    }
    return name;
  }

  /** The id of an IPv4 address given as a number (0.0.0.0 is no peer). */
  ipv4Id(value: number): number {
    if (value === 0) return 0;
    let mask = this.v4Slots.length - 1;
    let slot = hash1(value) & mask;
    for (let id = this.v4Slots[slot]!; id !== 0; id = this.v4Slots[slot]!) {
      if (this.v4Keys[slot] === value) return id;
      slot = (slot + 1) & mask;
    }
    const id = this.newId(4, '');
    this.v4Values[id] = value;
    if (++this.v4Count * 2 > this.v4Slots.length) {
      this.growV4();
      mask = this.v4Slots.length - 1;
      slot = hash1(value) & mask;
      while (this.v4Slots[slot] !== 0) slot = (slot + 1) & mask;
    }
    this.v4Keys[slot] = value;
    this.v4Slots[slot] = id;
    return id;
  }

  /** The id of an IPv6 address given as four big-endian 32-bit words; mapped IPv4 is the IPv4 one. */
  ipv6Id(a: number, b: number, c: number, d: number): number {
    if (a === 0 && b === 0 && (c === 0xffff || (c === 0 && d === 0))) return this.ipv4Id(c === 0 ? 0 : d);
    let mask = this.v6Slots.length - 1;
    let slot = hash4(a, b, c, d) & mask;
    for (let id = this.v6Slots[slot]!; id !== 0; id = this.v6Slots[slot]!) {
      const k = slot * 4;
      if (this.v6Keys[k] === a && this.v6Keys[k + 1] === b && this.v6Keys[k + 2] === c && this.v6Keys[k + 3] === d) return id;
      slot = (slot + 1) & mask;
    }
    const groups = [a >>> 16, a & 0xffff, b >>> 16, b & 0xffff, c >>> 16, c & 0xffff, d >>> 16, d & 0xffff];
    const id = this.newId(6, formatIpv6Groups(groups));
    if (++this.v6Count * 2 > this.v6Slots.length) {
      this.growV6();
      mask = this.v6Slots.length - 1;
      slot = hash4(a, b, c, d) & mask;
      while (this.v6Slots[slot] !== 0) slot = (slot + 1) & mask;
    }
    this.v6Keys.set([a, b, c, d], slot * 4);
    this.v6Slots[slot] = id;
    return id;
  }

  /** The id of an address given as text ('' is no peer); throws on text that is not an address. */
  idOf(text: string): number {
    if (text === '') return 0;
    const ip = parseIp(text);
    if (ip === null) throw new Error(`not an address: ${JSON.stringify(text)}`);
    if (ip.family === 4) return this.ipv4Id(Number(ip.value));
    const v = ip.value;
    return this.ipv6Id(Number((v >> 96n) & 0xffffffffn), Number((v >> 64n) & 0xffffffffn), Number((v >> 32n) & 0xffffffffn), Number(v & 0xffffffffn));
  }

  private newId(family: 4 | 6, name: string): number {
    const id = this.names.length;
    if (id === this.families.length) {
      this.families = grown(this.families, id * 2);
      this.v4Values = grown(this.v4Values, id * 2);
    }
    this.families[id] = family;
    this.names.push(name);
    return id;
  }

  private growV4(): void {
    const { v4Keys: keys, v4Slots: slots } = this;
    const size = slots.length * 2;
    this.v4Keys = new Uint32Array(size);
    this.v4Slots = new Int32Array(size);
    for (let i = 0; i < slots.length; i++) {
      if (slots[i] === 0) continue;
      let slot = hash1(keys[i]!) & (size - 1);
      while (this.v4Slots[slot] !== 0) slot = (slot + 1) & (size - 1);
      this.v4Keys[slot] = keys[i]!;
      this.v4Slots[slot] = slots[i]!;
    }
  }

  private growV6(): void {
    const { v6Keys: keys, v6Slots: slots } = this;
    const size = slots.length * 2;
    this.v6Keys = new Uint32Array(size * 4);
    this.v6Slots = new Int32Array(size);
    for (let i = 0; i < slots.length; i++) {
      if (slots[i] === 0) continue;
      const k = i * 4;
      let slot = hash4(keys[k]!, keys[k + 1]!, keys[k + 2]!, keys[k + 3]!) & (size - 1);
      while (this.v6Slots[slot] !== 0) slot = (slot + 1) & (size - 1);
      this.v6Keys.set(keys.subarray(k, k + 4), slot * 4);
      this.v6Slots[slot] = slots[i]!;
    }
  }
}

function grown<T extends Uint8Array | Uint16Array | Uint32Array | Int32Array>(array: T, length: number): T {
  const next = new (array.constructor as new (length: number) => T)(length);
  next.set(array);
  return next;
}

/**
 * The sockets of one table. Parsers append; readers loop over `length` and read the columns
 * (which are longer than `length`: read only below it). Row objects are made only on request.
 */
export class SocketTable implements Iterable<SocketRow> {
  readonly addresses = new AddressBook();
  length = 0;
  /** PROTOS index per socket. */
  protos = new Uint8Array(1024);
  /** STATES index per socket. */
  states = new Uint8Array(1024);
  localPorts = new Uint16Array(1024);
  /** AddressBook id per socket; 0 when the socket has no peer (LISTEN, unconnected UDP). */
  remotes = new Int32Array(1024);
  remotePorts = new Uint16Array(1024);

  static from(rows: Iterable<SocketRow>): SocketTable {
    const table = new SocketTable();
    for (const row of rows) table.pushRow(row);
    return table;
  }

  /**
   * Empties the table and keeps its arrays: a daemon scanning a million sockets every second reuses
   * one table rather than allocating (and leaving to the allocator) tens of megabytes each time.
   */
  clear(): void {
    this.length = 0;
    this.addresses.clear();
  }

  /** Appends a socket by column values; a socket without a peer gets remote 0 and port 0. */
  push(proto: number, state: number, localPort: number, remote: number, remotePort: number): void {
    const i = this.length;
    if (i === this.protos.length) this.grow(i * 2);
    this.protos[i] = proto;
    this.states[i] = state;
    this.localPorts[i] = localPort;
    this.remotes[i] = remote;
    this.remotePorts[i] = remote === 0 ? 0 : remotePort;
    this.length = i + 1;
  }

  pushRow(row: SocketRow): void {
    this.push(PROTO_INDEX[row.proto], stateIndex(row.state), row.localPort, this.addresses.idOf(row.remote), row.remotePort);
  }

  /** Appends every socket of `other`, renumbering its addresses into this table's book. */
  append(other: SocketTable): void {
    const ids = new Int32Array(other.addresses.size).fill(-1);
    ids[0] = 0;
    for (let i = 0; i < other.length; i++) {
      const from = other.remotes[i]!;
      let id = ids[from]!;
      if (id < 0) ids[from] = id = this.addresses.idOf(other.addresses.name(from));
      this.push(other.protos[i]!, other.states[i]!, other.localPorts[i]!, id, other.remotePorts[i]!);
    }
  }

  row(i: number): SocketRow {
    return {
      proto: PROTOS[this.protos[i]!]!,
      state: STATES[this.states[i]!]!,
      localPort: this.localPorts[i]!,
      remote: this.addresses.name(this.remotes[i]!),
      remotePort: this.remotePorts[i]!,
    };
  }

  *[Symbol.iterator](): Iterator<SocketRow> {
    for (let i = 0; i < this.length; i++) yield this.row(i);
  }

  toRows(): SocketRow[] {
    return Array.from(this);
  }

  private grow(capacity: number): void {
    this.protos = grown(this.protos, capacity);
    this.states = grown(this.states, capacity);
    this.localPorts = grown(this.localPorts, capacity);
    this.remotes = grown(this.remotes, capacity);
    this.remotePorts = grown(this.remotePorts, capacity);
  }
}
