// The "top N" of a scan: biggest count first, ties in a stable order, and never more than asked for.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { scanCommand } from '../../src/cli/scan.js';
import { SocketTable } from '../../src/table/socket-table.js';
import { countSockets, topGroups } from '../../src/table/count-sockets.js';
import { fileURLToPath } from 'node:url';
import { rowsOf } from './fixture-tables.js';

const synRecvBy = (by: 'ip' | 'port') =>
  countSockets(SocketTable.from(rowsOf('mixed', 'proc')), { proto: 'tcp', states: new Set(['SYN_RECV']) }, { by })
    .groups;

describe('topGroups', () => {
  it('puts the biggest sources first and breaks ties by address, as people read them', () => {
    // 82 sources: 5 of them is the partial-selection path, 20 the full-sort path.
    expect(topGroups(synRecvBy('ip'), 5)).toEqual([
      { key: '198.51.100.66', count: 30 },
      { key: '2001:db8:2::66', count: 25 },
      { key: '203.0.113.1', count: 5 },
      { key: '203.0.113.2', count: 5 },
      { key: '203.0.113.3', count: 5 },
    ]);
  });

  it('lists tied IPv4 sources before IPv6 ones, each in address order (::2 before ::10)', () => {
    const keys = topGroups(synRecvBy('ip'), 82).map((g) => g.key);
    expect(keys.slice(2, 6)).toEqual(['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4']);
    expect(keys.slice(40, 44)).toEqual(['203.0.113.39', '203.0.113.40', '2001:db8:1::1', '2001:db8:1::2']);
    expect(keys.indexOf('2001:db8:1::9')).toBeLessThan(keys.indexOf('2001:db8:1::a'));
    expect(keys.indexOf('2001:db8:1::f')).toBeLessThan(keys.indexOf('2001:db8:1::10'));
    expect(keys.at(-1)).toBe('2001:db8:1::28');
  });

  it('orders tied networks by address, then the wider one first', () => {
    const nets = new Map([
      ['203.0.113.0/24', 4],
      ['2001:db8::/64', 4],
      ['198.51.100.0/25', 4],
      ['198.51.100.0/24', 4],
      ['10.0.0.0/8', 9],
    ]);
    expect(topGroups(nets, 5).map((g) => g.key)).toEqual([
      '10.0.0.0/8',
      '198.51.100.0/24',
      '198.51.100.0/25',
      '203.0.113.0/24',
      '2001:db8::/64',
    ]);
  });

  it('gives the same order whether it picks a few or sorts them all', () => {
    const groups = synRecvBy('ip');
    const all = topGroups(groups, groups.size);
    expect(all).toHaveLength(82);
    for (const limit of [1, 2, 3, 5, 10, 15, 16, 20, 50, 82])
      expect(topGroups(groups, limit), `limit ${limit}`).toEqual(all.slice(0, limit));
    for (let i = 1; i < all.length; i++)
      expect(all[i - 1]!.count, `${all[i - 1]!.key} before ${all[i]!.key}`).toBeGreaterThanOrEqual(all[i]!.count);
  });

  it('orders local ports by count, then by port number, not by text', () => {
    expect(topGroups(synRecvBy('port'), 10, true)).toEqual([
      { key: '443', count: 225 },
      { key: '80', count: 150 },
    ]);
    const tied = new Map([
      ['8080', 7],
      ['443', 7],
      ['80', 7],
      ['22', 9],
    ]);
    expect(topGroups(tied, 4, true).map((g) => g.key)).toEqual(['22', '80', '443', '8080']);
  });

  it('orders tied ports numerically also when it picks a few of many', () => {
    const ports = new Map(Array.from({ length: 40 }, (_, i) => [String(1000 - i * 20), 3] as [string, number]));
    ports.set('9', 1);
    expect(topGroups(ports, 3, true).map((g) => g.key)).toEqual(['220', '240', '260']);
  });

  it('returns nothing for a limit of 0 and every group for a limit above their number', () => {
    const groups = synRecvBy('port');
    expect(topGroups(groups, 0)).toEqual([]);
    expect(topGroups(groups, -1)).toEqual([]);
    expect(topGroups(groups, 1000, true)).toHaveLength(2);
  });
});

describe('floodgate scan --top', () => {
  const input = fileURLToPath(new URL('../fixtures/tables/mixed/ss-tan.txt', import.meta.url));
  const scan = async (top: number) => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await scanCommand({
      input: [input],
      by: 'ip',
      prefix4: 24,
      prefix6: 64,
      state: ['SYN_RECV'],
      proto: 'tcp',
      top,
      json: true,
    });
    const out = write.mock.calls.map((call) => String(call[0])).join('');
    return JSON.parse(out) as {
      total: number;
      groups: { key: string; count: number }[];
      distinct: number;
      malformed: number;
    };
  };
  afterEach(() => vi.restoreAllMocks());

  it('lists exactly --top sources, biggest first, and says how many there were', async () => {
    const out = await scan(3);
    expect(out.total).toBe(375);
    expect(out.distinct).toBe(82);
    expect(out.malformed).toBe(0);
    expect(out.groups).toEqual([
      { key: '198.51.100.66', count: 30 },
      { key: '2001:db8:2::66', count: 25 },
      { key: '203.0.113.1', count: 5 },
    ]);
  });

  it('lists no source with --top 0 but still counts them all', async () => {
    const out = await scan(0);
    expect(out.groups).toEqual([]);
    expect(out.total).toBe(375);
  });
});
