// The connection table in columns: one typed-array slot per socket field, and each distinct remote
// address stored once and numbered. A million sockets take about 10 MB this way; as row objects
// they took about 70 MB and most of a daemon's memory (scripts/bench-bans.ts, part 4).
import { formatCidr, formatIpv4, formatIpv6Groups, parseIp } from '../net/ip.js';
import { STATES, type Proto, type SocketRow, type SocketState } from './socket-row.js';

export const PROTOS: readonly Proto[] = ['tcp', 'udp'];
const PROTO_INDEX: Readonly<Record<Proto, number>> = { tcp: 0, udp: 1 };
const STATE_INDEX = new Map<SocketState, number>(STATES.map((state, i) => [state, i]));

/** The column value of a state: its index in STATES. */
export const stateIndex = (state: SocketState): number => STATE_INDEX.get(state)!;
export const protoIndex = (proto: Proto): number => PROTO_INDEX[proto];

/** Fibonacci hashing: the high bits of the product, which depend on every bit of the key. */
const hash1 = (a: number, shift: number): number => Math.imul(a, 0x9e3779b1) >>> shift;
const hash4 = (a: number, b: number, c: number, d: number, shift: number): number =>
  Math.imul(a ^ Math.imul(b, 0x85ebca6b) ^ Math.imul(c, 0xc2b2ae35) ^ Math.imul(d, 0x27d4eb2f), 0x9e3779b1) >>> shift;

/**
 * The distinct remote addresses of a table, numbered from 1; 0 means "no peer". Looked up by value
 * in open-addressing tables (no string per lookup, no object per address); an address gets its text
 * only when asked. With every source distinct, a million-socket table numbers a million addresses
 * each scan, so a lookup is one probe into one array (key and id side by side, one cache miss).
 *
 * A book of networks (`networks` given) numbers each address as its network: 192.0.2.7 and
 * 192.0.2.9 get the id of 192.0.2.0/24, whose name is "192.0.2.0/24". `scan --by net` reads into
 * one, so that counting per network is counting per id: one table of numbers instead of a table
 * of addresses and then a table of their networks (with every source distinct, as many of each).
 */
export class AddressBook {
  /** Pairs (IPv4 address, id) per slot; id 0 marks an empty slot. */
  private v4Slots = new Int32Array(2 * 1024);
  private v4Bits = 10;
  /** The IPv6 index (into v6Words) plus 1 per slot; 0 marks an empty slot. */
  private v6Slots = new Int32Array(64);
  private v6Bits = 6;
  /** Four big-endian words per IPv6 address, in order of first sight. */
  private v6Words = new Uint32Array(4 * 64);
  /** Per IPv6 index: its id. */
  private v6Ids = new Int32Array(64);
  /** Per id: 4 or 6. */
  private families = new Uint8Array(1024);
  /** Per id: the IPv4 address as a number, or the IPv6 index. */
  private values = new Uint32Array(1024);
  /** The text of the ids asked for so far. */
  private names = new Map<number, string>();
  private next = 1;
  private v4Count = 0;
  private v6Count = 0;
  /** What touch() read: written so that the compiler keeps its loads, and read by nothing. */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: see above
  private touched = 0;
  /** The network masks: all ones in a book of addresses. */
  private readonly mask4: number;
  private readonly mask6: readonly [number, number, number, number];

  constructor(
    /** Number networks of these sizes rather than addresses; a book of addresses when absent. */
    readonly networks?: NetworkSize,
  ) {
    if (networks !== undefined) {
      const { prefix4, prefix6 } = networks;
      if (!(Number.isInteger(prefix4) && prefix4 >= 0 && prefix4 <= 32))
        throw new RangeError(`expected an IPv4 prefix length 0–32, got ${prefix4}`);
      if (!(Number.isInteger(prefix6) && prefix6 >= 0 && prefix6 <= 128))
        throw new RangeError(`expected an IPv6 prefix length 0–128, got ${prefix6}`);
    }
    this.mask4 = wordMask(networks?.prefix4 ?? 32, 0);
    const p6 = networks?.prefix6 ?? 128;
    this.mask6 = [wordMask(p6, 0), wordMask(p6, 1), wordMask(p6, 2), wordMask(p6, 3)];
  }

  /** Whether this is a book of networks of exactly these sizes. */
  numbers(networks: NetworkSize): boolean {
    return this.networks?.prefix4 === networks.prefix4 && this.networks.prefix6 === networks.prefix6;
  }

