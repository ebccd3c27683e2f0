// Allowlists and ban lists match by address arithmetic, never by text prefix.
import { describe, expect, it } from 'vitest';
import { buildAllowlist } from '../../src/net/allowlist.js';
import { CidrSet } from '../../src/net/cidr-set.js';
import { parseCidr, parseIp } from '../../src/net/ip.js';

const cidr = (text: string) => parseCidr(text)!;
const coversIp = (set: CidrSet, text: string) => {
  const ip = parseIp(text)!;
  return set.coversAddress(ip.family, ip.value);
};

describe('CidrSet.covers', () => {
  it('does not take 192.168.7.162 for 192.168.7.16 (a text-prefix match would)', () => {
    const set = CidrSet.parse(['192.168.7.16']);
    expect(set.covers(cidr('192.168.7.16'))).toBe(true);
    expect(set.covers(cidr('192.168.7.162'))).toBe(false);
    expect(set.covers(cidr('192.168.7.160'))).toBe(false);
  });

  it('does not take 198.51.100.162 for 198.51.100.16, nor the reverse', () => {
    expect(coversIp(CidrSet.parse(['198.51.100.16']), '198.51.100.162')).toBe(false);
    expect(coversIp(CidrSet.parse(['198.51.100.162']), '198.51.100.16')).toBe(false);
    expect(coversIp(CidrSet.parse(['198.51.100.16']), '198.51.100.16')).toBe(true);
  });

  it('does not take 2001:db8::16 for 2001:db8::1 in IPv6 either', () => {
    const set = CidrSet.parse(['2001:db8::1']);
    expect(coversIp(set, '2001:db8::16')).toBe(false);
    expect(coversIp(set, '2001:db8::1')).toBe(true);
    expect(coversIp(set, '2001:db8:0:0::1')).toBe(true);
  });

  it('covers every address of a network and nothing next to it', () => {
    const set = CidrSet.parse(['198.51.100.0/24', '2001:db8:1::/64']);
    expect(coversIp(set, '198.51.100.0')).toBe(true);
    expect(coversIp(set, '198.51.100.255')).toBe(true);
    expect(coversIp(set, '198.51.101.0')).toBe(false);
    expect(coversIp(set, '198.51.99.255')).toBe(false);
    expect(coversIp(set, '2001:db8:1::ffff')).toBe(true);
    expect(coversIp(set, '2001:db8:1:0:ffff:ffff:ffff:ffff')).toBe(true);
    expect(coversIp(set, '2001:db8:1:1::')).toBe(false);
  });

  it('matches an IPv4-mapped address against its IPv4 entry, both ways', () => {
    expect(coversIp(CidrSet.parse(['198.51.100.0/24']), '::ffff:198.51.100.9')).toBe(true);
    expect(coversIp(CidrSet.parse(['::ffff:198.51.100.9']), '198.51.100.9')).toBe(true);
    expect(coversIp(CidrSet.parse(['::ffff:198.51.100.0/120']), '198.51.100.200')).toBe(true);
  });

  it('never matches an IPv4 address against an IPv6 network or the reverse', () => {
    // 198.51.100.7 and ::c633:6407 share their low 32 bits, not their family.
    expect(coversIp(CidrSet.parse(['::/96']), '198.51.100.7')).toBe(false);
    expect(coversIp(CidrSet.parse(['0.0.0.0/0']), '2001:db8::1')).toBe(false);
  });

  it('gets the IPv4 network arithmetic right at the edges: /0, /1, /31 and the top of the range', () => {
    expect(coversIp(CidrSet.parse(['0.0.0.0/0']), '255.255.255.255')).toBe(true);
    expect(coversIp(CidrSet.parse(['0.0.0.0/0']), '0.0.0.0')).toBe(true);
    const high = CidrSet.parse(['128.0.0.0/1']);
    expect(coversIp(high, '255.255.255.255')).toBe(true);
    expect(coversIp(high, '200.1.2.3')).toBe(true);
    expect(coversIp(high, '127.255.255.255')).toBe(false);
    const pair = CidrSet.parse(['255.255.255.254/31']);
    expect(coversIp(pair, '255.255.255.255')).toBe(true);
    expect(coversIp(pair, '255.255.255.254')).toBe(true);
    expect(coversIp(pair, '255.255.255.253')).toBe(false);
    expect(CidrSet.parse(['255.255.255.255']).covers(cidr('255.255.255.255'))).toBe(true);
  });

  it('covers a smaller network inside an entry, not a larger one around it', () => {
    const set = CidrSet.parse(['198.51.100.0/24']);
    expect(set.covers(cidr('198.51.100.128/25'))).toBe(true);
    expect(set.covers(cidr('198.51.0.0/16'))).toBe(false);
  });
});

