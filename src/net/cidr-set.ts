// A set of addresses and networks, matched by prefix arithmetic: one hash lookup per distinct prefix
// length, so an allowlist or a ban list of any size costs the same per lookup.
import { type Cidr, type Family, bitsOf, cidrsOverlap, networkOf, parseCidr } from './ip.js';

export class CidrSet {
  // family -> prefix length -> network values
  private readonly byPrefix = new Map<Family, Map<number, Set<bigint>>>([
    [4, new Map()],
    [6, new Map()],
  ]);
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
    const prefixes = this.byPrefix.get(cidr.family)!;
    let values = prefixes.get(cidr.prefix);
    if (values === undefined) {
      values = new Set();
      prefixes.set(cidr.prefix, values);
    }
    if (!values.has(cidr.value)) {
      values.add(cidr.value);
      this.entries.push(cidr);
    }
  }

  /** True when some entry contains the whole of `cidr` (an address is a /32 or /128). */
  covers(cidr: Cidr): boolean {
    for (const [prefix, values] of this.byPrefix.get(cidr.family)!) {
      if (prefix <= cidr.prefix && values.has(networkOf(cidr.family, cidr.value, prefix))) return true;
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