  /** Forgets every address and keeps the memory, for the next scan. */
  clear(): void {
    this.v4Slots.fill(0);
    this.v6Slots.fill(0);
    this.names.clear();
    this.next = 1;
    this.v4Count = 0;
    this.v6Count = 0;
  }

  /** How many ids are in use, counting the unused id 0: arrays indexed by id need this length. */
  get size(): number {
    return this.next;
  }

  family(id: number): 4 | 6 {
    return this.families[id] === 6 ? 6 : 4;
  }

  /** The IPv4 address of an id of family 4, as a number. */
  ipv4(id: number): number {
    return this.values[id]!;
  }

  /** Word `word` (0–3, big-endian) of the IPv6 address of an id of family 6. */
  ipv6Word(id: number, word: number): number {
    return this.v6Words[this.values[id]! * 4 + word]!;
  }

  /** The IPv6 address of an id of family 6, as a number. */
  ipv6(id: number): bigint {
    const k = this.values[id]! * 4;
    const w = this.v6Words;
    return (BigInt(w[k]!) << 96n) | (BigInt(w[k + 1]!) << 64n) | (BigInt(w[k + 2]!) << 32n) | BigInt(w[k + 3]!);
  }

  name(id: number): string {
    if (id === 0) return '';
    let name = this.names.get(id);
    if (name === undefined && this.networks !== undefined) {
      const family = this.family(id);
      name = formatCidr({
        family,
        value: family === 4 ? BigInt(this.ipv4(id)) : this.ipv6(id),
        prefix: family === 4 ? this.networks.prefix4 : this.networks.prefix6,
      });
      this.names.set(id, name);
    }
    if (name === undefined) {
      if (this.families[id] === 4) name = formatIpv4(this.values[id]!);
      else {
        const k = this.values[id]! * 4;
        const w = this.v6Words;
        name = formatIpv6Groups([
          w[k]! >>> 16,
          w[k]! & 0xffff,
          w[k + 1]! >>> 16,
          w[k + 1]! & 0xffff,
          w[k + 2]! >>> 16,
          w[k + 2]! & 0xffff,
          w[k + 3]! >>> 16,
          w[k + 3]! & 0xffff,
        ]);
      }
      this.names.set(id, name);
    }
    return name;
  }

  /** The id of an IPv4 address given as a number (0.0.0.0 is no peer), or of its network. */
  ipv4Id(value: number): number {
    if (value === 0) return 0;
    return this.v4Lookup(value & this.mask4);
  }

  /**
   * The id of an IPv4 key (an address, or a network's first address), numbered if new. No "no peer"
   * test: in a book of networks 0.0.0.0/1 is the key 0.
   */
  private v4Lookup(key: number): number {
    const slots = this.v4Slots;
    const mask = (1 << this.v4Bits) - 1;
    let slot = hash1(key, 32 - this.v4Bits);
    for (;;) {
      const id = slots[slot * 2 + 1]!;
      if (id === 0) break;
      if (slots[slot * 2] === key) return id;
      slot = (slot + 1) & mask;
    }
    const id = this.newId(4, key >>> 0);
    slots[slot * 2] = key;
    slots[slot * 2 + 1] = id;
    if (++this.v4Count * 2 > mask + 1) this.growV4();
    return id;
  }

  /**
   * The id of an IPv6 address given as four big-endian 32-bit words, or of its network; mapped IPv4
   * is the IPv4 one (and so is its network).
   */
  ipv6Id(a: number, b: number, c: number, d: number): number {
    if (a === 0 && b === 0 && (c === 0xffff || (c === 0 && d === 0))) return this.ipv4Id(c === 0 ? 0 : d);
    const mask = this.mask6;
    return this.v6Lookup((a & mask[0]) >>> 0, (b & mask[1]) >>> 0, (c & mask[2]) >>> 0, (d & mask[3]) >>> 0);
  }

  /**
   * The id of an IPv6 key (four big-endian words of an address or of a network's first address),
   * numbered if new. No "no peer" nor mapped-IPv4 test: in a book of networks ::/64 is all zeros.
   */
  private v6Lookup(a: number, b: number, c: number, d: number): number {
    const slots = this.v6Slots;
    const words = this.v6Words;
    const slotMask = (1 << this.v6Bits) - 1;
    let slot = hash4(a, b, c, d, 32 - this.v6Bits);
    for (;;) {
      const index = slots[slot]! - 1;
      if (index < 0) break;
      const k = index * 4;
      if (words[k] === a && words[k + 1] === b && words[k + 2] === c && words[k + 3] === d) return this.v6Ids[index]!;
      slot = (slot + 1) & slotMask;
    }
    const index = this.v6Count;
    if (index * 4 === this.v6Words.length) {
      this.v6Words = grown(this.v6Words, index * 8);
      this.v6Ids = grown(this.v6Ids, index * 2);
    }
    const k = index * 4;
    this.v6Words[k] = a;
    this.v6Words[k + 1] = b;
    this.v6Words[k + 2] = c;
    this.v6Words[k + 3] = d;
    const id = this.newId(6, index);
    this.v6Ids[index] = id;
    slots[slot] = index + 1;
    if (++this.v6Count * 2 > slotMask + 1) this.growV6();
    return id;
  }

