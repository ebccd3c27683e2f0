// Every captured format of the same moment must tell the same story as expected.json.
import { describe, expect, it } from 'vitest';
import { canonicalIp } from '../../src/net/ip.js';
import { SocketTable } from '../../src/table/socket-table.js';
import { countSockets } from '../../src/table/count-sockets.js';
import { detectFormat } from '../../src/table/parse-table.js';
import { parseProcNet } from '../../src/table/proc-net-parser.js';
import {
  ALL_FORMATS,
  SCENARIOS,
  TEXT_FORMATS,
  capturedCounts,
  expectedCounts,
  fixtureText,
  type procTcpRows,
  rowKey,
  rowsOf,
  summarize,
  textRows,
} from './fixture-tables.js';

describe.each(SCENARIOS)('the %s capture', (scenario) => {
  const want = capturedCounts(scenario);

  describe.each(ALL_FORMATS)('read from %s', (format) => {
    const got = summarize(rowsOf(scenario, format));

    it('shows the TCP totals per state of expected.json', () => {
      expect(got.states).toEqual(want.states);
    });
    it('counts half-open connections per source as expected.json', () => {
      expect(got.synRecvByIp).toEqual(want.synRecvByIp);
    });
    it('counts established connections per source as expected.json', () => {
      expect(got.establishedByIp).toEqual(want.establishedByIp);
    });
    it('counts TIME_WAIT sockets per source as expected.json', () => {
      expect(got.timeWaitByIp).toEqual(want.timeWaitByIp);
    });
    it('counts every non-listening socket per source as expected.json', () => {
      expect(got.byIpAllStatesButListen).toEqual(want.byIpAllStatesButListen);
    });
    it('counts half-open connections per /24 and /64 as expected.json', () => {
      expect(got.synRecvByNet).toEqual(want.synRecvByNet);
    });
    it('counts established connections per /24 and /64 as expected.json', () => {
      expect(got.establishedByNet).toEqual(want.establishedByNet);
    });
    it('counts half-open connections per local port as expected.json', () => {
      expect(got.synRecvByLocalPort).toEqual(want.synRecvByLocalPort);
    });
  });

  it('gives the same TCP rows, port for port, in every format', () => {
    const tcpKeys = (format: (typeof ALL_FORMATS)[number]) =>
      rowsOf(scenario, format)
        .filter((row) => row.proto === 'tcp')
        .map(rowKey)
        .sort();
    const proc = tcpKeys('proc');
    expect(proc).toHaveLength(Object.values(expectedCounts(scenario).states).reduce((a, b) => a + b, 0));
    for (const format of TEXT_FORMATS) expect(tcpKeys(format), format).toEqual(proc);
  });

  it('reads every /proc/net/tcp and tcp6 row, with nothing left over as malformed', () => {
    const tcp = parseProcNet(fixtureText(scenario, 'proc-tcp.txt'));
    const tcp6 = parseProcNet(fixtureText(scenario, 'proc-tcp6.txt'));
    expect({ tcp: tcp.rows.length, tcp6: tcp6.rows.length }).toEqual(expectedCounts(scenario).procRows);
    expect([...tcp.malformed, ...tcp6.malformed]).toEqual([]);
  });

  it.each([
    ['proc-tcp.txt', 'proc'],
    ['proc-tcp6.txt', 'proc'],
    ['proc-udp.txt', 'proc'],
    ['proc-udp6.txt', 'proc'],
    ...TEXT_FORMATS.map((format) => [`${format}.txt`, format.startsWith('ss') ? 'ss' : 'netstat']),
  ])('recognises %s as %s output', (file, format) => {
    expect(detectFormat(fixtureText(scenario, file))).toBe(format);
  });
});

describe('addresses in the captured tables', () => {
  const sources = (rows: ReturnType<typeof procTcpRows>) =>
    new Set(rows.filter((row) => row.proto === 'tcp' && row.remote !== '').map((row) => row.remote));

  it('shows the IPv4 clients of the dual-stack :80 listener as plain IPv4 in every format', () => {
    // In /proc/net/tcp6 and ss they are ::ffff:a.b.c.d; netstat already prints them as IPv4.
    expect(fixtureText('mixed', 'ss-tan.txt')).toContain('[::ffff:198.51.100.66]:');
    expect(fixtureText('mixed', 'proc-tcp6.txt')).toMatch(/0000000000000000FFFF0000426433C6:[0-9A-F]{4} 03 /);
    const tcp6Only = parseProcNet(fixtureText('mixed', 'proc-tcp6.txt')).rows;
    const mapped = countSockets(tcp6Only, { proto: 'tcp' }, { by: 'ip' }).groups;
    expect(mapped.get('198.51.100.66')).toBe(30);
    expect(mapped.get('198.51.100.200')).toBe(60);
    expect(mapped.get('198.51.100.15')).toBe(4);
    for (const format of ALL_FORMATS) {
      const remotes = [...sources(rowsOf('mixed', format))];
      expect(
        remotes.filter((remote) => remote.toLowerCase().includes('ffff')),
        format,
      ).toEqual([]);
      expect(remotes, format).toContain('198.51.100.66');
    }
  });

  it('writes IPv6 sources in RFC 5952 form (lower case, zeros compressed) in every format', () => {
    for (const format of ALL_FORMATS) {
      const v6 = [...sources(rowsOf('mixed', format))].filter((remote) => remote.includes(':'));
      expect(v6, format).toHaveLength(40 + 1 + 1); // the /64 flood, 2001:db8:2::66 and 2001:db8:3::10
      expect(v6, format).toContain('2001:db8:1::1a');
      expect(v6, format).toContain('2001:db8:2::66');
      for (const remote of v6) expect(remote).toBe(canonicalIp(remote));
      expect(
        v6.some((remote) => /[A-F]|0db8|:0:/.test(remote)),
        format,
      ).toBe(false);
    }
  });

  it('never counts a listening socket as a source', () => {
    for (const format of ALL_FORMATS) {
      const rows = rowsOf('mixed', format);
      const listening = rows.filter((row) => row.state === 'LISTEN');
      expect(listening, format).toHaveLength(3);
      expect(
        listening.map((row) => [row.remote, row.remotePort]),
        format,
      ).toEqual([
        ['', 0],
        ['', 0],
        ['', 0],
      ]);
      expect(listening.map((row) => row.localPort).sort(), format).toEqual([443, 443, 80]);
      const counted = countSockets(SocketTable.from(rows), { proto: 'tcp', states: new Set(['LISTEN']) }, { by: 'ip' });
      expect(counted.total, format).toBe(3);
      expect(counted.groups.size, format).toBe(0);
    }
  });

  it('keeps the 4 server-closed TIME_WAIT sockets of 198.51.100.15 attributed to it', () => {
    for (const format of TEXT_FORMATS) {
      const timeWait = textRows('mixed', format).filter((row) => row.state === 'TIME_WAIT');
      expect(
        timeWait.map((row) => `${row.remote} ${row.localPort}`),
        format,
      ).toEqual(Array(4).fill('198.51.100.15 80'));
    }
  });
});
