// Captures named by `scan --input`: an empty one is a table of no sockets; one in which not a single
// row can be read is refused with the file named, rather than shown as a quiet host.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { scanCommand } from '../../src/cli/scan.js';
import { UsageError } from '../../src/errors.js';
import { readInput, readStream } from '../../src/table/read-input.js';
import { fixtureText } from './fixture-tables.js';

const dir = mkdtempSync(join(tmpdir(), 'floodgate-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const capture = (name: string, text: string | Buffer): string => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};

/** What `scan --json` prints for these options. */
async function scanJson(input: string[], extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  let out = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    await scanCommand({ input, by: 'ip', prefix4: 24, prefix6: 64, proto: 'all', top: 10, json: true, ...extra });
  } finally {
    write.mockRestore();
  }
  return JSON.parse(out) as Record<string, unknown>;
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  return (error as Error).message;
}

describe('an empty capture', () => {
  it.each([
    ['an empty file', ''],
    ['blank lines only', '\n\n  \r\n\t\n'],
  ])('%s is 0 sockets, not an error', async (_what, text) => {
    const file = capture('empty.txt', text);
    const table = await readInput(file);
    expect(table).toMatchObject({ format: 'empty', malformed: [] });
    expect(table.rows.length).toBe(0);
    expect(await scanJson([file])).toMatchObject({
      total: 0,
      states: {},
      groups: [],
      malformed: 0,
      source: [{ input: file, format: 'empty', rows: 0 }],
    });
  });

  it('reads `ss … state X` output, which has no State column, with the one --state that says X', async () => {
    const text =
      'Recv-Q Send-Q Local Address:Port  Peer Address:Port Process\n' +
      '0      0          192.0.2.1:443    203.0.113.7:21015\n' +
      '0      0          192.0.2.1:443    203.0.113.7:21016\n' +
      '0      0          192.0.2.1:443    203.0.113.9:40000\n';
    const file = capture('ss-state-syn-recv.txt', text);
    const message = await refusal(readInput(file));
    expect(message).toBe(
      `cannot read ${file} as \`ss -tan\` output: it has no State column (ss leaves it out when asked for ` +
        'one state, as `ss -tan state syn-recv` does); say which state its rows are in with one --state, ' +
        'for example --state SYN_RECV',
    );
    expect(await refusal(scanJson([file], { state: ['SYN_RECV', 'ESTABLISHED'] }))).toBe(message);
    expect(await scanJson([file], { state: ['SYN_RECV'] })).toMatchObject({
      total: 3,
      states: { SYN_RECV: 3 },
      groups: [
        { key: '203.0.113.7', count: 2 },
        { key: '203.0.113.9', count: 1 },
      ],
      malformed: 0,
      source: [{ input: file, format: 'ss', rows: 3 }],
    });
  });

  it('keeps the format it was told, and adds nothing beside another capture', async () => {
    const empty = capture('empty-ss.txt', '');
    expect((await readInput(empty, 'ss')).format).toBe('ss');
    const full = capture('mixed-ss.txt', fixtureText('mixed', 'ss-tan.txt'));
    const alone = await scanJson([full]);
    expect(await scanJson([full, empty])).toMatchObject({
      total: alone.total,
      states: alone.states,
      groups: alone.groups,
    });
  });
});

describe('a capture in which no row can be read', () => {
  it.each([
    [
      'netstat',
      'Active Internet connections (servers and established)\nProto Recv-Q Send-Q Local Address Foreign Address State\ntcp banana\ntcp 0 0 nowhere elsewhere ESTABLISHED\ntcp6 x y z\n',
      'all 3 of its rows are malformed (line 3: "tcp banana")',
    ],
    [
      'ss',
      'State Recv-Q Send-Q Local Address:Port Peer Address:Port\nESTAB nothing\n',
      'its only row is malformed (line 2: "ESTAB nothing")',
    ],
    [
      'proc',
      '  sl  local_address rem_address   st tx_queue rx_queue\n   0: not hex at all\n   1: 010200C0:01BB\n',
      'all 2 of its rows are malformed (line 2: "   0: not hex at all")',
    ],
  ])('as %s is refused, naming the file, what it was read as and the first bad line', async (format, text, detail) => {
    const file = capture(`bad-${format}.txt`, text);
    const message = await refusal(readInput(file));
    expect(message).toContain(file);
    expect(message).toContain(detail);
    expect(await refusal(scanJson([file]))).toBe(message);
  });

  it('is refused when read with the wrong --format, which says so', async () => {
    const file = capture('netstat-as-ss.txt', fixtureText('mixed', 'netstat-ant.txt'));
    expect(await refusal(readInput(file, 'ss'))).toMatch(
      /^cannot read .*netstat-as-ss\.txt as `ss -tan` output: all \d+ of its rows are malformed \(line 1: "Active Internet/,
    );
  });

  it('is not refused when some rows are good: those are counted and the bad lines reported', async () => {
    const file = capture('some-bad.txt', `${fixtureText('mixed', 'ss-tan.txt')}ESTAB nothing\n`);
    const table = await readInput(file);
    expect(table.rows.length).toBeGreaterThan(0);
    expect(table.malformed).toHaveLength(1);
  });
});

describe('standard input', () => {
  it('is read whole up to the limit, and refused past it with what to do instead', async () => {
    const chunks = () => Readable.from([Buffer.alloc(600, 'a'), Buffer.alloc(600, 'b')]);
    expect((await readStream(chunks(), 1200)).length).toBe(1200);
    expect(await refusal(readStream(chunks(), 1000))).toBe(
      'cannot read standard input: it holds more than 1000 bytes; save the capture to a file and name the file with --input',
    );
    expect(await refusal(readStream(Readable.from([Buffer.alloc(3 << 20)]), 2 << 20))).toMatch(/more than 2 MiB;/);
  });
});

describe('a gzip capture', () => {
  it.each(['ss-tan.txt', 'netstat-ant.txt', 'proc-tcp.txt'])('%s.gz reads as the plain file does', async (file) => {
    const text = fixtureText('mixed', file);
    const plain = await readInput(capture(file, text));
    const gz = await readInput(capture(`${file}.gz`, gzipSync(text)));
    expect(gz.format).toBe(plain.format);
    expect(gz.rows.toRows()).toEqual(plain.rows.toRows());
  });

  it('that is cut short is refused, naming the file', async () => {
    const file = capture('cut.gz', gzipSync(fixtureText('mixed', 'ss-tan.txt')).subarray(0, 100));
    expect(await refusal(readInput(file))).toMatch(
      /^cannot read .*cut\.gz: it starts like gzip, but does not decompress: /,
    );
  });
});

describe('a /proc/net/netstat capture', () => {
  const before = fixtureText('cookies', 'netstat-counters-before.txt');
  const after = fixtureText('cookies', 'netstat-counters-after.txt');

  it('is recognised by its TcpExt: lines and gives the kernel flood counters, gzip or not, whatever --format says', async () => {
    for (const file of [capture('netstat', after), capture('netstat.gz', gzipSync(after))]) {
      for (const forced of [undefined, 'ss'] as const) {
        const table = await readInput(file, forced);
        expect(table).toMatchObject({
          format: 'counters',
          malformed: [],
          counters: { SyncookiesSent: 135, TCPReqQFullDoCookies: 135, ListenDrops: 0 },
        });
        expect(table.rows.length).toBe(0);
      }
    }
  });

  it('is shown by scan like the live counters, with the change from the first capture to the last', async () => {
    const one = await scanJson([capture('after', after)]);
    expect(one).toMatchObject({ total: 0, counters: { SyncookiesSent: 135, TCPReqQFullDoCookies: 135 } });
    expect(one).not.toHaveProperty('countersChange');
    // With a table beside them: the sockets from the table, the counters from the captures.
    const both = await scanJson([
      capture('before', before),
      capture('after2', after),
      capture('ss.txt', fixtureText('cookies', 'ss-tan.txt')),
    ]);
    expect(both).toMatchObject({
      total: 86,
      states: { SYN_RECV: 65 },
      counters: { SyncookiesSent: 135 },
      countersChange: { SyncookiesSent: 135, SyncookiesRecv: 0 },
    });

    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out += String(chunk);
      return true;
    });
    try {
      await scanCommand({
        input: [capture('after3', after)],
        by: 'ip',
        prefix4: 24,
        prefix6: 64,
        proto: 'all',
        top: 10,
      });
    } finally {
      write.mockRestore();
    }
    expect(out).toMatch(
      /^kernel flood counters in .*after3 \(\/proc\/net\/netstat\)\nKERNEL FLOOD COUNTER {4}SINCE BOOT\nSyncookiesSent {17}135\n/,
    );
    expect(out).not.toContain('sockets matched');
  });

  it('is refused when its TcpExt: name line has no line of numbers after it (a capture cut short)', async () => {
    const file = capture('cut-netstat', after.split('\n')[0]!);
    expect(await refusal(readInput(file))).toMatch(
      /^cannot read .*cut-netstat as a \/proc\/net\/netstat capture: its TcpExt: name line \(line 1\) is not followed by a line of numbers, got ""$/,
    );
  });
});