  /**
   * Reads the slot where each IPv4 address of a batch (family 4 in `families`, its word at 4 × its
   * index in `words`) would be looked up, and nothing more: loads that do not depend on one another,
   * so the processor has many cache misses under way at once. The lookups that follow then find
   * their slots in the cache. IPv6 addresses are left to their lookup.
   */
  touch(families: Uint8Array, words: Uint32Array, count: number): void {
    const slots = this.v4Slots;
    const shift = 32 - this.v4Bits;
    const mask = this.mask4;
    let sink = 0;
    for (let j = 0; j < count; j++) {
      if (families[j] === 4) sink |= slots[(hash1(words[j * 4]! & mask, shift) << 1) + 1]!;
    }
    this.touched = sink;
  }

  /** The id in this book of address `id` of another book. */
  idFrom(other: AddressBook, id: number): number {
    if (id === 0) return 0;
    // Straight to the lookups: an id of `other` is a peer and its family is right, but as a network
    // (::/64, 0.0.0.0/1) it may look like no peer or a mapped address to ipv4Id and ipv6Id.
    if (other.family(id) === 4) return this.v4Lookup(other.ipv4(id) & this.mask4);
    const m = this.mask6;
    return this.v6Lookup(
      (other.ipv6Word(id, 0) & m[0]) >>> 0,
      (other.ipv6Word(id, 1) & m[1]) >>> 0,
      (other.ipv6Word(id, 2) & m[2]) >>> 0,
      (other.ipv6Word(id, 3) & m[3]) >>> 0,
    );
  }

  /** The id of an address given as text ('' is no peer); throws on text that is not an address. */
  idOf(text: string): number {
    if (text === '') return 0;
    const ip = parseIp(text);
    if (ip === null) throw new Error(`not an address: ${JSON.stringify(text)}`);
    if (ip.family === 4) return this.ipv4Id(Number(ip.value));
    const v = ip.value;
    return this.ipv6Id(
      Number((v >> 96n) & 0xffffffffn),
      Number((v >> 64n) & 0xffffffffn),
      Number((v >> 32n) & 0xffffffffn),
      Number(v & 0xffffffffn),
    );
  }

  private newId(family: 4 | 6, value: number): number {
    const id = this.next++;
    if (id === this.families.length) {
      this.families = grown(this.families, id * 2);
      this.values = grown(this.values, id * 2);
    }
    this.families[id] = family;
    this.values[id] = value;
    return id;
  }

  private growV4(): void {
    const old = this.v4Slots;
    const bits = ++this.v4Bits;
    const mask = (1 << bits) - 1;
    const slots = new Int32Array(2 << bits);
    this.v4Slots = slots;
    for (let i = 0; i < old.length; i += 2) {
      const id = old[i + 1]!;
      if (id === 0) continue;
      let slot = hash1(old[i]!, 32 - bits);
      while (slots[slot * 2 + 1] !== 0) slot = (slot + 1) & mask;
      slots[slot * 2] = old[i]!;
      slots[slot * 2 + 1] = id;
    }
  }

  private growV6(): void {
    const bits = ++this.v6Bits;
    const mask = (1 << bits) - 1;
    const slots = new Int32Array(1 << bits);
    this.v6Slots = slots;
    const w = this.v6Words;
    for (let index = 0; index < this.v6Count; index++) {
      const k = index * 4;
      let slot = hash4(w[k]!, w[k + 1]!, w[k + 2]!, w[k + 3]!, 32 - bits);
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = index + 1;
    }
  }
}

/** How many rows pushed by address are numbered together (see SocketTable.settle). */
const BATCH = 4096;
/** The remote of a row pushed by address until settle() numbers it: not 0, so its port is kept. */
const PENDING = -1;

/** The sizes of the networks a book of networks numbers. */
export interface NetworkSize {
  /** 0–32 */
  readonly prefix4: number;
  /** 0–128 */
  readonly prefix6: number;
}

