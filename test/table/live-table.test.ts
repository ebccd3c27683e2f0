// The live reader: /proc/net files read a megabyte at a time and parsed as they arrive must give
// exactly what parsing each whole file gives. Pointed at a directory laid out like /proc.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { type ScanOptions, scanCommand } from '../../src/cli/scan.js';
import { defaultProcRoot, liveTableFiles, readLiveTable } from '../../src/table/live-table.js';
import { ProcNetParser, parseProcNet } from '../../src/table/proc-net-parser.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tables', 'mixed');
const root = mkdtempSync(join(tmpdir(), 'floodgate-proc-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('ProcNetParser', () => {
  it('gives the same rows whatever the chunk boundaries, mid-line included', () => {
    const text = readFileSync(join(FIXTURE, 'proc-tcp6.txt'), 'latin1');
    const whole = parseProcNet(text, 'tcp');
    for (const size of [1, 7, 150, 4096]) {
      const parser = new ProcNetParser('tcp');
      for (let i = 0; i < text.length; i += size) parser.push(Buffer.from(text.slice(i, i + size), 'latin1'));
      const chunked = parser.end();
      expect(chunked.rows.toRows()).toEqual(whole.rows.toRows());
      expect(chunked.malformed).toEqual(whole.malformed);
    }
    expect(whole.rows.length).toBeGreaterThan(200);
  });

  it('numbers malformed lines across chunks as in the whole text', () => {
    const text = readFileSync(join(FIXTURE, 'proc-tcp.txt'), 'latin1').split('\n');
    text.splice(5, 0, '  12: NOT-A-ROW');
    const joined = text.join('\n');
    const parser = new ProcNetParser('tcp');
    for (let i = 0; i < joined.length; i += 33) parser.push(Buffer.from(joined.slice(i, i + 33), 'latin1'));
    expect(parser.end().malformed).toEqual([{ line: 6, text: '  12: NOT-A-ROW' }]);
  });
});

describe('readLiveTable', () => {
  it('reads tcp, tcp6, udp and udp6 under a /proc root and gives what the whole files give', async () => {
    mkdirSync(join(root, 'net'));
    for (const file of ['tcp', 'tcp6', 'udp', 'udp6'])
      copyFileSync(join(FIXTURE, `proc-${file}.txt`), join(root, 'net', file));
    const live = await readLiveTable('all', root);
    const expected = ['tcp', 'tcp6', 'udp', 'udp6'].flatMap((file) =>
      parseProcNet(
        readFileSync(join(FIXTURE, `proc-${file}.txt`), 'latin1'),
        file.startsWith('udp') ? 'udp' : 'tcp',
      ).rows.toRows(),
    );
    expect([...live.rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual(
      expected.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    expect(live.malformed).toEqual([]);
    // proto 'tcp' reads only the TCP tables
    expect((await readLiveTable('tcp', root)).rows.toRows().every((row) => row.proto === 'tcp')).toBe(true);
  });

  it('fills a table it is given again, as the daemon does each scan, with the same result', async () => {
    const first = await readLiveTable('all', root);
    const expected = first.rows.toRows();
    const again = await readLiveTable('all', root, first.rows);
    expect(again.rows).toBe(first.rows);
    expect(again.rows.toRows()).toEqual(expected);
  });

  it('treats missing IPv6 tables as empty (a kernel without IPv6)', async () => {
    const v4only = mkdtempSync(join(tmpdir(), 'floodgate-proc4-'));
    try {
      mkdirSync(join(v4only, 'net'));
      copyFileSync(join(FIXTURE, 'proc-tcp.txt'), join(v4only, 'net', 'tcp'));
      const live = await readLiveTable('all', v4only);
      expect(live.rows.length).toBe(
        parseProcNet(readFileSync(join(FIXTURE, 'proc-tcp.txt'), 'latin1'), 'tcp').rows.length,
      );
    } finally {
      rmSync(v4only, { recursive: true, force: true });
    }
  });
});

describe('scan --json of the live table', () => {
  /** What `scan --json` prints, live (no input) or of captures. */
  async function scanJson(options: Partial<ScanOptions>): Promise<{ total: number; source: unknown[] }> {
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out += String(chunk);
      return true;
    });
    try {
      await scanCommand({ by: 'ip', prefix4: 24, prefix6: 64, proto: 'all', top: 3, json: true, ...options });
    } finally {
      write.mockRestore();
    }
    return JSON.parse(out);
  }

  // "source" was the string "live" for a live scan and an array for --input: scripts needed two cases.
  it('gives its source in the shape of --input entries: input "live", format, rows read, and the files', async () => {
    const proc = mkdtempSync(join(tmpdir(), 'floodgate-proc-json-'));
    const saved = process.env.FLOODGATE_PROC_ROOT;
    try {
      mkdirSync(join(proc, 'net'));
      const captures: string[] = [];
      for (const file of ['tcp', 'tcp6', 'udp', 'udp6']) {
        captures.push(join(FIXTURE, `proc-${file}.txt`));
        copyFileSync(captures.at(-1)!, join(proc, 'net', file));
      }
      process.env.FLOODGATE_PROC_ROOT = proc;
      const captured = await scanJson({ input: captures });
      const rows = (captured.source as { rows: number }[]).reduce((sum, s) => sum + s.rows, 0);
      expect(rows).toBeGreaterThan(500);
      const live = await scanJson({});
      expect(live.total).toBe(captured.total);
      expect(live.source).toEqual([
        {
          input: 'live',
          format: 'proc',
          rows,
          files: [`${proc}/net/tcp`, `${proc}/net/tcp6`, `${proc}/net/udp`, `${proc}/net/udp6`],
        },
      ]);
      expect(Object.keys(live.source[0]!).slice(0, 3)).toEqual(Object.keys(captured.source[0]!));
      // --proto tcp reads, and names, the TCP tables only.
      const tcp = await scanJson({ proto: 'tcp' });
      expect(tcp.source).toEqual([
        expect.objectContaining({ input: 'live', files: [`${proc}/net/tcp`, `${proc}/net/tcp6`] }),
      ]);
      expect(liveTableFiles('udp', '/host/proc')).toEqual(['/host/proc/net/udp', '/host/proc/net/udp6']);
    } finally {
      if (saved === undefined) delete process.env.FLOODGATE_PROC_ROOT;
      else process.env.FLOODGATE_PROC_ROOT = saved;
      rmSync(proc, { recursive: true, force: true });
    }
  });
});

describe('defaultProcRoot', () => {
  it('is /proc unless FLOODGATE_PROC_ROOT names another directory', () => {
    expect(defaultProcRoot({})).toBe('/proc');
    expect(defaultProcRoot({ FLOODGATE_PROC_ROOT: '' })).toBe('/proc');
    expect(defaultProcRoot({ FLOODGATE_PROC_ROOT: '/host/proc' })).toBe('/host/proc');
  });
});
