// Ban targets typed by people: an address or a network, nothing that could reach a shell, and no
// accidental ban of a huge network.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { formatCidr } from '../../src/net/ip.js';
import { MAX_TARGET_LINE, hostBitsNote, parseTarget, parseTargetList } from '../../src/net/target.js';

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

  // Quoted up to the first character that cannot be in a target: enough to find the mistake, and a
  // file named by mistake shows no more than that of its first line.
  it.each([
    ['999.1.1.1', '"999.1.1.1"'],
    ['1.2.3.4; rm -rf /', '"1.2.3.4;"…'],
    ['$(reboot)', '"$"…'],
    ['`reboot`', '"`"…'],
    ['', '""'],
    ['   ', '""'],
    [' -j ACCEPT', '"-"…'],
    ['-s 1.2.3.4', '"-"…'],
    ['198.51.100.7 198.51.100.8', '"198.51.100.7 "…'],
    ['198.051.100.7', '"198.051.100.7"'],
    ['fe80::1%eth0', '"fe80::1%"…'],
    ['example.com', '"ex"…'],
    ['\u001b[31m', '"\\u001b"…'],
  ])('refuses %j as no address, quoting it as %s and showing what is expected', (text, quoted) => {
    const error = refusal(() => parseTarget(text, true));
    expect(error.message).toBe(
      `${quoted} is not an IP address or network (expected for example 198.51.100.7, 2001:db8::7 or 203.0.113.0/24)`,
    );
    expect(error.exitCode).toBe(2);
  });

  it('quotes at most 80 characters of a long bad target', () => {
    const error = refusal(() => parseTarget(`198.51.100.${'7'.repeat(1_000_000)}`));
    expect(error.message.length).toBeLessThan(250);
    expect(error.message).toContain('(1000011 characters)');
  });

  it('refuses a network wider than /16 (IPv6 /32) without force, saying why and how', () => {
    expect(refusal(() => parseTarget('10.0.0.0/8')).message).toBe(
      '10.0.0.0/8 is wider than /16: refused without --force',
    );
    expect(refusal(() => parseTarget('2001:db8::/31')).message).toBe(
      '2001:db8::/31 is wider than /32: refused without --force',
    );
  });

  // The network is named only when the text is not it already, not repeated beside it.
  it.each([
    ['10.1.2.3/15', '10.1.2.3/15 is the network 10.0.0.0/15, wider than /16'],
    ['2001:DB8::/31', '2001:db8::/31 is wider than /32'],
    ['2001:db8::1/20', '2001:db8::1/20 is the network 2001::/20, wider than /32'],
    ['::ffff:10.0.0.0/104', '::ffff:10.0.0.0/104 is the network 10.0.0.0/8, wider than /16'],
  ])('a wide %s is refused as: %s', (text, said) => {
    expect(refusal(() => parseTarget(text)).message).toBe(`${said}: refused without --force`);
  });

  it('accepts a network wider than /16 with force', () => {
    expect(formatCidr(parseTarget('10.0.0.0/8', true))).toBe('10.0.0.0/8');
    expect(formatCidr(parseTarget('2001:db8::/20', true))).toBe('2001::/20');
  });

  it.each(['1.2.3.4/0', '0.0.0.0/0', '::/0', '::ffff:1.2.3.4/96'])(
    'refuses %s, which covers every address, even with force',
    (text) => {
      for (const force of [false, true]) {
        const error = refusal(() => parseTarget(text, force));
        expect(error.message).toContain('covers every address');
        expect(error.message).toContain('not even --force');
      }
    },
  );
});

