// Ban targets typed by people: an address or a network, nothing that could reach a shell, and no
// accidental ban of a huge network.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { formatCidr } from '../../src/net/ip.js';
import { parseTarget, parseTargetList } from '../../src/net/target.js';

const refusal = (fn: () => unknown): UsageError => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }
  throw new Error('expected a refusal');
};

describe('parseTarget', () => {
  it.each([
    ['198.51.100.7', '198.51.100.7'],
    ['  198.51.100.7\t', '198.51.100.7'],
    ['2001:DB8::7', '2001:db8::7'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['203.0.113.9/24', '203.0.113.0/24'],
    ['198.51.0.0/16', '198.51.0.0/16'],
    ['2001:db8::/32', '2001:db8::/32'],
  ])('accepts %s as %s', (text, target) => {
    expect(formatCidr(parseTarget(text))).toBe(target);
  });

  it.each([
    ['999.1.1.1'],
    ['1.2.3.4; rm -rf /'],
    ['$(reboot)'],
    ['`reboot`'],
    [''],
    ['   '],
    [' -j ACCEPT'],
    ['-s 1.2.3.4'],
    ['198.51.100.7 198.51.100.8'],
    ['198.051.100.7'],
    ['fe80::1%eth0'],
    ['example.com'],
  ])('refuses %j as no address, quoting it and showing what is expected', (text) => {
    const error = refusal(() => parseTarget(text, true));
    expect(error.message).toBe(`${JSON.stringify(text)} is not an IP address or network (expected for example 198.51.100.7, 2001:db8::7 or 203.0.113.0/24)`);
    expect(error.exitCode).toBe(2);
  });

  it('refuses a network wider than /16 (IPv6 /32) without force, saying why and how', () => {
    expect(refusal(() => parseTarget('10.0.0.0/8')).message).toBe('10.0.0.0/8 is wider than /16 (10.0.0.0/8): refused without --force');
    expect(refusal(() => parseTarget('10.1.2.3/15')).message).toBe('10.1.2.3/15 is wider than /16 (10.0.0.0/15): refused without --force');
    expect(refusal(() => parseTarget('2001:db8::/31')).message).toBe('2001:db8::/31 is wider than /32 (2001:db8::/31): refused without --force');
  });

  it('accepts a network wider than /16 with force', () => {
    expect(formatCidr(parseTarget('10.0.0.0/8', true))).toBe('10.0.0.0/8');
    expect(formatCidr(parseTarget('2001:db8::/20', true))).toBe('2001::/20');
  });

  it.each(['1.2.3.4/0', '0.0.0.0/0', '::/0', '::ffff:1.2.3.4/96'])('refuses %s, which covers every address, even with force', (text) => {
    for (const force of [false, true]) {
      const error = refusal(() => parseTarget(text, force));
      expect(error.message).toContain('covers every address');
      expect(error.message).toContain('not even --force');
    }
  });
});

describe('parseTargetList', () => {
  it('reads one target per line, skipping comments and blank lines', () => {
    const text = '# bans for the weekend\n198.51.100.7\n\n   \n2001:db8::7   # the IPv6 one\r\n203.0.113.0/24\n#198.51.100.8\n';
    expect(parseTargetList(text, 'bans.txt').map(formatCidr)).toEqual(['198.51.100.7', '2001:db8::7', '203.0.113.0/24']);
  });

  it('names the file and line of a bad target', () => {
    const text = '# header\n198.51.100.7\n\n$(reboot)\n198.51.100.8\n';
    const error = refusal(() => parseTargetList(text, 'bans.txt'));
    expect(error.message).toBe('bans.txt:4: "$(reboot)" is not an IP address or network (expected for example 198.51.100.7, 2001:db8::7 or 203.0.113.0/24)');
  });

  it('applies force to every line: a wide network fails without it and passes with it', () => {
    const text = '198.51.100.7\n10.0.0.0/8\n';
    expect(refusal(() => parseTargetList(text, 'wide.txt')).message).toBe('wide.txt:2: 10.0.0.0/8 is wider than /16 (10.0.0.0/8): refused without --force');
    expect(parseTargetList(text, 'wide.txt', true).map(formatCidr)).toEqual(['198.51.100.7', '10.0.0.0/8']);
  });

  it('reads an empty or comment-only file as no targets', () => {
    expect(parseTargetList('', 'empty.txt')).toEqual([]);
    expect(parseTargetList('# nothing yet\n\n', 'empty.txt')).toEqual([]);
  });
});
