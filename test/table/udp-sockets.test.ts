// UDP rows (/proc/net/udp*, netstat -antu, ss -tanu): an unconnected socket is UNCONN and no source;
// a connected one has its peer. Neither changes the TCP counts.
import { describe, expect, it } from 'vitest';
import { SocketTable } from '../../src/table/socket-table.js';
import { countSockets } from '../../src/table/count-sockets.js';
import { parseProcNet, procProtoFromHeader } from '../../src/table/proc-net-parser.js';
import {
  SCENARIOS,
  type Scenario,
  fixtureText,
  expectedCounts,
  rowKey,
  summarize,
  textRows,
} from './fixture-tables.js';

const UDP_FORMATS = ['netstat-an', 'netstat-antu', 'ss-tanu'] as const;

function procUdpRows(scenario: Scenario) {
  return [
    ...parseProcNet(fixtureText(scenario, 'proc-udp.txt')).rows,
    ...parseProcNet(fixtureText(scenario, 'proc-udp6.txt')).rows,
  ];
}

describe.each(SCENARIOS)('UDP sockets of the %s capture', (scenario) => {
  it('are read from /proc/net/udp and udp6 as UDP, one row per socket', () => {
    expect(procProtoFromHeader(fixtureText(scenario, 'proc-udp.txt'))).toBe('udp');
    expect(procProtoFromHeader(fixtureText(scenario, 'proc-tcp.txt'))).toBe('tcp');
    const udp = parseProcNet(fixtureText(scenario, 'proc-udp.txt'));
    const udp6 = parseProcNet(fixtureText(scenario, 'proc-udp6.txt'));
    expect({ udp: udp.rows.length, udp6: udp6.rows.length }).toEqual(expectedCounts(scenario).udpSockets);
    expect([...udp.rows, ...udp6.rows].every((row) => row.proto === 'udp')).toBe(true);
  });

  it.each(['proc', ...UDP_FORMATS] as const)(
    'in %s: the unconnected ones are UNCONN and no source, the connected ones count their peer',
    (format) => {
      const rows = format === 'proc' ? procUdpRows(scenario) : textRows(scenario, format);
      const udp = countSockets(SocketTable.from(rows), { proto: 'udp' }, { by: 'ip' });
      expect(udp.states).toEqual({ UNCONN: 2, ESTABLISHED: 2 });
      expect(Object.fromEntries(udp.groups)).toEqual({ '192.0.2.2': 1, '2001:db8::2': 1 });
      const unconnected = rows.filter((row) => row.proto === 'udp' && row.state === 'UNCONN');
      expect(unconnected.map((row) => `${row.localPort} ${row.remote || '-'} ${row.remotePort}`)).toEqual([
        '53 - 0',
        '53 - 0',
      ]);
    },
  );

  it.each(UDP_FORMATS)('in %s: the UDP rows leave the TCP counts exactly as in the TCP-only capture', (format) => {
    const tcpOnly = format === 'ss-tanu' ? 'ss-tan' : 'netstat-ant';
    const withUdp = textRows(scenario, format);
    expect(withUdp.filter((row) => row.proto === 'udp')).toHaveLength(4);
    expect(summarize(withUdp)).toEqual(summarize(textRows(scenario, tcpOnly)));
    expect(
      withUdp
        .filter((row) => row.proto === 'tcp')
        .map(rowKey)
        .sort(),
    ).toEqual(textRows(scenario, tcpOnly).map(rowKey).sort());
  });

  it('lists the same UDP sockets in /proc, netstat and ss', () => {
    const keys = (rows: ReturnType<typeof procUdpRows>) =>
      rows
        .filter((row) => row.proto === 'udp')
        .map(rowKey)
        .sort();
    const proc = keys(procUdpRows(scenario));
    for (const format of UDP_FORMATS) expect(keys(textRows(scenario, format)), format).toEqual(proc);
  });

  it("counts no UDP socket in a scan limited to 'tcp', and both protocols in 'all'", () => {
    const rows = textRows(scenario, 'ss-tanu');
    const tcp = countSockets(SocketTable.from(rows), { proto: 'tcp' }, { by: 'ip' });
    const all = countSockets(SocketTable.from(rows), { proto: 'all' }, { by: 'ip' });
    const udp = countSockets(SocketTable.from(rows), { proto: 'udp' }, { by: 'ip' });
    expect(tcp.states.UNCONN).toBeUndefined();
    expect(all.total).toBe(tcp.total + 4);
    expect(udp.total).toBe(4);
  });
});
