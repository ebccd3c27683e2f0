// A set of addresses and networks, matched by prefix arithmetic: one hash lookup per distinct prefix
// length, so an allowlist or a ban list of any size costs the same per lookup. Only the numbers are
// kept, no Cidr objects: the suppressed set of a daemon holds every active ban.
import { type Cidr, type Family, bitsOf, networkOf, parseCidr } from './ip.js';

/** The /prefix network of an IPv4 address held as a number (0 .. 2^32-1). */
function network4(value: number, prefix: number): number {
  // `>>> 32` shifts by nothing in JavaScript: /0 is its own case.
  if (prefix === 0) return 0;
  const hostBits = 32 - prefix;
  return ((value >>> hostBits) << hostBits) >>> 0;
}

export class CidrSet {
  // prefix length -> network values. IPv4 networks are kept as numbers: covers() runs for every ban
  // and every counted source, and BigInt shifts made it the costliest step of a ban.
  private readonly v4 = new Map<number, Set<number>>();
  private readonly v6 = new Map<number, Set<bigint>>();
  private count = 0;

  constructor(cidrs: Iterable<Cidr> = []) {
    for (const cidr of cidrs) this.add(cidr);
  }

  static parse(texts: Iterable<string>): CidrSet {
    const set = new CidrSet();
    for (const text of texts) {
      const cidr = parseCidr(text);
      if (cidr === null) throw new Error(`not an address or network: ${JSON.stringify(text)}`);
      set.add(cidr);
    }
    return set;
  }

  get size(): number {
    return this.count;
  }

  add(cidr: Cidr): void {
    const added =
      cidr.family === 4 ? addTo(this.v4, cidr.prefix, Number(cidr.value)) : addTo(this.v6, cidr.prefix, cidr.value);
    if (added) this.count++;
  }

  /** Removes exactly this entry (not the addresses it covers); false when it was not there. */
  delete(cidr: Cidr): boolean {
    const deleted =
      cidr.family === 4
        ? deleteFrom(this.v4, cidr.prefix, Number(cidr.value))
        : deleteFrom(this.v6, cidr.prefix, cidr.value);
    if (deleted) this.count--;
    return deleted;
  }

  /** True when some entry contains the whole of `cidr` (an address is a /32 or /128). */
  covers(cidr: Cidr): boolean {
    if (cidr.family === 4) return this.coversIpv4(Number(cidr.value), cidr.prefix);
    for (const [prefix, values] of this.v6) {
      if (prefix <= cidr.prefix && values.has(networkOf(6, cidr.value, prefix))) return true;
    }
    return false;
  }

  coversAddress(family: Family, value: bigint): boolean {
    return this.covers({ family, value, prefix: bitsOf(family) });
  }

  /** covers() for an IPv4 address or network given as a number: no BigInt on the way. */
  coversIpv4(value: number, prefixLength = 32): boolean {
    for (const [prefix, values] of this.v4) {
      if (prefix <= prefixLength && values.has(network4(value, prefix))) return true;
    }
    return false;
  }

  /** True when some entry and `cidr` share at least one address. */
  overlaps(cidr: Cidr): boolean {
    if (this.covers(cidr)) return true;
    // Otherwise only an entry inside `cidr` can share an address with it, and an address holds none.
    if (cidr.prefix === bitsOf(cidr.family)) return false;
    if (cidr.family === 4) {
      const outer = Number(cidr.value);
      for (const [prefix, values] of this.v4) {
        if (prefix <= cidr.prefix) continue;
        for (const value of values) if (network4(value, cidr.prefix) === outer) return true;
      }
      return false;
    }
    for (const [prefix, values] of this.v6) {
      if (prefix <= cidr.prefix) continue;
      for (const value of values) if (networkOf(6, value, cidr.prefix) === cidr.value) return true;
    }
    return false;
  }
}

/** Adds `value` under `prefix`; false when it was there already. */
function addTo<T>(byPrefix: Map<number, Set<T>>, prefix: number, value: T): boolean {
  let values = byPrefix.get(prefix);
  if (values === undefined) {
    values = new Set();
    byPrefix.set(prefix, values);
  }
  if (values.has(value)) return false;
  values.add(value);
  return true;
}

function deleteFrom<T>(byPrefix: Map<number, Set<T>>, prefix: number, value: T): boolean {
  const values = byPrefix.get(prefix);
  if (values === undefined || !values.delete(value)) return false;
  // An empty prefix length would still cost a lookup in every covers().
  if (values.size === 0) byPrefix.delete(prefix);
  return true;
}
