// Addresses are parsed strictly and printed one way (RFC 5952), so that the same host always has
// the same text in counts, bans and firewall rules.
import { describe, expect, it } from 'vitest';
import { canonicalIp, formatCidr, formatCidrWithPrefix, formatIp, parseCidr, parseIp } from '../../src/net/ip.js';

describe('parseIp', () => {
  it.each([
    ['198.51.100.7', 4, 0xc6336407n],
    ['0.0.0.0', 4, 0n],
    ['10.0.200.250', 4, 0x0a00c8fan],
    ['255.255.255.255', 4, 0xffffffffn],
    ['::', 6, 0n],
    ['::1', 6, 1n],
    ['1::', 6, 1n << 112n],
    ['2001:db8::1', 6, 0x20010db8000000000000000000000001n],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', 6, 0x20010db8000000000000000000000001n],
    ['2001:DB8::1', 6, 0x20010db8000000000000000000000001n],
    ['1:2:3:4:5:6:7:8', 6, 0x00010002000300040005000600070008n],
    ['64:ff9b::192.0.2.33', 6, 0x0064ff9b0000000000000000c0000221n],
    ['1:2:3:4:5:6:192.0.2.33', 6, 0x000100020003000400050006c0000221n],
  ])('reads %s', (text, family, value) => {
    expect(parseIp(text)).toEqual({ family, value });
  });

  it('reads an IPv4-mapped IPv6 address as the IPv4 address it carries', () => {
    expect(parseIp('::ffff:198.51.100.7')).toEqual({ family: 4, value: 0xc6336407n });
    expect(parseIp('::FFFF:c633:6407')).toEqual({ family: 4, value: 0xc6336407n });
    // ::a.b.c.d (the deprecated IPv4-compatible form) is not mapped: it stays IPv6.
    expect(parseIp('::198.51.100.7')).toEqual({ family: 6, value: 0xc6336407n });
  });

  it.each([
    ['a leading zero (octal to some tools)', '198.051.100.7'],
    ['a lone leading zero', '01.2.3.4'],
    ['a leading zero in an embedded IPv4 tail', '::ffff:198.51.100.07'],
    ['an octet of 256', '198.51.100.256'],
    ['an octet of 999', '999.1.1.1'],
    ['three octets', '198.51.100'],
    ['five octets', '198.51.100.7.1'],
    ['a trailing dot', '198.51.100.'],
    ['a leading dot', '.198.51.100.7'],
    ['an empty octet', '198..100.7'],
    ['a double zero octet', '198.51.00.7'],
    ['four digits in an octet', '198.51.1000.7'],
    ['an octet of 2555', '198.51.2555.7'],
    ['a plus sign', '+198.51.100.7'],
    ['a hex octet', '198.51.100.0x7'],
    ['a full-width digit', '198.51.100.７'],
    ['a negative octet', '198.51.-1.7'],
    ['surrounding spaces', ' 198.51.100.7 '],
    ['a zone id', 'fe80::1%eth0'],
    ['a numeric zone id', 'fe80::1%2'],
    ['two ::', '2001::db8::1'],
    [':::', ':::'],
    ['nine groups', '1:2:3:4:5:6:7:8:9'],
    ['eight groups and ::', '1::2:3:4:5:6:7:8'],
    ['seven groups without ::', '1:2:3:4:5:6:7'],
    ['a five-digit group', '2001:db8::12345'],
    ['a non-hex group', '2001:db8::g'],
    ['a single leading colon', ':1:2:3:4:5:6:7'],
    ['a single trailing colon', '1:2:3:4:5:6:7:'],
    ['an IPv4 tail after eight groups', '1:2:3:4:5:6:7:192.0.2.1'],
    ['a bad IPv4 tail', '::ffff:1.2.3.4.5'],
    ['brackets', '[2001:db8::1]'],
    ['a prefix', '198.51.100.0/24'],
    ['a host name', 'localhost'],
    ['nothing', ''],
  ])('refuses %s', (_what, text) => {
    expect(parseIp(text)).toBeNull();
  });
});

