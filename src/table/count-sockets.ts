// Filters a table and counts its sockets per state and per group (remote IP, remote network or
// local port): the netstat | grep | awk | sort | uniq -c pipeline as one pure pass.
import { formatCidr, formatIpv4, parseCidr, parseIpv4Number } from '../net/ip.js';
import { STATES, type Proto, type SocketState } from './socket-row.js';
import { type AddressBook, type SocketTable, protoIndex, stateIndex, wordMask } from './socket-table.js';

export interface SocketFilter {
  /** Only these states; all states when absent. */
  readonly states?: ReadonlySet<SocketState>;
  /** Only these local ports; all ports when absent. */
  readonly ports?: ReadonlySet<number>;
  /** @default 'all' */
  readonly proto?: Proto | 'all';
}

export type Grouping =
  | { readonly by: 'ip' }
  | { readonly by: 'net'; readonly prefix4: number; readonly prefix6: number }
  | { readonly by: 'port' };

export interface SocketCounts {
  /** Sockets that passed the filter. */
  total: number;
  states: Partial<Record<SocketState, number>>;
  /** Connected sockets only (a LISTEN or unconnected socket has no source). */
  groups: Map<string, number>;
}

export interface CountOptions {
  /** Per AddressBook id, 1 leaves that source out entirely (for example targets already banned). */
  readonly skip?: Uint8Array;
  /** Only groups of more than this many sockets are returned. @default 0 */
  readonly above?: number;
  /** `by: 'net'` only: only networks with sockets from at least this many distinct sources are returned. @default 1 */
  readonly minSources?: number;
  /**
   * `by: 'ip'` only: set to 1, per AddressBook id, for every source returned (more than `above`
   * sockets), so that a later count can skip the sources this one flagged.
   */
  readonly mark?: Uint8Array;
}

/**
 * Counts per group, by number: per address id (by ip), per port, or per network in a NetCounts
 * table. The filter and the skip list are applied here; nothing is made into text.
 */
interface NumericCounts {
  total: number;
  stateCounts: Uint32Array;
  /** Per address id (by ip) or per port. */
  counts: Uint32Array;
  /** by net only. */
  nets: NetCounts | null;
}

function countNumeric(
  table: SocketTable,
  filter: SocketFilter,
  grouping: Grouping,
  skip: Uint8Array | undefined,
): NumericCounts {
  const { protos, states, localPorts, remotes, addresses } = table;
  checkGrouping(addresses, grouping);
  const proto = filter.proto === undefined || filter.proto === 'all' ? -1 : protoIndex(filter.proto);
  const stateOk = new Uint8Array(STATES.length).fill(filter.states === undefined ? 1 : 0);
  for (const state of filter.states ?? []) stateOk[stateIndex(state)] = 1;
  let portOk: Uint8Array | null = null;
  if (filter.ports !== undefined) {
    portOk = new Uint8Array(65536);
    for (const port of filter.ports) portOk[port] = 1;
  }
  const byPort = grouping.by === 'port';
  const counts = scratch(COUNTS, byPort ? 65536 : addresses.size);
  const stateCounts = new Uint32Array(STATES.length);
  let total = 0;
  for (let i = 0; i < table.length; i++) {
    if (proto >= 0 && protos[i] !== proto) continue;
    const state = states[i]!;
    if (stateOk[state] === 0) continue;
    if (portOk !== null && portOk[localPorts[i]!] === 0) continue;
    const remote = remotes[i]!;
    if (remote !== 0 && skip !== undefined && skip[remote] === 1) continue;
    total++;
    stateCounts[state]!++;
    if (remote === 0) continue;
    counts[byPort ? localPorts[i]! : remote]!++;
  }
  const nets =
    grouping.by === 'net' && !addresses.numbers(grouping)
      ? countNetworks(addresses, counts, grouping.prefix4, grouping.prefix6)
      : null;
  return { total, stateCounts, counts, nets };
}

/**
 * A table read as networks (see AddressBook) counts by those networks, per id, as a table of
 * addresses counts by address; any other grouping of its sources would be wrong.
 */
function checkGrouping(book: AddressBook, grouping: Grouping): void {
  const { networks } = book;
  if (networks === undefined || grouping.by === 'port' || (grouping.by === 'net' && book.numbers(grouping))) return;
  const asked = grouping.by === 'net' ? `by net /${grouping.prefix4} /${grouping.prefix6}` : 'by ip';
  throw new Error(`a table of /${networks.prefix4} /${networks.prefix6} networks cannot be counted ${asked}`);
}

/**
 * Zeroed arrays reused from one count to the next. A daemon counting a million sources for every
 * rule at every tick allocated (and left to the collector) some 30 MB per rule; none of these arrays
 * outlives the count that takes it (a count is synchronous and returns only numbers and text).
 */
