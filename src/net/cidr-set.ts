// A set of addresses and networks, matched by prefix arithmetic: one hash lookup per distinct prefix
// length, so an allowlist or a ban list of any size costs the same per lookup.
import { type Cidr, type Family, bitsOf, cidrsOverlap, networkOf, parseCidr } from './ip.js';

/** The /prefix network of an IPv4 address held as a number (0 .. 2^32-1). */
function network4(value: number, prefix: number): number {
  // `>>> 32` shifts by nothing in JavaScript: /0 is its own case.
  if (prefix === 0) return 0;
  const hostBits = 32 - prefix;
  return ((value >>> hostBits) << hostBits) >>> 0;
}

export class CidrSet {
  // prefix length -> network values. IPv4 networks are kept as numbers: covers() runs for every ban
  // and every counted socket, and BigInt shifts made it the costliest step of a ban.
  private readonly v4 = new Map<number, Set<number>>();
  private readonly v6 = new Map<number, Set<bigint>>();
  private readonly entries: Cidr[] = [];

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
    return this.entries.length;
  }

  add(cidr: Cidr): void {
    const added = cidr.family === 4 ? addTo(this.v4, cidr.prefix, Number(cidr.value)) : addTo(this.v6, cidr.prefix, cidr.value);
    if (added) this.entries.push(cidr);
  }

  /** True when some entry contains the whole of `cidr` (an address is a /32 or /128). */
  covers(cidr: Cidr): boolean {
    if (cidr.family === 4) {
      const value = Number(cidr.value);
      for (const [prefix, values] of this.v4) {
        if (prefix <= cidr.prefix && values.has(network4(value, prefix))) return true;
      }
      return false;
    }
    for (const [prefix, values] of this.v6) {
      if (prefix <= cidr.prefix && values.has(networkOf(6, cidr.value, prefix))) return true;
    }
    return false;
  }

  coversAddress(family: Family, value: bigint): boolean {
    return this.covers({ family, value, prefix: bitsOf(family) });
  }

  /** True when some entry and `cidr` share at least one address. */
  overlaps(cidr: Cidr): boolean {
    if (this.covers(cidr)) return true;
    // Only a network can hold entries narrower than itself; for an address, covers() was the answer.
    if (cidr.prefix === bitsOf(cidr.family)) return false;
    return this.entries.some((entry) => cidrsOverlap(entry, cidr));
  }

  values(): readonly Cidr[] {
    return this.entries;
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
