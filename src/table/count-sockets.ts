// Filters a table and counts its sockets per state and per group (remote IP, remote network or
// local port): the netstat | grep | awk | sort | uniq -c pipeline as one pure pass.
import { bitsOf, formatCidr, networkOf, parseCidr, parseIp } from '../net/ip.js';
import type { Proto, SocketRow, SocketState } from './socket-row.js';

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

/** Maps an address to its network's text, remembering each answer. */
export function networkKeyer(prefix4: number, prefix6: number): (address: string) => string {
  const cache = new Map<string, string>();
  return (address) => {
    let key = cache.get(address);
    if (key === undefined) {
      const ip = parseIp(address)!;
      const prefix = ip.family === 4 ? prefix4 : prefix6;
      key = prefix === bitsOf(ip.family) ? address : formatCidr({ family: ip.family, value: networkOf(ip.family, ip.value, prefix), prefix });
      cache.set(address, key);
    }
    return key;
  };
}

export function matchesFilter(row: SocketRow, filter: SocketFilter): boolean {
  if (filter.proto !== undefined && filter.proto !== 'all' && row.proto !== filter.proto) return false;
  if (filter.states !== undefined && !filter.states.has(row.state)) return false;
  if (filter.ports !== undefined && !filter.ports.has(row.localPort)) return false;
  return true;
}

export function countSockets(
  rows: readonly SocketRow[],
  filter: SocketFilter,
  grouping: Grouping,
  /** Sources to leave out entirely (for example targets already banned). */
  skip?: (remote: string) => boolean,
): SocketCounts {
  const states: Partial<Record<SocketState, number>> = {};
  const groups = new Map<string, number>();
  const netKey = grouping.by === 'net' ? networkKeyer(grouping.prefix4, grouping.prefix6) : undefined;
  let total = 0;
  for (const row of rows) {
    if (!matchesFilter(row, filter)) continue;
    if (skip !== undefined && row.remote !== '' && skip(row.remote)) continue;
    total++;
    states[row.state] = (states[row.state] ?? 0) + 1;
    if (row.remote === '') continue;
    const key = grouping.by === 'ip' ? row.remote : grouping.by === 'port' ? String(row.localPort) : netKey!(row.remote);
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return { total, states, groups };
}

export interface GroupCount {
  readonly key: string;
  readonly count: number;
}

/** A plain dotted IPv4 address as a number, without allocating; -1 for anything else. */
function ipv4Number(key: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      octet = octet * 10 + (c - 48);
      digits++;
    } else return -1;
  }
  return dots === 3 && digits > 0 && octet < 256 ? value * 256 + octet : -1;
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
    const na = ipv4Number(a);
    const nb = ipv4Number(b);
    if (na >= 0 && nb >= 0) return na - nb;
    const [fa, va, pa] = sortKey(a);
    const [fb, vb, pb] = sortKey(b);
    return fa - fb || (va < vb ? -1 : va > vb ? 1 : 0) || pa - pb || (a < b ? -1 : a > b ? 1 : 0);
  };
}

export interface GroupCount {
  readonly key: string;
  readonly count: number;
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