describe('a large /proc/net capture, read a megabyte at a time', () => {
  // 2.7 MB of rows: lines cross the chunk boundaries, and a malformed one and a blank one sit in between.
  const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
  const lines = [header];
  for (let i = 0; i < 24_000; i++) {
    const remote = ((0x4200 + (i % 4000)) >>> 0).toString(16).toUpperCase().padStart(4, '0');
    lines.push(
      `${String(i).padStart(4)}: 0100007F:0050 ${remote}33C6:${(1024 + i).toString(16).toUpperCase().padStart(4, '0')} ${i % 3 === 0 ? '03' : '01'} 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000`,
    );
    if (i === 9_000) lines.push('   x: not a row', '');
  }
  const text = `${lines.join('\n')}\n`;

  it('gives exactly what the whole-file parse gives, line numbers of malformed lines included', async () => {
    expect(text.length).toBeGreaterThan(2 << 20);
    const plain = await readInput(capture('large.txt', text));
    const gzipped = await readInput(capture('large.txt.gz', gzipSync(text))); // read whole, then gunzipped
    expect(plain.format).toBe('proc');
    expect(plain.rows.length).toBe(24_000);
    expect(plain.malformed).toEqual([{ line: 9_003, text: '   x: not a row' }]);
    expect(plain.rows.toRows()).toEqual(gzipped.rows.toRows());
    expect(plain.malformed).toEqual(gzipped.malformed);
  });

  it('read for some states keeps their rows only, and scan counts them as from the whole table', async () => {
    const file = capture('large-states.txt', text);
    const synRecv = await readInput(file, undefined, { states: new Set(['SYN_RECV']) });
    expect([synRecv.rows.length, synRecv.skipped, synRecv.malformed.length]).toEqual([8_000, 16_000, 1]);
    const filtered = await scanJson([file], { state: ['SYN_RECV'], by: 'net' });
    expect(filtered).toMatchObject({
      total: 8_000,
      states: { SYN_RECV: 8_000 },
      malformed: 1,
      source: [{ input: file, format: 'proc', rows: 24_000 }],
    });
    // A capture whose rows are all of other states is read, not refused as unreadable.
    const none = await scanJson([capture('no-listen.txt', text)], { state: ['LISTEN'] });
    expect(none).toMatchObject({ total: 0, states: {}, source: [{ rows: 24_000 }] });
  });

  it('still refuses a large capture none of whose rows can be read, naming the file', async () => {
    const file = capture('bad.txt', `${header}\n${'   0: 0100007F:0050 zz\n'.repeat(60_000)}`);
    await expect(readInput(file, 'proc')).rejects.toThrow(
      /bad\.txt as \/proc\/net\/tcp contents: all 60000 of its rows are malformed/,
    );
  });
});