const scratchArrays: Uint32Array[] = [];
const COUNTS = 0;
const NETS4 = 1;
const NETS6 = 2;

function scratch(which: number, length: number): Uint32Array {
  let array = scratchArrays[which];
  if (array === undefined || array.length < length) {
    array = new Uint32Array(length);
    scratchArrays[which] = array;
    return array;
  }
  array.fill(0, 0, length);
  return array.subarray(0, length);
}

function stateTotals(stateCounts: Uint32Array): Partial<Record<SocketState, number>> {
  const totals: Partial<Record<SocketState, number>> = {};
  for (let s = 0; s < STATES.length; s++) if (stateCounts[s]! > 0) totals[STATES[s]!] = stateCounts[s]!;
  return totals;
}

/**
 * One pass over the table's columns. Sockets are counted per address id in a typed array; a group's
 * text is made only for the groups returned, so a table of a million distinct sources makes no
 * strings when only the few above a threshold are wanted.
 */
export function countSockets(
  table: SocketTable,
  filter: SocketFilter,
  grouping: Grouping,
  options: CountOptions = {},
): SocketCounts {
  const { skip, above = 0, minSources = 1, mark } = options;
  // A table of networks does not know how many sources each one holds.
  if (minSources > 1 && table.addresses.networks !== undefined)
    throw new Error('min_sources needs a table of addresses, not of networks');
  const { total, stateCounts, counts, nets } = countNumeric(table, filter, grouping, skip);
  const groups = new Map<string, number>();
  if (grouping.by === 'port') {
    for (let port = 0; port < 65536; port++) if (counts[port]! > above) groups.set(String(port), counts[port]!);
  } else if (nets === null) {
    const { addresses } = table;
    for (let id = 1; id < counts.length; id++) {
      if (counts[id]! <= above) continue;
      groups.set(addresses.name(id), counts[id]!);
      if (mark !== undefined) mark[id] = 1;
    }
  } else {
    for (let slot = 0; slot < nets.capacity; slot++) {
      const count = nets.count(slot);
      if (count > above && nets.sources(slot) >= minSources) groups.set(nets.name(slot), count);
    }
  }
  return { total, states: stateTotals(stateCounts), groups };
}

export interface TopCounts {
  total: number;
  states: Partial<Record<SocketState, number>>;
  /** How many groups have at least one socket. */
  distinct: number;
  /** The `limit` largest groups, as topGroups orders them. */
  top: GroupCount[];
}

/**
 * countSockets then topGroups, without making a Map of every group: the top `limit` groups are
 * chosen by number (count, then address or port order) and only they get their text. A table of a
 * million distinct sources has a million groups, and `scan` shows ten.
 */
export function countTop(table: SocketTable, filter: SocketFilter, grouping: Grouping, limit: number): TopCounts {
  const { total, stateCounts, counts, nets } = countNumeric(table, filter, grouping, undefined);
  const { addresses } = table;
  let size: number;
  let countOf: (i: number) => number;
  let before: (i: number, j: number) => boolean;
  let name: (i: number) => string;
  if (grouping.by === 'port') {
    size = 65536;
    countOf = (i) => counts[i]!;
    before = (i, j) => i < j;
    name = String;
  } else if (nets === null) {
    size = counts.length;
    countOf = (i) => (i === 0 ? 0 : counts[i]!);
    before = (i, j) => addressBefore(addresses, i, j);
    name = (i) => addresses.name(i);
  } else {
    size = nets.capacity;
    countOf = (i) => nets.count(i);
    before = (i, j) => nets.before(i, j);
    name = (i) => nets.name(i);
  }
  // The best `limit` so far, best first: count descending, then key ascending.
  const best: number[] = [];
  let distinct = 0;
  for (let i = 0; i < size; i++) {
    const count = countOf(i);
    if (count === 0) continue;
    distinct++;
    if (limit <= 0) continue;
    if (best.length === limit) {
      const last = countOf(best[limit - 1]!);
      if (count < last || (count === last && !before(i, best[limit - 1]!))) continue;
    }
    let at = best.length;
    while (at > 0) {
      const other = best[at - 1]!;
      const c = countOf(other);
      if (count < c || (count === c && before(other, i))) break;
      at--;
    }
    best.splice(at, 0, i);
    if (best.length > limit) best.pop();
  }
  return {
    total,
    states: stateTotals(stateCounts),
    distinct,
    top: best.map((i) => ({ key: name(i), count: countOf(i) })),
  };
}

