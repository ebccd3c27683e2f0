// A damaged table (garbage pasted in, a row cut short, a host name instead of an address) is read
// around the damage: the good rows still count, the bad lines are reported with their line numbers.
import { describe, expect, it } from 'vitest';
import { parseNetstat } from '../../src/table/netstat-parser.js';
import type { ParsedTable } from '../../src/table/parse-result.js';
import { type TableFormat, detectFormat, parseTable } from '../../src/table/parse-table.js';
import { parseProcNet } from '../../src/table/proc-net-parser.js';
import { parseSs } from '../../src/table/ss-parser.js';
import { fixtureText, rowKey, summarize } from './fixture-tables.js';

/** Inserts `lines` so that each lands on the given 1-based line number of the result. */
function insertAt(text: string, inserts: readonly (readonly [number, string])[]): string {
  const lines = text.split('\n');
  for (const [lineNo, line] of [...inserts].sort((a, b) => a[0] - b[0])) lines.splice(lineNo - 1, 0, line);
  return lines.join('\n');
}

const sortedKeys = (table: ParsedTable) => table.rows.toRows().map(rowKey).sort();

describe.each([
  ['proc', 'proc-tcp.txt', ['garbage pasted from a chat window', '   7: not hex at all', '\u0000\u0001binary']],
  ['netstat', 'netstat-ant.txt', ['garbage pasted from a chat window', 'tcp banana', 'udp6 x y z']],
  ['ss', 'ss-tan.txt', ['garbage pasted from a chat window', 'ESTAB nothing', 'SYN-RECV 0 0 192.0.2.1:443']],
] as const)('a %s table with garbage lines inserted', (format, file, garbage) => {
  const original = fixtureText('mixed', file);
  const clean = parseTable(original, format);
  const inserts = [
    [3, garbage[0]],
    [40, garbage[1]],
    [41, garbage[2]],
    [original.split('\n').length, garbage[0]],
  ] as const;
  const damaged = insertAt(original, inserts);

  it('is still recognised as its format', () => {
    expect(detectFormat(damaged)).toBe(format);
  });

  it('reads every good row exactly as without the garbage', () => {
    const parsed = parseTable(damaged, format);
    expect(parsed.rows.length).toBe(clean.rows.length);
    expect(sortedKeys(parsed)).toEqual(sortedKeys(clean));
    expect(summarize(parsed.rows.toRows())).toEqual(summarize(clean.rows.toRows()));
  });

  it('reports each garbage line with its own line number and text', () => {
    expect(clean.malformed).toEqual([]);
    expect(parseTable(damaged, format).malformed).toEqual(inserts.map(([line, text]) => ({ line, text })));
  });
});

describe('/proc/net/tcp rows that cannot be read', () => {
  const header = fixtureText('mixed', 'proc-tcp.txt').split('\n')[0]!;
  const good = '   2: 010200C0:01BB 4D6433C6:64F7 01 00000000:00000000 00:00000000 00000000     0        0 42599 1';
  const table = (...rows: string[]) => parseProcNet([header, good, ...rows, good].join('\n'));

  it.each([
    ['cut short inside the remote address', '   3: 010200C0:01BB 4D6433'],
    ['cut short right after the remote port', '   3: 010200C0:01BB 4D6433C6:64F7'],
    ['cut short inside the state', '   3: 010200C0:01BB 4D6433C6:64F7 0'],
    ['with a non-hex remote address', '   3: 010200C0:01BB 4D6433ZZ:64F7 01 00000000:00000000'],
    ['with a non-hex remote port', '   3: 010200C0:01BB 4D6433C6:64FG 01 00000000:00000000'],
    ['with a non-hex local port', '   3: 010200C0:01-B 4D6433C6:64F7 01 00000000:00000000'],
    ['with a state the kernel does not have (0x0D)', '   3: 010200C0:01BB 4D6433C6:64F7 0D 00000000:00000000'],
    ['without its slot number', '010200C0:01BB 4D6433C6:64F7 01 00000000:00000000'],
    ['with an address of the wrong width', '   3: 010200C0AB:01BB 4D6433C6AB:64F7 01 00000000:00000000'],
  ])('skips a row %s and names its line', (_what, bad) => {
    const parsed = table(bad);
    expect(parsed.malformed).toEqual([{ line: 3, text: bad }]);
    expect(parsed.rows.toRows().map(rowKey)).toEqual([
      'tcp ESTABLISHED 443 198.51.100.77 25847',
      'tcp ESTABLISHED 443 198.51.100.77 25847',
    ]);
  });

  it('reads a Windows-style CRLF capture the same as LF', () => {
    const lf = fixtureText('quiet', 'proc-tcp.txt');
    const crlf = parseProcNet(lf.replace(/\n/g, '\r\n'));
    expect(crlf.malformed).toEqual([]);
    expect(crlf.rows.toRows()).toEqual(parseProcNet(lf).rows.toRows());
  });
});

