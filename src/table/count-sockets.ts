// Filters a table and counts its sockets per state and per group (remote IP, remote network or
// local port): the netstat | grep | awk | sort | uniq -c pipeline as one pure pass.
import { formatCidr, formatIpv4, networkOf, parseCidr, parseIp, parseIpv4Number } from '../net/ip.js';
import { STATES, type Proto, type SocketState } from './socket-row.js';
import { type AddressBook, type SocketTable, protoIndex, stateIndex } from './socket-table.js';

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
 * One pass over the table's columns. Sockets are counted per address id in a typed array; a group's
 * text is made only for the groups returned, so a table of a million distinct sources makes no
 * strings when only the few above a threshold are wanted.
 */
export function countSockets(table: SocketTable, filter: SocketFilter, grouping: Grouping, options: CountOptions = {}): SocketCounts {
  const { protos, states, localPorts, remotes, addresses } = table;
  const { skip, above = 0, minSources = 1, mark } = options;
  const proto = filter.proto === undefined || filter.proto === 'all' ? -1 : protoIndex(filter.proto);
  const stateOk = new Uint8Array(STATES.length).fill(filter.states === undefined ? 1 : 0);
  for (const state of filter.states ?? []) stateOk[stateIndex(state)] = 1;
  let portOk: Uint8Array | null = null;
  if (filter.ports !== undefined) {
    portOk = new Uint8Array(65536);
    for (const port of filter.ports) portOk[port] = 1;
  }
  const byPort = grouping.by === 'port';
  const counts = new Uint32Array(byPort ? 65536 : addresses.size);
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

  const stateTotals: Partial<Record<SocketState, number>> = {};
  for (let s = 0; s < STATES.length; s++) if (stateCounts[s]! > 0) stateTotals[STATES[s]!] = stateCounts[s]!;
  let groups = new Map<string, number>();
  if (byPort) {
    for (let port = 0; port < 65536; port++) if (counts[port]! > above) groups.set(String(port), counts[port]!);
  } else if (grouping.by === 'ip') {
    for (let id = 1; id < counts.length; id++) {
      if (counts[id]! <= above) continue;
      groups.set(addresses.name(id), counts[id]!);
      if (mark !== undefined) mark[id] = 1;
    }
  } else {
    groups = countNetworks(addresses, counts, grouping.prefix4, grouping.prefix6, above, minSources);
  }
  return { total, states: stateTotals, groups };
}

/**
 * Sums per-address counts into networks: IPv4 by number, IPv6 (rarer) by its network's text. The
 * distinct sources are counted in a second pass, for the few networks over `above` only: a table
 * of a million distinct sources has about as many networks, and most are far below any threshold.
 */
function countNetworks(addresses: AddressBook, counts: Uint32Array, prefix4: number, prefix6: number, above: number, minSources: number): Map<string, number> {
  const hostBits = 32 - prefix4;
  const net4 = (id: number): number => (hostBits === 32 ? 0 : addresses.ipv4(id) >>> hostBits);
  const net6 = (id: number): string =>
    prefix6 === 128 ? addresses.name(id) : formatCidr({ family: 6, value: networkOf(6, parseIp(addresses.name(id))!.value, prefix6), prefix: prefix6 });
  const nets4 = new Map<number, number>();
  const nets6 = new Map<string, number>();
  /** The network of each IPv6 source, for the second pass. */
  const keys6 = new Map<number, string>();
  for (let id = 1; id < counts.length; id++) {
    const count = counts[id]!;
    if (count === 0) continue;
    if (addresses.family(id) === 4) {
      const net = net4(id);
      nets4.set(net, (nets4.get(net) ?? 0) + count);
    } else {
      const key = net6(id);
      keys6.set(id, key);
      nets6.set(key, (nets6.get(key) ?? 0) + count);
    }
  }
  const over4 = new Map<number, number>();
  const over6 = new Map<string, number>();
  for (const [net, count] of nets4) if (count > above) over4.set(net, 0);
  for (const [key, count] of nets6) if (count > above) over6.set(key, 0);
  if (minSources > 1 && over4.size + over6.size > 0) {
    for (let id = 1; id < counts.length; id++) {
      if (counts[id] === 0) continue;
      if (addresses.family(id) === 4) {
        const net = net4(id);
        const sources = over4.get(net);
        if (sources !== undefined) over4.set(net, sources + 1);
      } else if (over6.size > 0) {
        const key = keys6.get(id)!;
        const sources = over6.get(key);
        if (sources !== undefined) over6.set(key, sources + 1);
      }
    }
  }
  const groups = new Map<string, number>();
  for (const [net, sources] of over4) {
    if (minSources > 1 && sources < minSources) continue;
    const value = hostBits === 32 ? 0 : (net << hostBits) >>> 0;
    groups.set(prefix4 === 32 ? formatIpv4(value) : `${formatIpv4(value)}/${prefix4}`, nets4.get(net)!);
  }
  for (const [key, sources] of over6) if (minSources <= 1 || sources >= minSources) groups.set(key, nets6.get(key)!);
  return groups;
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