/** Address order, as keyOrder has it: IPv4 before IPv6, then by value. */
function addressBefore(book: AddressBook, i: number, j: number): boolean {
  const fi = book.family(i);
  const fj = book.family(j);
  if (fi !== fj) return fi < fj;
  if (fi === 4) return book.ipv4(i) < book.ipv4(j);
  for (let w = 0; w < 4; w++) {
    const a = book.ipv6Word(i, w);
    const b = book.ipv6Word(j, w);
    if (a !== b) return a < b;
  }
  return false;
}

/** Fibonacci hashing of four words; the slot is the top bits, which depend on every bit of the key. */
const netHash = (a: number, b: number, c: number, d: number, shift: number): number =>
  Math.imul(a ^ Math.imul(b, 0x85ebca6b) ^ Math.imul(c, 0xc2b2ae35) ^ Math.imul(d, 0x27d4eb2f), 0x9e3779b1) >>> shift;

/**
 * The slot count for `expected` keys at most three quarters full (a few probes per key, and a
 * quarter less memory than half full at most sizes): a power of two, at least 64.
 */
function capacityFor(expected: number): number {
  let capacity = 64;
  while (capacity * 3 < expected * 4) capacity *= 2;
  return capacity;
}

/**
 * Networks keyed by number in open-addressing tables over typed arrays, one per family: an IPv4
 * network is one word, stored with its count and sources side by side (one cache line per probe:
 * with every source distinct there are as many networks as sources); an IPv6 network is four
 * big-endian words and its count and sources. Each address id is one source, so a network's sources
 * are the ids added to it. Slots [0, v4 capacity) are the IPv4 networks, the rest the IPv6 ones.
 */
class NetCounts {
  /** Per IPv4 slot: network, count, sources (0: empty). */
  private readonly v4: Uint32Array;
  /** Per IPv6 slot: four words, count, sources (0: empty). */
  private readonly v6: Uint32Array;
  private readonly cap4: number;
  private readonly cap6: number;
  /** 32 − log2(capacity) per family: a slot is the high bits of the hash. */
  private readonly shift4: number;
  private readonly shift6: number;
  readonly capacity: number;

  constructor(
    expected4: number,
    expected6: number,
    private readonly prefix4: number,
    private readonly prefix6: number,
  ) {
    // Sized for every source once, so they never grow: a network holds at least one source.
    this.cap4 = capacityFor(expected4);
    this.cap6 = capacityFor(expected6);
    this.capacity = this.cap4 + this.cap6;
    this.shift4 = 32 - Math.log2(this.cap4);
    this.shift6 = 32 - Math.log2(this.cap6);
    this.v4 = scratch(NETS4, this.cap4 * 3);
    this.v6 = scratch(NETS6, this.cap6 * 6);
  }

  add4(network: number, count: number): void {
    const mask = this.cap4 - 1;
    const v4 = this.v4;
    let slot = Math.imul(network, 0x9e3779b1) >>> this.shift4;
    let k = slot * 3;
    for (;;) {
      if (v4[k + 2] === 0) break;
      if (v4[k] === network) {
        v4[k + 1]! += count;
        v4[k + 2]!++;
        return;
      }
      slot = (slot + 1) & mask;
      k = slot * 3;
    }
    v4[k] = network;
    v4[k + 1] = count;
    v4[k + 2] = 1;
  }

  add6(a: number, b: number, c: number, d: number, count: number): void {
    const mask = this.cap6 - 1;
    const v6 = this.v6;
    let slot = netHash(a, b, c, d, this.shift6);
    for (;;) {
      const k = slot * 6;
      if (v6[k + 5] === 0) break;
      if (v6[k] === a && v6[k + 1] === b && v6[k + 2] === c && v6[k + 3] === d) {
        v6[k + 4]! += count;
        v6[k + 5]!++;
        return;
      }
      slot = (slot + 1) & mask;
    }
    const k = slot * 6;
    v6[k] = a;
    v6[k + 1] = b;
    v6[k + 2] = c;
    v6[k + 3] = d;
    v6[k + 4] = count;
    v6[k + 5] = 1;
  }

  /** The sockets of a slot's network; 0 for an empty slot. */
  count(slot: number): number {
    return slot < this.cap4 ? this.v4[slot * 3 + 1]! : this.v6[(slot - this.cap4) * 6 + 4]!;
  }

  /** The distinct sources of a slot's network. */
  sources(slot: number): number {
    return slot < this.cap4 ? this.v4[slot * 3 + 2]! : this.v6[(slot - this.cap4) * 6 + 5]!;
  }

  /** Network order: IPv4 before IPv6, then by value. */
  before(i: number, j: number): boolean {
    const v4i = i < this.cap4;
    if (v4i !== j < this.cap4) return v4i;
    if (v4i) return this.v4[i * 3]! < this.v4[j * 3]!;
    const ki = (i - this.cap4) * 6;
    const kj = (j - this.cap4) * 6;
    for (let w = 0; w < 4; w++) {
      const a = this.v6[ki + w]!;
      const b = this.v6[kj + w]!;
      if (a !== b) return a < b;
    }
    return false;
  }