describe('netstat rows that cannot be read', () => {
  const head =
    'Active Internet connections (servers and established)\nProto Recv-Q Send-Q Local Address           Foreign Address         State      ';
  const good = 'tcp        0      0 192.0.2.1:443           198.51.100.9:4444       ESTABLISHED';
  const table = (bad: string) => parseNetstat([head, good, bad, good].join('\n'));

  it.each([
    [
      'a host name from netstat without -n',
      'tcp        0      0 192.0.2.1:443           client.example.com:https ESTABLISHED',
    ],
    [
      'a service name instead of a port',
      'tcp        0      0 192.0.2.1:https         198.51.100.9:4444       ESTABLISHED',
    ],
    ['a local host name', 'tcp        0      0 localhost:443           198.51.100.9:4444       ESTABLISHED'],
    ['a port above 65535', 'tcp        0      0 192.0.2.1:443           198.51.100.9:70000      ESTABLISHED'],
    ['an octet above 255', 'tcp        0      0 192.0.2.1:443           256.51.100.9:4444       ESTABLISHED'],
    ['a zero-padded octet', 'tcp        0      0 192.0.2.1:443           198.51.100.09:4444      ESTABLISHED'],
    ['an unknown state', 'tcp        0      0 192.0.2.1:443           198.51.100.9:4444       WHATEVER'],
    ['no state at all', 'tcp        0      0 192.0.2.1:443           198.51.100.9:4444'],
    ['the foreign address cut off', 'tcp        0      0 192.0.2.1:443'],
    [
      'an IPv6 address truncated to the column width',
      'tcp6       0      0 2001:db8::1:443         2001:db8:1234:5678:9abc:d ESTABLISHED',
    ],
    ['an unknown protocol', 'sctp       0      0 192.0.2.1:443           198.51.100.9:4444       ESTABLISHED'],
  ])('skips a row with %s and names its line', (_what, bad) => {
    const parsed = table(bad);
    // A line is kept (and quoted) up to 80 characters, with its length when it is longer.
    expect(parsed.malformed).toEqual([
      bad.length <= 80 ? { line: 4, text: bad } : { line: 4, text: bad.slice(0, 80), length: bad.length },
    ]);
    expect(parsed.rows.toRows().map(rowKey)).toEqual([
      'tcp ESTABLISHED 443 198.51.100.9 4444',
      'tcp ESTABLISHED 443 198.51.100.9 4444',
    ]);
  });

  it('skips the UNIX-socket section of netstat -an without calling it malformed', () => {
    const unix = [
      'Active UNIX domain sockets (servers and established)',
      'Proto RefCnt Flags       Type       State         I-Node   Path',
      'unix  2      [ ACC ]     STREAM     LISTENING     41771    /run/floodgate.sock',
      'tcp        0      0 this looks like a row but is in the unix section',
    ];
    const parsed = parseNetstat([head, good, ...unix].join('\n'));
    expect(parsed.malformed).toEqual([]);
    expect(parsed.rows.length).toBe(1);
  });
});