/** The mask of word `word` (0–3, big-endian) of a prefix of `prefix` bits. */
export function wordMask(prefix: number, word: number): number {
  const bits = prefix - 32 * word;
  return bits >= 32 ? 0xffffffff : bits <= 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
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
  readonly addresses: AddressBook;
  length = 0;
  /** PROTOS index per socket. */
  protos = new Uint8Array(1024);
  /** STATES index per socket. */
  states = new Uint8Array(1024);
  localPorts = new Uint16Array(1024);
  /** AddressBook id per socket; 0 when the socket has no peer (LISTEN, unconnected UDP). */
  remotes = new Int32Array(1024);
  remotePorts = new Uint16Array(1024);
  /** The rows pushed by address and not yet numbered: their address words, family and row. */
  private readonly pendingWords = new Uint32Array(4 * BATCH);
  private readonly pendingFamilies = new Uint8Array(BATCH);
  private readonly pendingRows = new Int32Array(BATCH);
  private pending = 0;

  /** A table whose remote column numbers networks of these sizes (see AddressBook); addresses when absent. */
  constructor(networks?: NetworkSize) {
    this.addresses = new AddressBook(networks);
  }

  static from(rows: Iterable<SocketRow>, networks?: NetworkSize): SocketTable {
    const table = new SocketTable(networks);
    for (const row of rows) table.pushRow(row);
    return table;
  }

  /**
   * Empties the table and keeps its arrays: a daemon scanning a million sockets every second reuses
   * one table rather than allocating (and leaving to the allocator) tens of megabytes each time.
   */
  clear(): void {
    this.length = 0;
    this.pending = 0;
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

  /**
   * Appends a connected socket whose remote is an IPv4 address given as a number; the address is
   * numbered by settle(), which must run before the table is read (the parsers settle at the end of
   * each chunk). Numbering in batches lets the address book touch every batch's slots first, so that
   * their cache misses overlap instead of stalling one row at a time: numbering is most of the cost
   * of parsing a table whose sources are many (a 1M-row capture: 290 → 271 ms with 8 sockets per
   * source, 323 → 290 ms with every source distinct).
   */
  pushIpv4(proto: number, state: number, localPort: number, address: number, remotePort: number): void {
    const j = this.pending;
    this.pendingWords[j * 4] = address;
    this.pendingFamilies[j] = 4;
    this.pendingRows[j] = this.length;
    this.push(proto, state, localPort, PENDING, remotePort);
    this.pending = j + 1;
    if (j + 1 === BATCH) this.settle();
  }

  /** pushIpv4 for an IPv6 address given as four big-endian 32-bit words. */
  pushIpv6(
    proto: number,
    state: number,
    localPort: number,
    a: number,
    b: number,
    c: number,
    d: number,
    remotePort: number,
  ): void {
    const j = this.pending;
    const words = this.pendingWords;
    words[j * 4] = a;
    words[j * 4 + 1] = b;
    words[j * 4 + 2] = c;
    words[j * 4 + 3] = d;
    this.pendingFamilies[j] = 6;
    this.pendingRows[j] = this.length;
    this.push(proto, state, localPort, PENDING, remotePort);
    this.pending = j + 1;
    if (j + 1 === BATCH) this.settle();
  }

  /** Numbers the addresses of the rows pushed by address, in the order they were pushed. */
  settle(): void {
    const n = this.pending;
    if (n === 0) return;
    const book = this.addresses;
    const words = this.pendingWords;
    const families = this.pendingFamilies;
    book.touch(families, words, n);
    for (let j = 0; j < n; j++) {
      const k = j * 4;
      const id =
        families[j] === 4
          ? book.ipv4Id(words[k]!)
          : book.ipv6Id(words[k]!, words[k + 1]!, words[k + 2]!, words[k + 3]!);
      const row = this.pendingRows[j]!;
      this.remotes[row] = id;
      // An address that turned out to be no peer (0.0.0.0) has no port either, as push() has it.
      if (id === 0) this.remotePorts[row] = 0;
    }
    this.pending = 0;
  }

  pushRow(row: SocketRow): void {
    this.push(
      PROTO_INDEX[row.proto],
      stateIndex(row.state),
      row.localPort,
      this.addresses.idOf(row.remote),
      row.remotePort,
    );
  }

  /** Appends every socket of `other`, renumbering its addresses into this table's book. */
  append(other: SocketTable): void {
    const ids = new Int32Array(other.addresses.size).fill(-1);
    ids[0] = 0;
    for (let i = 0; i < other.length; i++) {
      const from = other.remotes[i]!;
      let id = ids[from]!;
      if (id < 0) ids[from] = id = this.addresses.idFrom(other.addresses, from);
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