  name(slot: number): string {
    if (slot < this.cap4) {
      const network = formatIpv4(this.v4[slot * 3]!);
      return this.prefix4 === 32 ? network : `${network}/${this.prefix4}`;
    }
    const k = (slot - this.cap4) * 6;
    const w = this.v6;
    const value = (BigInt(w[k]!) << 96n) | (BigInt(w[k + 1]!) << 64n) | (BigInt(w[k + 2]!) << 32n) | BigInt(w[k + 3]!);
    return formatCidr({ family: 6, value, prefix: this.prefix6 });
  }
}

/**
 * Sums per-address counts into networks, by number: a table of a million distinct sources has about
 * as many networks, and none of them is made into text unless it is returned.
 */
function countNetworks(addresses: AddressBook, counts: Uint32Array, prefix4: number, prefix6: number): NetCounts {
  const mask4 = wordMask(prefix4, 0);
  const m6 = [wordMask(prefix6, 0), wordMask(prefix6, 1), wordMask(prefix6, 2), wordMask(prefix6, 3)] as const;
  let sources4 = 0;
  let sources6 = 0;
  for (let id = 1; id < counts.length; id++) {
    if (counts[id] === 0) continue;
    if (addresses.family(id) === 4) sources4++;
    else sources6++;
  }
  const nets = new NetCounts(sources4, sources6, prefix4, prefix6);
  for (let id = 1; id < counts.length; id++) {
    const count = counts[id]!;
    if (count === 0) continue;
    if (addresses.family(id) === 4) nets.add4((addresses.ipv4(id) & mask4) >>> 0, count);
    else {
      nets.add6(
        (addresses.ipv6Word(id, 0) & m6[0]) >>> 0,
        (addresses.ipv6Word(id, 1) & m6[1]) >>> 0,
        (addresses.ipv6Word(id, 2) & m6[2]) >>> 0,
        (addresses.ipv6Word(id, 3) & m6[3]) >>> 0,
        count,
      );
    }
  }
  return nets;
}

export interface GroupCount {
  readonly key: string;
  readonly count: number;
}

/** Orders keys as people read them: ports by number, addresses and networks by address. */
function keyOrder(numericKeys: boolean): (a: string, b: string) => number {
  if (numericKeys) return (a, b) => Number(a) - Number(b);
  const cache = new Map<string, [number, bigint, number]>();
  const sortKey = (key: string): [number, bigint, number] => {
    let hit = cache.get(key);
    if (hit === undefined) {
      const cidr = parseCidr(key);
      hit = cidr === null ? [9, 0n, 0] : [cidr.family, cidr.value, cidr.prefix];
      cache.set(key, hit);
    }
    return hit;
  };
  return (a, b) => {
    // Plain IPv4 addresses, by far the most common keys, compare without parsing into BigInts.
    const na = parseIpv4Number(a);
    const nb = parseIpv4Number(b);
    if (na >= 0 && nb >= 0) return na - nb;
    const [fa, va, pa] = sortKey(a);
    const [fb, vb, pb] = sortKey(b);
    return fa - fb || (va < vb ? -1 : va > vb ? 1 : 0) || pa - pb || (a < b ? -1 : a > b ? 1 : 0);
  };
}

/**
 * The `limit` largest groups, count descending and ties by key ascending (by address for
 * addresses). Groups above the limit-th largest count are sorted; among those tied with it (all of
 * them, when every source holds one socket) only the few that make the cut are kept, in one pass.
 */
export function topGroups(groups: ReadonlyMap<string, number>, limit: number, numericKeys = false): GroupCount[] {
  if (limit <= 0 || groups.size === 0) return [];
  const counts = Float64Array.from(groups.values()).sort();
  const cutoff = counts[Math.max(0, counts.length - limit)]!;
  const order = keyOrder(numericKeys);
  const above: GroupCount[] = [];
  const tied: GroupCount[] = [];
  const need = limit - counts.filter((c) => c > cutoff).length;
  for (const [key, count] of groups) {
    if (count > cutoff) above.push({ key, count });
    else if (count === cutoff) {
      // Keep the `need` first keys, in order, by insertion into a short sorted list.
      if (tied.length === need && order(key, tied[need - 1]!.key) >= 0) continue;
      let i = tied.length;
      while (i > 0 && order(key, tied[i - 1]!.key) < 0) i--;
      tied.splice(i, 0, { key, count });
      if (tied.length > need) tied.pop();
    }
  }
  above.sort((a, b) => b.count - a.count || order(a.key, b.key));
  return [...above, ...tied];
}