describe('ss rows that cannot be read', () => {
  const head = 'State     Recv-Q Send-Q      Local Address:Port            Peer Address:Port Process';
  const good = 'ESTAB     0      0               192.0.2.1:443            198.51.100.77:25847';
  const table = (bad: string) => parseSs([head, good, bad, good].join('\n'));

  it.each([
    ['a port above 65535', 'ESTAB     0      0               192.0.2.1:443            198.51.100.77:99999'],
    [
      'host and service names from ss without -n',
      'ESTAB     0      0               192.0.2.1:https            host.example:https',
    ],
    ['the peer cut off', 'ESTAB     0      0               192.0.2.1:443'],
    ['an unknown state', 'BOGUS     0      0               192.0.2.1:443            198.51.100.77:1234'],
  ])('skips a row with %s and names its line', (_what, bad) => {
    const parsed = table(bad);
    expect(parsed.malformed).toEqual([{ line: 3, text: bad }]);
    expect(parsed.rows.toRows().map(rowKey)).toEqual([
      'tcp ESTABLISHED 443 198.51.100.77 25847',
      'tcp ESTABLISHED 443 198.51.100.77 25847',
    ]);
  });

  it('reads interface-scoped link-local peers without their %zone', () => {
    const parsed = table('ESTAB     0      0      [fe80::1%eth0]:80        [fe80::2%eth0]:1234');
    expect(parsed.malformed).toEqual([]);
    expect(parsed.rows.toRows().map(rowKey)).toContain('tcp ESTABLISHED 80 fe80::2 1234');
  });
});

describe('text that is no connection table', () => {
  it.each([
    ['empty input', ''],
    ['prose', 'hello\nworld\n'],
    ['the kernel counters file', fixtureText('cookies', 'netstat-counters-after.txt')],
    ['expected.json', fixtureText('mixed', 'expected.json')],
  ])('is not taken for any format: %s', (_what, text) => {
    expect(detectFormat(text)).toBeNull();
  });

  it.each(['proc', 'netstat', 'ss'] as TableFormat[])(
    'parsed as %s anyway, it yields no rows and no crash',
    (format) => {
      const parsed = parseTable('hello\nworld', format);
      expect(parsed.rows.toRows()).toEqual([]);
      expect(parsed.malformed.map((m) => m.line)).toEqual([1, 2]);
    },
  );
});

// ss prints no State column when asked for one state (`ss -tan state syn-recv`): the rows start with
// the queues. Only the operator can say which state they are in (scan's one --state).
describe('ss output without its State column', () => {
  /** A full capture cut down to the rows of one state and printed as ss prints them then. */
  const stateless = (text: string, ssState: string, netid: boolean): string =>
    text
      .split('\n')
      .filter((line, i) => i === 0 || line.split(/\s+/)[netid ? 1 : 0] === ssState)
      .map((line) => (netid ? line.replace(/^(\S+\s+)\S+\s+/, '$1') : line.replace(/^\S+\s+/, '')))
      .join('\n');

  it.each([
    ['mixed', 'ss-tan.txt', 'SYN-RECV', 'SYN_RECV', false],
    ['cookies', 'ss-tanu.txt', 'ESTAB', 'ESTABLISHED', true],
  ] as const)(
    '%s/%s cut to %s: read with the state given, the same rows as the full capture has',
    (scenario, file, ssState, state, netid) => {
      const full = fixtureText(scenario, file);
      const cut = stateless(full, ssState, netid);
      expect(cut.split('\n')[0]).toMatch(/^(?:Netid\s+)?Recv-Q\s+Send-Q/);
      expect(detectFormat(cut)).toBe('ss');
      const read = parseTable(cut, 'ss', { ssState: state });
      expect(read.malformed).toEqual([]);
      expect(read.noStateColumn).toBeUndefined();
      const expected = parseSs(full)
        .rows.toRows()
        .filter((row) => row.state === state);
      expect(read.rows.length).toBeGreaterThan(10);
      expect(read.rows.toRows().map(rowKey).sort()).toEqual(expected.map(rowKey).sort());
    },
  );

  it('is not guessed: without a state its rows are not read, and the table says why', () => {
    const cut = stateless(fixtureText('mixed', 'ss-tan.txt'), 'SYN-RECV', false);
    const read = parseSs(cut);
    expect(read.rows.length).toBe(0);
    expect(read.noStateColumn).toBe(true);
  });
});
