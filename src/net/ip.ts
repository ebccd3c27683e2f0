// IP addresses and networks as numbers: strict parsing, canonical text, prefix arithmetic.
// Everything that compares addresses goes through here, so that no caller ever matches by string.

export type Family = 4 | 6;

/** An address or a network: `value` is the network address (host bits zero), `prefix` its length. */
export interface Cidr {
  readonly family: Family;
  readonly value: bigint;
  readonly prefix: number;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

/** The number an IPv4 address's text denotes, or -1. One pass over the characters: a 10k-target
 * ban list is parsed twice (CLI and daemon), and split + a regex per octet was most of that. */
export function parseIpv4Number(text: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // Leading zeros are refused: "010" is octal to some tools and decimal to others.
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (octet > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

function parseIpv4(text: string): bigint | null {
  const value = parseIpv4Number(text);
  return value < 0 ? null : BigInt(value);
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

function parseIpv6(text: string): bigint | null {
  if (text.length < 2 || text.length > 45) return null;
  let head = text;
  let tailV4: bigint | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tailV4 = parseIpv4(text.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const left = halves[0] === '' ? [] : halves[0]!.split(':');
  const right = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const groups = left.length + right.length;
  if (halves.length === 1 ? groups !== 8 : groups > 7) return null;
  const all = [...left, ...Array<string>(8 - groups).fill('0'), ...right];
  let value = 0n;
  for (const group of all) {
    if (!HEXTET.test(group)) return null;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  if (tailV4 !== null) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

/**
 * Parses an IPv4 or IPv6 address strictly. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4
 * address: the kernel shows IPv4 clients of a dual-stack listener that way, and they are the same host.
 */
export function parseIp(text: string): { family: Family; value: bigint } | null {
  if (text.includes(':')) {
    const value = parseIpv6(text);
    if (value === null) return null;
    if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
    return { family: 6, value };
  }
  const value = parseIpv4(text);
  return value === null ? null : { family: 4, value };
}

const OCTETS = Array.from({ length: 256 }, (_, i) => String(i));

export function formatIpv4(value: number): string {
  return (
    OCTETS[value >>> 24]! +
    '.' +
    OCTETS[(value >>> 16) & 255]! +
    '.' +
    OCTETS[(value >>> 8) & 255]! +
    '.' +
    OCTETS[value & 255]!
  );
}

/** RFC 5952 text: lower case, the longest run (leftmost on ties) of two or more zero groups as "::". */
export function formatIpv6Groups(groups: ArrayLike<number>): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => {
    const out: string[] = [];
    for (let i = from; i < to; i++) out.push(groups[i]!.toString(16));
    return out.join(':');
  };
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

export function formatIp(family: Family, value: bigint): string {
  if (family === 4) return formatIpv4(Number(value));
  const groups = new Array<number>(8);
  for (let i = 7; i >= 0; i--) {
    groups[i] = Number(value & 0xffffn);
    value >>= 16n;
  }
  return formatIpv6Groups(groups);
}

/** The canonical text of an address (mapped IPv4 as IPv4, IPv6 compressed), or null if it is not one. */
export function canonicalIp(text: string): string | null {
  const ip = parseIp(text);
  return ip === null ? null : formatIp(ip.family, ip.value);
}

/** 0n..128n, made once: BigInt() of a number in every networkOf call was a measurable cost. */
const HOST_BITS = Array.from({ length: 129 }, (_, i) => BigInt(i));

export function networkOf(family: Family, value: bigint, prefix: number): bigint {
  const hostBits = HOST_BITS[bitsOf(family) - prefix]!;
  return (value >> hostBits) << hostBits;
}

/** Parses "ip" or "ip/prefix"; host bits are cleared ("198.51.100.7/24" is 198.51.100.0/24). */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const ipText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(ipText);
  if (ip === null) return null;
  const bits = bitsOf(ip.family);
  let prefix = bits;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(?:0|[1-9]\d{0,2})$/.test(prefixText)) return null;
    prefix = Number(prefixText);
    // A mapped address written with an IPv6 prefix: ::ffff:198.51.100.0/120 is 198.51.100.0/24.
    if (ip.family === 4 && ipText.includes(':')) prefix -= 96;
    if (prefix < 0 || prefix > bits) return null;
  }
  // An address is its own network: no BigInt shifts for the common case.
  return { family: ip.family, value: prefix === bits ? ip.value : networkOf(ip.family, ip.value, prefix), prefix };
}

/** "198.51.100.7" for a host, "198.51.100.0/24" for a network. */
export function formatCidr(cidr: Cidr): string {
  const ip = formatIp(cidr.family, cidr.value);
  return cidr.prefix === bitsOf(cidr.family) ? ip : `${ip}/${cidr.prefix}`;
}

/** Always with the prefix, as firewalls print it: "198.51.100.7/32". */
export function formatCidrWithPrefix(cidr: Cidr): string {
  return `${formatIp(cidr.family, cidr.value)}/${cidr.prefix}`;
}

export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefix <= inner.prefix &&
    networkOf(inner.family, inner.value, outer.prefix) === outer.value
  );
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}
