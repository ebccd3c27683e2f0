// Captures made to break the parsers (red-team findings 17 and 18): a cut-off last line, rows named
// like Object.prototype's keys, lines a megabyte long, and text too big to be one string.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { scanCommand } from '../../src/cli/scan.js';
import { UsageError } from '../../src/errors.js';
import { parseNetstat } from '../../src/table/netstat-parser.js';
import { parseTable } from '../../src/table/parse-table.js';
import { parseProcNet } from '../../src/table/proc-net-parser.js';
import { readInput, textChunks } from '../../src/table/read-input.js';
import { parseSs } from '../../src/table/ss-parser.js';
import { fixtureText, rowKey } from './fixture-tables.js';

const dir = mkdtempSync(join(tmpdir(), 'floodgate-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const capture = (name: string, text: string): string => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};
const SS_HEADER = 'Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port';
const SS_ROW = 'tcp ESTAB 0 0 192.0.2.1:80 198.51.100.9:4444';
const NETSTAT_ROW = 'tcp        0      0 192.0.2.1:80            198.51.100.9:4444       ESTABLISHED';

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  return (error as Error).message;
}

describe('an ss capture cut off after the Netid of its last line (finding 18)', () => {
  it('reports the cut line as malformed instead of crashing', () => {
    expect(parseSs(`${SS_HEADER}\n${SS_ROW}\ntcp`).malformed).toEqual([{ line: 3, text: 'tcp' }]);
    expect(parseSs(`${SS_HEADER}\n${SS_ROW}\ntcp`).rows.length).toBe(1);
    expect(parseSs(`${SS_HEADER}\n${SS_ROW}\ntcp ESTAB`).malformed).toEqual([{ line: 3, text: 'tcp ESTAB' }]);
  });

  it('makes scan say the capture has no readable row, with exit 2, when it was the only row', async () => {
    const file = capture('cut.txt', `${SS_HEADER}\ntcp`);
    expect(await refusal(readInput(file))).toBe(
      `cannot read ${file} as \`ss -tan\` output: its only row is malformed (line 2: "tcp")`,
    );
  });
});

describe.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])(
  'a row that starts with %s (finding 18)',
  (name) => {
    it('is malformed in ss output, not a socket', () => {
      const parsed = parseSs(`${SS_HEADER}\n${SS_ROW}\n${name} ESTAB 0 0 192.0.2.1:80 198.51.100.7:4444\n`);
      expect(parsed.rows.toRows().map(rowKey)).toEqual(['tcp ESTABLISHED 80 198.51.100.9 4444']);
      expect(parsed.malformed.map((m) => m.line)).toEqual([3]);
    });

    it('is malformed in netstat output, not a socket', () => {
      const parsed = parseNetstat(
        `${NETSTAT_ROW}\n${name}        0      0 192.0.2.1:80            198.51.100.7:4444       ESTABLISHED\n`,
      );
      expect(parsed.rows.toRows().map(rowKey)).toEqual(['tcp ESTABLISHED 80 198.51.100.9 4444']);
      expect(parsed.malformed.map((m) => m.line)).toEqual([2]);
    });

    it('is no state either', () => {
      expect(parseSs(`${name} 0 0 192.0.2.1:80 198.51.100.7:4444\n`).rows.length).toBe(0);
      expect(parseNetstat(`tcp 0 0 192.0.2.1:80 198.51.100.7:4444 ${name}\n`).rows.length).toBe(0);
    });
  },
);

describe('a bad line is quoted to 80 characters at most (finding 17)', () => {
  const long = `tcp ${'x'.repeat(1_000_000)}`;

  it.each([
    ['netstat', parseNetstat(`${NETSTAT_ROW}\n${long}\n`)],
    ['ss', parseSs(`${SS_ROW}\n${long}\n`)],
    ['proc', parseProcNet(`${fixtureText('mixed', 'proc-tcp.txt')}   9: ${'y'.repeat(1_000_000)}\n`)],
  ])('by the %s parser, which keeps only its start and its length', (_format, parsed) => {
    expect(parsed.rows.length).toBeGreaterThan(0);
    expect(parsed.malformed).toHaveLength(1);
    expect(parsed.malformed[0]!.text).toHaveLength(80);
    expect(parsed.malformed[0]!.length).toBeGreaterThan(1_000_000);
  });

  it('in the message of a capture with no readable row', async () => {
    const file = capture('one-long-line.txt', `${SS_HEADER}\n${long}\n`);
    const message = await refusal(readInput(file));
    expect(message).toBe(
      `cannot read ${file} as \`ss -tan\` output: its only row is malformed (line 2: "tcp ${'x'.repeat(76)}"… (the first 80 of 1000004 characters))`,
    );
  });

  it('in the message of scan --strict', async () => {
    const file = capture('strict.txt', `${SS_HEADER}\n${SS_ROW}\n${long}\n`);
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const message = await refusal(
        scanCommand({ input: [file], strict: true, by: 'ip', prefix4: 24, prefix6: 64, proto: 'all', top: 10 }),
      );
      expect(message).toBe(
        `${file}:3: not a row of a ss table: "tcp ${'x'.repeat(76)}"… (the first 80 of 1000004 characters)`,
      );
    } finally {
      write.mockRestore();
    }
  });
});

describe('text captures are parsed a chunk at a time (finding 17: over 512 MiB they were one string too many)', () => {
  it('cuts text at newlines only, and keeps every byte of it', () => {
    const text = 'one\ntwo\nthree\n\nfour';
    for (const size of [1, 2, 4, 5, 9, 100]) {
      const chunks = [...textChunks(Buffer.from(text), size)];
      // A line longer than a chunk is cut to its start; here every line fits in 5 bytes.
      if (size >= 6) expect(chunks.join(''), `chunks of ${size}`).toBe(text);
      for (const chunk of chunks.slice(0, -1))
        expect(chunk.endsWith('\n'), `chunks of ${size}: ${JSON.stringify(chunks)}`).toBe(true);
    }
  });

  it('keeps only the start of a line longer than a chunk, and the lines after it', () => {
    const text = `a\n${'z'.repeat(5000)}\nb\n`;
    const chunks = [...textChunks(Buffer.from(text), 1000)];
    expect(
      chunks
        .join('')
        .split('\n')
        .map((line) => line.length),
    ).toEqual([1, 1000, 1, 0]);
  });

  it.each([
    ['netstat', 'netstat-antu.txt'],
    ['ss', 'ss-tanu.txt'],
  ] as const)(
    'reads a %s capture in small chunks exactly as whole, line numbers of bad lines included',
    (format, file) => {
      const lines = fixtureText('mixed', file).split('\n');
      lines.splice(5, 0, 'garbage in the middle');
      lines.splice(lines.length - 3, 0, 'tcp banana');
      const text = lines.join('\n');
      const whole = parseTable(text, format);
      for (const size of [200, 1000, 4096]) {
        const chunked = parseTable(textChunks(Buffer.from(text, 'latin1'), size), format);
        expect(chunked.rows.toRows(), `chunks of ${size}`).toEqual(whole.rows.toRows());
        expect(chunked.malformed, `chunks of ${size}`).toEqual(whole.malformed);
      }
      expect(whole.malformed.map((m) => m.line)).toEqual([6, lines.length - 3]);
    },
  );
});