describe('CidrSet.overlaps', () => {
  it('finds an allowlisted address inside a network', () => {
    const set = CidrSet.parse(['198.51.100.200']);
    expect(set.overlaps(cidr('198.51.100.0/24'))).toBe(true);
    expect(set.overlaps(cidr('198.51.100.0/25'))).toBe(false);
    expect(set.overlaps(cidr('198.51.101.0/24'))).toBe(false);
  });

  it('finds a network inside an allowlisted network, and one that contains it', () => {
    const set = CidrSet.parse(['2001:db8:1::/48']);
    expect(set.overlaps(cidr('2001:db8:1:5::/64'))).toBe(true);
    expect(set.overlaps(cidr('2001:db8::/32'))).toBe(true);
    expect(set.overlaps(cidr('2001:db8:2::/64'))).toBe(false);
  });

  it('finds an address that is an entry or inside one, and nothing else, in either family', () => {
    const set = CidrSet.parse(['198.51.100.7', '203.0.113.0/24', '2001:db8:1::/48', '2001:db8::9']);
    expect(set.overlaps(cidr('198.51.100.7'))).toBe(true);
    expect(set.overlaps(cidr('203.0.113.77'))).toBe(true);
    expect(set.overlaps(cidr('2001:db8:1::77'))).toBe(true);
    expect(set.overlaps(cidr('2001:db8::9'))).toBe(true);
    expect(set.overlaps(cidr('198.51.100.8'))).toBe(false);
    expect(set.overlaps(cidr('2001:db8::8'))).toBe(false);
    // The same bits in the other family are another address.
    expect(set.overlaps(cidr('::c633:6407'))).toBe(false);
  });
});

describe('CidrSet contents', () => {
  it('keeps one entry per distinct network, whatever text named it', () => {
    const set = CidrSet.parse([
      '198.51.100.7/24',
      '198.51.100.0/24',
      '::ffff:198.51.100.0/120',
      '2001:DB8::1',
      '2001:db8::1',
    ]);
    expect(set.size).toBe(2);
  });

  it('refuses text that is no address, naming it', () => {
    expect(() => CidrSet.parse(['198.51.100.7', 'office'])).toThrow('not an address or network: "office"');
  });
});

describe('buildAllowlist', () => {
  it('always allows loopback and link-local, plus the policy entries and the host addresses', () => {
    const set = buildAllowlist(['198.51.100.200', '2001:db8:3::/64'], ['192.0.2.1', 'fe80::1']);
    for (const allowed of [
      '127.0.0.1',
      '127.255.0.9',
      '::1',
      'fe80::abcd',
      '198.51.100.200',
      '2001:db8:3::10',
      '192.0.2.1',
    ]) {
      expect(coversIp(set, allowed), allowed).toBe(true);
    }
    for (const judged of ['198.51.100.20', '198.51.100.77', '2001:db8:2::66', '192.0.2.2', '::2']) {
      expect(coversIp(set, judged), judged).toBe(false);
    }
  });
});

describe('CidrSet.coversIpv4 (numbers, as the detector asks)', () => {
  it('agrees with covers() at every prefix length, /0 and /1 included', () => {
    const set = CidrSet.parse(['198.51.100.0/24', '203.0.113.7', '128.0.0.0/1']);
    const ask = (text: string) => set.coversIpv4(Number(parseCidr(text)!.value), parseCidr(text)!.prefix);
    for (const text of [
      '198.51.100.7',
      '198.51.100.0/25',
      '198.51.101.1',
      '203.0.113.7',
      '203.0.113.8',
      '200.1.2.3',
      '127.255.255.255',
      '0.0.0.0/0',
      '192.0.0.0/2',
    ]) {
      expect(ask(text), text).toBe(set.covers(parseCidr(text)!));
    }
    expect(ask('200.1.2.3')).toBe(true);
    expect(ask('127.255.255.255')).toBe(false);
    expect(CidrSet.parse(['0.0.0.0/0']).coversIpv4(0xc0000201)).toBe(true);
  });
});

describe('CidrSet.delete', () => {
  it('removes exactly the entry given, not the addresses or networks it covers', () => {
    const set = CidrSet.parse(['198.51.100.0/24', '198.51.100.7', '2001:db8::/32', '2001:db8::1']);
    expect(set.delete(parseCidr('198.51.100.0/24')!)).toBe(true);
    expect(set.delete(parseCidr('198.51.100.0/24')!)).toBe(false);
    expect(set.delete(parseCidr('198.51.100.8')!)).toBe(false);
    expect(set.covers(parseCidr('198.51.100.7')!)).toBe(true);
    expect(set.covers(parseCidr('198.51.100.8')!)).toBe(false);
    expect(set.delete(parseCidr('2001:db8::/32')!)).toBe(true);
    expect(set.covers(parseCidr('2001:db8::1')!)).toBe(true);
    expect(set.covers(parseCidr('2001:db8::2')!)).toBe(false);
    expect(set.size).toBe(2);
  });
});