describe('hostBitsNote', () => {
  it.each([
    ['203.0.113.10/24', '203.0.113.10/24 is the network 203.0.113.0/24'],
    [' 203.0.113.10/24\t', '203.0.113.10/24 is the network 203.0.113.0/24'],
    ['2001:db8::7/64', '2001:db8::7/64 is the network 2001:db8::/64'],
    ['::ffff:198.51.100.7/120', '::ffff:198.51.100.7/120 is the network 198.51.100.0/24'],
  ])('says which network %j stands for', (text, note) => {
    expect(hostBitsNote(text, parseTarget(text))).toBe(note);
  });

  it.each([
    '203.0.113.0/24',
    '203.0.113.10',
    '203.0.113.10/32',
    '2001:DB8::/64',
    '::ffff:198.51.100.0/120',
    '2001:db8::7',
  ])('has nothing to say of %j, which names its network or address exactly', (text) => {
    expect(hostBitsNote(text, parseTarget(text))).toBeNull();
  });
});

describe('parseTargetList', () => {
  it('reads one target per line, skipping comments and blank lines', () => {
    const text =
      '# bans for the weekend\n198.51.100.7\n\n   \n2001:db8::7   # the IPv6 one\r\n203.0.113.0/24\n#198.51.100.8\n';
    expect(parseTargetList(text, 'bans.txt').map(formatCidr)).toEqual([
      '198.51.100.7',
      '2001:db8::7',
      '203.0.113.0/24',
    ]);
  });

  it('tells of each target written with host bits: its index in the answer, and its file and line', () => {
    const text = '# feed\n198.51.100.7\n203.0.113.10/24\n\n203.0.113.0/24\n2001:db8::7/64 # v6\n';
    const notes: [number, string][] = [];
    const targets = parseTargetList(text, 'feed.txt', false, (index, note) => notes.push([index, note]));
    expect(targets.map(formatCidr)).toEqual(['198.51.100.7', '203.0.113.0/24', '203.0.113.0/24', '2001:db8::/64']);
    expect(notes).toEqual([
      [1, 'feed.txt:3: 203.0.113.10/24 is the network 203.0.113.0/24'],
      [3, 'feed.txt:6: 2001:db8::7/64 is the network 2001:db8::/64'],
    ]);
  });

  it('names the file and line of a bad target', () => {
    const text = '# header\n198.51.100.7\n\n$(reboot)\n198.51.100.8\n';
    const error = refusal(() => parseTargetList(text, 'bans.txt'));
    expect(error.message).toBe(
      'bans.txt:4: "$"… is not an IP address or network (expected for example 198.51.100.7, 2001:db8::7 or 203.0.113.0/24)',
    );
  });

  it('applies force to every line: a wide network fails without it and passes with it', () => {
    const text = '198.51.100.7\n10.0.0.0/8\n';
    expect(refusal(() => parseTargetList(text, 'wide.txt')).message).toBe(
      'wide.txt:2: 10.0.0.0/8 is wider than /16: refused without --force',
    );
    expect(parseTargetList(text, 'wide.txt', true).map(formatCidr)).toEqual(['198.51.100.7', '10.0.0.0/8']);
  });

  it('shows a line of a file named by mistake only up to its first character that cannot be in a target', () => {
    const error = refusal(() => parseTargetList('root:$y$j9T$secret-hash:19000:0:99999:7:::\n', '/etc/shadow'));
    expect(error.message).toBe(
      '/etc/shadow:1: "r"… is not an IP address or network (expected for example 198.51.100.7, 2001:db8::7 or 203.0.113.0/24)',
    );
  });

  it('refuses a line longer than MAX_TARGET_LINE without quoting it', () => {
    const text = `198.51.100.7\n${'1'.repeat(MAX_TARGET_LINE + 1)}\n`;
    expect(refusal(() => parseTargetList(text, 'long.txt')).message).toBe(
      `long.txt:2: a line of ${MAX_TARGET_LINE + 1} characters; expected one target and an optional # comment, at most ${MAX_TARGET_LINE} characters (is this a list of addresses?)`,
    );
    expect(parseTargetList(`198.51.100.7 # ${'x'.repeat(MAX_TARGET_LINE - 20)}\n`, 'ok.txt').map(formatCidr)).toEqual([
      '198.51.100.7',
    ]);
  });

  it('reads an empty or comment-only file as no targets', () => {
    expect(parseTargetList('', 'empty.txt')).toEqual([]);
    expect(parseTargetList('# nothing yet\n\n', 'empty.txt')).toEqual([]);
  });
});