describe('formatIp (RFC 5952)', () => {
  const v6 = (text: string) => formatIp(6, parseIp(text)!.value);

  it.each([
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    // The longest run of zero groups is the one shortened...
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    // ...the leftmost of two equally long runs...
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    // ...and a single zero group is never written as "::".
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
    ['2001:db8:00a0::0001', '2001:db8:a0::1'],
    ['2001:db8::192.0.2.33', '2001:db8::c000:221'],
  ])('writes %s as %s', (input, output) => {
    expect(v6(input)).toBe(output);
  });

  it('writes IPv4 as dotted quads', () => {
    expect(formatIp(4, 0xc6336407n)).toBe('198.51.100.7');
    expect(formatIp(4, 0n)).toBe('0.0.0.0');
    expect(formatIp(4, 0xffffffffn)).toBe('255.255.255.255');
  });

  it('writes an IPv4-mapped address as plain IPv4', () => {
    expect(canonicalIp('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(canonicalIp('0:0:0:0:0:FFFF:C633:6407')).toBe('198.51.100.7');
    expect(canonicalIp('2001:DB8:0::1')).toBe('2001:db8::1');
    expect(canonicalIp('198.051.100.7')).toBeNull();
  });
});

describe('parseCidr', () => {
  it.each([
    ['198.51.100.7', '198.51.100.7', 32],
    ['198.51.100.7/24', '198.51.100.0/24', 24],
    ['198.51.100.255/25', '198.51.100.128/25', 25],
    ['198.51.100.7/32', '198.51.100.7', 32],
    ['2001:db8:1:2:3:4:5:6/64', '2001:db8:1:2::/64', 64],
    ['2001:db8::1/128', '2001:db8::1', 128],
    ['2001:db8:abcd::/36', '2001:db8:a000::/36', 36],
    ['0.0.0.0/0', '0.0.0.0/0', 0],
    ['198.51.100.7/0', '0.0.0.0/0', 0],
  ])('reads %s as %s, host bits cleared', (text, canonical, prefix) => {
    const cidr = parseCidr(text)!;
    expect(formatCidr(cidr)).toBe(canonical);
    expect(cidr.prefix).toBe(prefix);
  });

  it('reads a mapped network with an IPv6 prefix as the IPv4 network (/120 is /24)', () => {
    expect(parseCidr('::ffff:198.51.100.0/120')).toEqual({ family: 4, value: 0xc6336400n, prefix: 24 });
    expect(formatCidr(parseCidr('::ffff:198.51.100.77/120')!)).toBe('198.51.100.0/24');
    expect(formatCidr(parseCidr('::ffff:198.51.100.77/128')!)).toBe('198.51.100.77');
    expect(formatCidr(parseCidr('::ffff:198.51.100.77')!)).toBe('198.51.100.77');
  });

  it.each([
    ['an IPv4 prefix above 32', '198.51.100.0/33'],
    ['an IPv6 prefix above 128', '2001:db8::/129'],
    ['a mapped prefix that reaches outside the mapped range', '::ffff:198.51.100.0/95'],
    ['a negative prefix', '198.51.100.0/-1'],
    ['a zero-padded prefix', '198.51.100.0/024'],
    ['an empty prefix', '198.51.100.0/'],
    ['a netmask instead of a length', '198.51.100.0/255.255.255.0'],
    ['two prefixes', '198.51.100.0/24/24'],
    ['a bad address', '198.51.100.256/24'],
  ])('refuses %s', (_what, text) => {
    expect(parseCidr(text)).toBeNull();
  });

  it('prints a host with its prefix when a firewall wants it', () => {
    expect(formatCidrWithPrefix(parseCidr('198.51.100.7')!)).toBe('198.51.100.7/32');
    expect(formatCidrWithPrefix(parseCidr('2001:db8::7')!)).toBe('2001:db8::7/128');
  });
});
