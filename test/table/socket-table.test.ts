// The columnar table and its address book: one id per address whatever form it came in, rows that
// read back exactly as written, and counts that agree with a plain count over row objects.
import { describe, expect, it } from 'vitest';
import { CidrSet } from '../../src/net/cidr-set.js';
import { formatCidr, networkOf, parseIp } from '../../src/net/ip.js';
import { type Grouping, type SocketFilter, countSockets, countTop, topGroups } from '../../src/table/count-sockets.js';
import { rowsRead } from '../../src/table/parse-result.js';
import { ProcNetParser, parseProcNet } from '../../src/table/proc-net-parser.js';
import { STATES, type SocketRow } from '../../src/table/socket-row.js';
import { AddressBook, SocketTable } from '../../src/table/socket-table.js';

describe('AddressBook', () => {
  it('gives an address one id whether it came as a number, as text or as IPv4-mapped IPv6', () => {
    const book = new AddressBook();
    const id = book.ipv4Id(0xc6336442); // 198.51.100.66
    expect(book.idOf('198.51.100.66')).toBe(id);
    expect(book.idOf('::ffff:198.51.100.66')).toBe(id);
    expect(book.ipv6Id(0, 0, 0xffff, 0xc6336442)).toBe(id);
    expect(book.name(id)).toBe('198.51.100.66');
    expect(book.family(id)).toBe(4);
    expect(book.idOf('198.51.100.67')).not.toBe(id);
  });

  it('numbers IPv6 addresses by value and names them in RFC 5952 form', () => {
    const book = new AddressBook();
    const id = book.idOf('2001:DB8:0:0:1::66');
    expect(book.ipv6Id(0x20010db8, 0, 0x10000, 0x66)).toBe(id);
    expect(book.name(id)).toBe('2001:db8::1:0:0:66');
    expect(book.family(id)).toBe(6);
    // ::1 is IPv6 loopback, not an IPv4-compatible 0.0.0.1
    expect(book.family(book.idOf('::1'))).toBe(6);
  });

  it('keeps 0 for "no peer": 0.0.0.0, :: and the mapped zero address', () => {
    const book = new AddressBook();
    expect([book.ipv4Id(0), book.ipv6Id(0, 0, 0, 0), book.ipv6Id(0, 0, 0xffff, 0), book.idOf('')]).toEqual([
      0, 0, 0, 0,
    ]);
    expect(book.name(0)).toBe('');
  });

  it('stays exact past many growths of its tables', () => {
    const book = new AddressBook();
    const base = 0xc6120000; // 198.18.0.0/15
    const ids = Array.from({ length: 70_000 }, (_, i) => book.ipv4Id(base + i));
    const v6 = Array.from({ length: 3_000 }, (_, i) => book.ipv6Id(0x20010db8, 0, i, 1));
    expect(new Set([...ids, ...v6]).size).toBe(73_000);
    expect(book.size).toBe(73_001);
    for (let i = 0; i < 70_000; i += 997) expect(book.ipv4Id(base + i)).toBe(ids[i]);
    for (let i = 0; i < 3_000; i += 97) expect(book.ipv6Id(0x20010db8, 0, i, 1)).toBe(v6[i]);
    expect(book.name(ids[65_535]!)).toBe('198.18.255.255');
    expect(book.name(v6[2_999]!)).toBe('2001:db8::bb7:0:1');
  });
});

describe('AddressBook of networks', () => {
  it('numbers each address as its network, an IPv4-mapped one as its IPv4 network, and names it as one', () => {
    const book = new AddressBook({ prefix4: 24, prefix6: 64 });
    const id = book.idOf('198.51.100.66');
    expect([book.idOf('198.51.100.1'), book.idOf('::ffff:198.51.100.254'), book.ipv4Id(0xc6336400)]).toEqual([
      id,
      id,
      id,
    ]);
    expect(book.idOf('198.51.101.1')).not.toBe(id);
    expect(book.name(id)).toBe('198.51.100.0/24');
    expect(book.ipv4(id)).toBe(0xc6336400);
    const v6 = book.idOf('2001:db8:0:7:1::66');
    expect(book.idOf('2001:db8:0:7:ffff::1')).toBe(v6);
    expect(book.idOf('2001:db8:0:8::1')).not.toBe(v6);
    expect(book.name(v6)).toBe('2001:db8:0:7::/64');
    expect(book.size).toBe(5); // four networks, and the unused id 0
  });

  it('keeps 0 for "no peer" whatever the network size, even /0 where every address is one network', () => {
    const book = new AddressBook({ prefix4: 0, prefix6: 0 });
    expect([book.ipv4Id(0), book.ipv6Id(0, 0, 0, 0), book.ipv6Id(0, 0, 0xffff, 0)]).toEqual([0, 0, 0]);
    const all4 = book.idOf('203.0.113.9');
    expect(all4).toBeGreaterThan(0);
    expect(book.idOf('192.0.2.1')).toBe(all4);
    expect(book.name(all4)).toBe('0.0.0.0/0');
    const all6 = book.idOf('2001:db8::1');
    expect(book.idOf('::1')).toBe(all6);
    expect(book.name(all6)).toBe('::/0');
  });

  it('appended to another table of networks keeps the networks that start at zero (::/64, 0.0.0.0/1)', () => {
    const rows: SocketRow[] = [
      { proto: 'tcp', state: 'ESTABLISHED', localPort: 443, remote: '::1', remotePort: 40000 },
      { proto: 'tcp', state: 'ESTABLISHED', localPort: 443, remote: '::2', remotePort: 40001 },
      { proto: 'tcp', state: 'ESTABLISHED', localPort: 443, remote: '64.0.0.1', remotePort: 40002 },
      { proto: 'tcp', state: 'ESTABLISHED', localPort: 443, remote: '198.51.100.7', remotePort: 40003 },
    ];
    for (const networks of [
      { prefix4: 24, prefix6: 64 },
      { prefix4: 1, prefix6: 1 },
    ]) {
      const grouping = { by: 'net' as const, ...networks };
      const merged = new SocketTable(networks);
      merged.append(SocketTable.from(rows.slice(0, 2), networks));
      merged.append(SocketTable.from(rows.slice(2), networks));
      // Every row keeps its source and port, as one table read whole has them.
      expect(merged.toRows()).toEqual(SocketTable.from(rows, networks).toRows());
      expect(merged.toRows().every((row) => row.remote !== '' && row.remotePort !== 0)).toBe(true);
      expect(countTop(merged, {}, grouping, 10)).toEqual(countTop(SocketTable.from(rows), {}, grouping, 10));
    }
  });

  it('at full length is a book of addresses named without a prefix', () => {
    const book = new AddressBook({ prefix4: 32, prefix6: 128 });
    expect(book.name(book.idOf('192.0.2.7'))).toBe('192.0.2.7');
    expect(book.name(book.idOf('2001:db8::7'))).toBe('2001:db8::7');
    expect(book.idOf('192.0.2.8')).not.toBe(book.idOf('192.0.2.7'));
  });

  it('refuses a network size no address has', () => {
    expect(() => new AddressBook({ prefix4: 33, prefix6: 64 })).toThrow(RangeError);
    expect(() => new AddressBook({ prefix4: 24, prefix6: -1 })).toThrow(RangeError);
    expect(() => new AddressBook({ prefix4: 24.5, prefix6: 64 })).toThrow(RangeError);
  });

  it('cannot be counted by address, by other networks, or with min_sources: refused, not miscounted', () => {
    const table = SocketTable.from(
      [
        { proto: 'tcp', state: 'SYN_RECV', localPort: 443, remote: '192.0.2.7', remotePort: 40000 },
        { proto: 'tcp', state: 'SYN_RECV', localPort: 443, remote: '192.0.2.8', remotePort: 40001 },
      ],
      { prefix4: 24, prefix6: 64 },
    );
    expect(() => countTop(table, {}, { by: 'ip' }, 10)).toThrow(/cannot be counted by ip/);
    expect(() => countTop(table, {}, { by: 'net', prefix4: 16, prefix6: 64 }, 10)).toThrow(/by net \/16 \/64/);
    expect(() => countSockets(table, {}, { by: 'net', prefix4: 24, prefix6: 64 }, { minSources: 2 })).toThrow(
      /min_sources/,
    );
    expect(countTop(table, {}, { by: 'net', prefix4: 24, prefix6: 64 }, 10).top).toEqual([
      { key: '192.0.2.0/24', count: 2 },
    ]);
    expect(countTop(table, {}, { by: 'port' }, 10).top).toEqual([{ key: '443', count: 2 }]);
  });
});

/** A deterministic mix of sockets: IPv4 and IPv6 sources, some in one /24 and one /64, every state. */
function sampleRows(count: number): SocketRow[] {
  let seed = 12345;
  const next = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const rows: SocketRow[] = [];
  for (let i = 0; i < count; i++) {
    const state = STATES[next(STATES.length)]!;
    const proto = state === 'UNCONN' || next(10) === 0 ? 'udp' : 'tcp';
    const kind = next(4);
    const remote =
      state === 'LISTEN' || state === 'UNCONN'
        ? ''
        : kind === 0
          ? `203.0.113.${next(40)}`
          : kind === 1
            ? `198.${18 + next(2)}.${next(256)}.${next(256)}`
            : kind === 2
              ? `2001:db8:${next(3) + 1}::${(next(50) + 1).toString(16)}`
              : `192.0.2.${next(5) + 1}`;
    rows.push({
      proto,
      state: proto === 'udp' && state !== 'ESTABLISHED' ? 'UNCONN' : state,
      localPort: [22, 80, 443, 53][next(4)]!,
      remote: proto === 'udp' && state !== 'ESTABLISHED' ? '' : remote,
      remotePort: remote === '' ? 0 : 1024 + next(60000),
    });
  }
  return rows.map((row) => (row.remote === '' ? { ...row, remotePort: 0 } : row));
}

/** The plain count over row objects that countSockets must agree with. */
function reference(
  rows: readonly SocketRow[],
  filter: SocketFilter,
  grouping: Grouping,
  skip: (remote: string) => boolean,
  above: number,
) {
  const groups = new Map<string, number>();
  const states: Record<string, number> = {};
  let total = 0;
  for (const row of rows) {
    if (filter.proto !== undefined && filter.proto !== 'all' && row.proto !== filter.proto) continue;
    if (filter.states !== undefined && !filter.states.has(row.state)) continue;
    if (filter.ports !== undefined && !filter.ports.has(row.localPort)) continue;
    if (row.remote !== '' && skip(row.remote)) continue;
    total++;
    states[row.state] = (states[row.state] ?? 0) + 1;
    if (row.remote === '') continue;
    let key = row.remote;
    if (grouping.by === 'port') key = String(row.localPort);
    else if (grouping.by === 'net') {
      const ip = parseIp(row.remote)!;
      const prefix = ip.family === 4 ? grouping.prefix4 : grouping.prefix6;
      key = formatCidr({ family: ip.family, value: networkOf(ip.family, ip.value, prefix), prefix });
    }
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return { total, states, groups: Object.fromEntries([...groups].filter(([, n]) => n > above)) };
}

describe('SocketTable', () => {
  const rows = sampleRows(5_000);
  const table = SocketTable.from(rows);

  it('reads back every row exactly as written', () => {
    expect(table.length).toBe(rows.length);
    expect(table.toRows()).toEqual(rows);
    expect(table.row(4_321)).toEqual(rows[4_321]);
  });

  it('appends another table, renumbering its addresses into its own book', () => {
    const a = SocketTable.from(rows.slice(0, 2_000));
    const b = SocketTable.from(rows.slice(2_000));
    a.append(b);
    expect(a.toRows()).toEqual(rows);
    expect(a.addresses.size).toBe(table.addresses.size);
  });

  it('numbers the rows pushed by address when settled, as if each had been numbered as it came', () => {
    // More rows than one batch, IPv4, IPv6 and mapped IPv4 interleaved, and some no-peer addresses.
    const byAddress = new SocketTable();
    const oneByOne = new SocketTable();
    const SYN_RECV = STATES.indexOf('SYN_RECV');
    for (let i = 0; i < 10_000; i++) {
      const port = 1024 + (i % 5000);
      const v4 = i % 97 === 0 ? 0 : 0xc6120000 + ((i * 7919) % 3000); // 198.18.0.0/15, repeating
      if (i % 3 === 0) {
        const words = i % 6 === 0 ? [0, 0, 0xffff, v4] : [0x20010db8, 0, i % 700, 1];
        byAddress.pushIpv6(0, SYN_RECV, 443, words[0]!, words[1]!, words[2]!, words[3]!, port);
        oneByOne.push(0, SYN_RECV, 443, oneByOne.addresses.ipv6Id(words[0]!, words[1]!, words[2]!, words[3]!), port);
      } else {
        byAddress.pushIpv4(0, SYN_RECV, 443, v4, port);
        oneByOne.push(0, SYN_RECV, 443, oneByOne.addresses.ipv4Id(v4), port);
      }
    }
    byAddress.settle();
    expect(byAddress.length).toBe(10_000);
    expect(byAddress.addresses.size).toBe(oneByOne.addresses.size);
    // The same ids in the same order (first sight), and a no-peer address has no port.
    expect(byAddress.remotes.subarray(0, 10_000)).toEqual(oneByOne.remotes.subarray(0, 10_000));
    expect(byAddress.toRows()).toEqual(oneByOne.toRows());
    expect(byAddress.row(0)).toMatchObject({ remote: '', remotePort: 0 });
  });

  it('forgets the rows pushed by address and not settled when cleared', () => {
    const t = new SocketTable();
    t.pushIpv4(0, 0, 443, 0xc0000207, 50000);
    t.clear();
    t.settle();
    t.pushIpv4(0, 0, 443, 0xc0000208, 50001);
    t.settle();
    expect(t.toRows()).toEqual([
      { proto: 'tcp', state: STATES[0], localPort: 443, remote: '192.0.2.8', remotePort: 50001 },
    ]);
    // The forgotten address was never numbered: 192.0.2.8 is the first id.
    expect(t.addresses.size).toBe(2);
    expect(t.addresses.name(1)).toBe('192.0.2.8');
  });

  const filters: [string, SocketFilter][] = [
    ['everything', {}],
    ['SYN_RECV over tcp', { proto: 'tcp', states: new Set(['SYN_RECV']) }],
    ['ESTABLISHED on port 443', { states: new Set(['ESTABLISHED']), ports: new Set([443]) }],
    ['udp', { proto: 'udp' }],
  ];
  const groupings: Grouping[] = [
    { by: 'ip' },
    { by: 'port' },
    { by: 'net', prefix4: 24, prefix6: 64 },
    { by: 'net', prefix4: 16, prefix6: 48 },
    { by: 'net', prefix4: 0, prefix6: 0 },
    { by: 'net', prefix4: 32, prefix6: 128 },
  ];
  const suppressed = CidrSet.parse(['198.18.0.0/16', '2001:db8:1::/48', '192.0.2.3']);

  for (const [name, filter] of filters) {
    for (const grouping of groupings) {
      const label = grouping.by === 'net' ? `net /${grouping.prefix4} /${grouping.prefix6}` : grouping.by;
      it(`counts ${name} by ${label} as a plain count over the rows does, with and without sources left out`, () => {
        const plain = countSockets(table, filter, grouping);
        expect({ ...plain, groups: Object.fromEntries(plain.groups) }).toEqual(
          reference(rows, filter, grouping, () => false, 0),
        );

        const skip = new Uint8Array(table.addresses.size);
        for (let id = 1; id < skip.length; id++)
          if (
            suppressed.coversAddress(
              parseIp(table.addresses.name(id))!.family,
              parseIp(table.addresses.name(id))!.value,
            )
          )
            skip[id] = 1;
        const skipped = countSockets(table, filter, grouping, { skip, above: 3 });
        const isSuppressed = (remote: string) =>
          suppressed.coversAddress(parseIp(remote)!.family, parseIp(remote)!.value);
        expect({ ...skipped, groups: Object.fromEntries(skipped.groups) }).toEqual(
          reference(rows, filter, grouping, isSuppressed, 3),
        );
      });
    }
  }
});

describe('ProcNetParser on bytes', () => {
  const text = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:0050 426433C6:A3C1 03 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000',
    '   1: 0100007F:0050 436433C6:A3C2 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000',
  ].join('\n');

  it('reads only the first `length` bytes of a chunk, whatever the buffer holds after them', () => {
    const buffer = Buffer.alloc(4096, 'X');
    const written = buffer.write(`${text}\n   2: 0100007F:0050 446433C6:A3C3 0`, 'latin1');
    const parser = new ProcNetParser('tcp');
    parser.push(buffer, written - 30);
    parser.push(buffer.subarray(written - 30), 30);
    const { rows, malformed } = parser.end();
    expect(rows.toRows().map((r) => `${r.state} ${r.remote}:${r.remotePort}`)).toEqual([
      'SYN_RECV 198.51.100.66:41921',
      'ESTABLISHED 198.51.100.67:41922',
    ]);
    // the last line, cut short inside its state, is named as it was read
    expect(malformed).toEqual([{ line: 4, text: '   2: 0100007F:0050 446433C6:A3C3 0' }]);
  });

  it('keeps only the states it is told, counts the others as skipped, and still finds a bad row among them', () => {
    const bad = [
      '   2: 0100007F:0050 4464ZZC6:A3C3 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0',
      '   3: 0100007F:0050 446433C6:A3C3 0G 00000000:00000000 00:00000000 00000000     0        0 0 1 0',
      '   4: 0100007F:0050 446433C6:A3CX 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0',
    ];
    const parser = new ProcNetParser('tcp', new SocketTable(), new Set(['SYN_RECV']));
    parser.push(Buffer.from(`${[text, ...bad].join('\n')}\n`, 'latin1'));
    const { rows, malformed, skipped } = parser.end();
    expect(rows.toRows().map((r) => `${r.state} ${r.remote}:${r.remotePort}`)).toEqual([
      'SYN_RECV 198.51.100.66:41921',
    ]);
    expect(skipped).toBe(1);
    // an ESTABLISHED row is left out only when it would have been read: a bad address, state or port is reported
    expect(malformed.map((m) => m.line)).toEqual([4, 5, 6]);
    expect(rowsRead({ rows, malformed, skipped })).toBe(2);
  });

  it('gives what parseProcNet gives on the whole text, even with no newline at the end', () => {
    const parser = new ProcNetParser('tcp');
    parser.push(Buffer.from(text, 'latin1'));
    expect(parser.end().rows.toRows()).toEqual(parseProcNet(text).rows.toRows());
    expect(parseProcNet(text).rows.length).toBe(2);
  });
});

describe('SocketTable.clear', () => {
  it('empties the table for the next scan, forgetting every address, and reads as a new one', () => {
    const table = SocketTable.from(sampleRows(3_000));
    table.clear();
    expect(table.length).toBe(0);
    expect(table.addresses.size).toBe(1);
    const rows = sampleRows(500).reverse();
    for (const row of rows) table.pushRow(row);
    expect(table.toRows()).toEqual(rows);
    expect(table.addresses.size).toBe(SocketTable.from(rows).addresses.size);
    const fresh = countSockets(SocketTable.from(rows), {}, { by: 'ip' });
    expect(countSockets(table, {}, { by: 'ip' })).toEqual(fresh);
  });
});

/**
 * Random tables as the kernel prints them (tcp and tcp6, with a share of the IPv4 sources as
 * IPv4-mapped IPv6 in tcp6), beside the same sockets as plain rows with canonical addresses: the
 * parsed, columnar counts must equal a plain count over the rows, whatever the mix of sources.
 */
type Mix = 'distinct' | 'clustered' | 'mixed';
function randomCapture(count: number, mix: Mix, seed: number): { tcp: string; tcp6: string; rows: SocketRow[] } {
  let s = seed >>> 0;
  const next = (n: number) => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return ((s >>> 8) * n) >>> 24;
  };
  const hex = (v: number, w: number) => (v >>> 0).toString(16).toUpperCase().padStart(w, '0');
  const host = (w: number) =>
    hex((((w & 255) << 24) | (((w >>> 8) & 255) << 16) | (((w >>> 16) & 255) << 8) | (w >>> 24)) >>> 0, 8);
  const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
  const tcp = [header];
  const tcp6 = [header];
  const rows: SocketRow[] = [];
  const kernelState: Record<string, number> = {
    ESTABLISHED: 1,
    SYN_SENT: 2,
    SYN_RECV: 3,
    FIN_WAIT1: 4,
    FIN_WAIT2: 5,
    TIME_WAIT: 6,
    CLOSE: 7,
    CLOSE_WAIT: 8,
    LAST_ACK: 9,
    LISTEN: 10,
    CLOSING: 11,
  };
  const states = Object.keys(kernelState) as SocketRow['state'][];
  for (let i = 0; i < count; i++) {
    const u = next(100);
    const state = u < 80 ? 'ESTABLISHED' : u < 95 ? 'SYN_RECV' : states[next(states.length)]!;
    const localPort = [80, 443, 22, 8080][next(4)]!;
    const remotePort = 1024 + next(60000);
    const listen = state === 'LISTEN';
    // Sources: distinct per row (by a bijection of i), or few /24s and /64s holding a few hosts each.
    const six = next(3) === 0;
    let v4 = 0;
    let v6: number[] = [];
    if (mix === 'distinct' || (mix === 'mixed' && next(2) === 0)) {
      v4 = (0xc6120000 + ((Math.imul(i + 1, 0x9e3779b1) >>> 0) % 0x20000)) >>> 0; // 198.18.0.0/15
      v6 = [0x20010db8, Math.imul(i + 7, 0x85ebca6b) >>> 0, next(2) * 0x10000, i + 1];
    } else {
      v4 = (0xcb007100 | next(6)) >>> 0; // 203.0.113.0–5
      if (next(2) === 0) v4 = (0xc6336400 + next(4)) >>> 0; // 198.51.100.0–3
      if (next(3) === 0) v4 = (0xc0000200 + next(3) * 256 + next(5)) >>> 0; // 192.0.2.x, 192.0.3.x, 192.0.4.x
      v6 = [0x20010db8, next(3), next(2), next(4) + 1];
    }
    const mapped = !six && next(10) === 0;
    const words = six ? v6 : [0, 0, 0xffff, v4];
    const remoteText = listen
      ? ''
      : six
        ? formatCidr({ family: 6, value: words.reduce((a, w) => (a << 32n) | BigInt(w >>> 0), 0n), prefix: 128 })
        : `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`;
    const remoteWords = listen ? [0, 0, 0, 0] : words;
    const st = hex(kernelState[state]!, 2);
    if (six || mapped) {
      const local = `${host(0x20010db8)}${host(0)}${host(0)}${host(1)}`;
      tcp6.push(
        `${String(tcp6.length - 1).padStart(4)}: ${local}:${hex(localPort, 4)} ${remoteWords.map(host).join('')}:${hex(listen ? 0 : remotePort, 4)} ${st} 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000`,
      );
    } else {
      tcp.push(
        `${String(tcp.length - 1).padStart(4)}: ${host(0xc0000201)}:${hex(localPort, 4)} ${host(listen ? 0 : v4)}:${hex(listen ? 0 : remotePort, 4)} ${st} 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000`,
      );
    }
    rows.push({ proto: 'tcp', state, localPort, remote: remoteText, remotePort: listen ? 0 : remotePort });
  }
  return { tcp: tcp.join('\n'), tcp6: tcp6.join('\n'), rows };
}

/** The plain count with the per-net rule's distinct sources: a network needs `minSources` of them. */
function referenceWithSources(
  rows: readonly SocketRow[],
  filter: SocketFilter,
  grouping: Grouping,
  skip: (remote: string) => boolean,
  above: number,
  minSources: number,
) {
  const plain = reference(rows, filter, grouping, skip, -1);
  if (grouping.by !== 'net')
    return { ...plain, groups: Object.fromEntries(Object.entries(plain.groups).filter(([, n]) => n > above)) };
  const sources = new Map<string, Set<string>>();
  for (const row of rows) {
    if (row.remote === '' || skip(row.remote)) continue;
    if (filter.states !== undefined && !filter.states.has(row.state)) continue;
    if (filter.ports !== undefined && !filter.ports.has(row.localPort)) continue;
    const ip = parseIp(row.remote)!;
    const prefix = ip.family === 4 ? grouping.prefix4 : grouping.prefix6;
    const key = formatCidr({ family: ip.family, value: networkOf(ip.family, ip.value, prefix), prefix });
    if (!sources.has(key)) sources.set(key, new Set());
    sources.get(key)!.add(row.remote);
  }
  return {
    ...plain,
    groups: Object.fromEntries(
      Object.entries(plain.groups).filter(([key, n]) => n > above && sources.get(key)!.size >= minSources),
    ),
  };
}

describe('columnar counts on random kernel tables, against a plain count over rows', () => {
  const filters: [string, SocketFilter][] = [
    ['every state but LISTEN', { states: new Set(STATES.filter((s) => s !== 'LISTEN')) }],
    ['SYN_RECV', { states: new Set(['SYN_RECV']) }],
    ['ESTABLISHED on 80 and 443', { states: new Set(['ESTABLISHED']), ports: new Set([80, 443]) }],
    ['everything', {}],
  ];
  const groupings: Grouping[] = [
    { by: 'ip' },
    { by: 'port' },
    { by: 'net', prefix4: 24, prefix6: 64 },
    { by: 'net', prefix4: 16, prefix6: 48 },
    { by: 'net', prefix4: 31, prefix6: 127 },
    { by: 'net', prefix4: 32, prefix6: 128 },
    { by: 'net', prefix4: 0, prefix6: 0 },
  ];
  const suppressed = CidrSet.parse(['198.18.0.0/17', '2001:db8:1::/48', '203.0.113.2', '::ffff:198.51.100.1']);
  const memo = new Map<string, boolean>();
  const isSuppressed = (remote: string) => {
    let hit = memo.get(remote);
    if (hit === undefined) {
      hit = suppressed.coversAddress(parseIp(remote)!.family, parseIp(remote)!.value);
      memo.set(remote, hit);
    }
    return hit;
  };

  for (const [mix, seed] of [
    ['distinct', 1],
    ['clustered', 2],
    ['mixed', 3],
    ['clustered', 4],
  ] as [Mix, number][]) {
    const { tcp, tcp6, rows } = randomCapture(2_000, mix, seed);
    const table = new SocketTable();
    for (const text of [tcp, tcp6]) {
      const parser = new ProcNetParser('tcp', table);
      parser.push(Buffer.from(`${text}\n`, 'latin1'));
      expect(parser.end().malformed).toEqual([]);
    }
    // The rows as parsed, in file order (tcp then tcp6), for the reference and for topGroups.
    const parsed = table.toRows();
    const canonical = [...rows].sort((a, b) =>
      a.remote < b.remote
        ? -1
        : a.remote > b.remote
          ? 1
          : a.remotePort - b.remotePort || a.state.localeCompare(b.state) || a.localPort - b.localPort,
    );
    const sorted = [...parsed].sort((a, b) =>
      a.remote < b.remote
        ? -1
        : a.remote > b.remote
          ? 1
          : a.remotePort - b.remotePort || a.state.localeCompare(b.state) || a.localPort - b.localPort,
    );

    it(`${mix} sources (seed ${seed}): the parser reads every socket, an IPv4-mapped source as its IPv4 address`, () => {
      expect(sorted).toEqual(canonical);
    });

    it(`${mix} sources (seed ${seed}): a parser told the states keeps their rows only, and counts them the same`, () => {
      for (const [, filter] of filters) {
        if (filter.states === undefined) continue;
        const kept = new SocketTable();
        let skipped = 0;
        for (const text of [tcp, tcp6]) {
          const parser = new ProcNetParser('tcp', kept, filter.states);
          parser.push(Buffer.from(`${text}\n`, 'latin1'));
          const result = parser.end();
          expect(result.malformed).toEqual([]);
          skipped += result.skipped ?? 0;
        }
        expect(kept.length + skipped).toBe(rows.length);
        expect(kept.toRows().every((row) => filter.states!.has(row.state))).toBe(true);
        for (const grouping of groupings) {
          const counted = countSockets(kept, filter, grouping, { above: 1, minSources: 2 });
          expect({ ...counted, groups: Object.fromEntries(counted.groups) }).toEqual(
            referenceWithSources(rows, filter, grouping, () => false, 1, 2),
          );
          const all = reference(rows, filter, grouping, () => false, 0);
          expect(countTop(kept, filter, grouping, 10).top).toEqual(
            topGroups(new Map(Object.entries(all.groups)), 10, grouping.by === 'port'),
          );
        }
      }
    });

    it(`${mix} sources (seed ${seed}): read as networks (as scan --by net reads), counts by net the same`, () => {
      for (const [, filter] of filters) {
        for (const grouping of groupings) {
          if (grouping.by !== 'net') continue;
          // Told the states too, as scan is, and not: the rows of other states left out or kept.
          for (const states of [undefined, filter.states]) {
            const nets = new SocketTable(grouping);
            for (const text of [tcp, tcp6]) {
              const parser = new ProcNetParser('tcp', nets, states);
              parser.push(Buffer.from(`${text}\n`, 'latin1'));
              expect(parser.end().malformed).toEqual([]);
            }
            const all = reference(rows, filter, grouping, () => false, 0);
            for (const limit of [1, 10, 1_000_000]) {
              const top = countTop(nets, filter, grouping, limit);
              expect(top.top).toEqual(topGroups(new Map(Object.entries(all.groups)), limit));
              expect(top.distinct).toBe(Object.keys(all.groups).length);
              expect({ total: top.total, states: top.states }).toEqual({ total: all.total, states: all.states });
            }
            // A table of addresses appended to one of networks (scan's other formats) is numbered by network.
            const appended = new SocketTable(grouping);
            appended.append(table);
            expect(countTop(appended, filter, grouping, 10).top).toEqual(countTop(table, filter, grouping, 10).top);
            const counted = countSockets(nets, filter, grouping, { above: 2 });
            expect({ ...counted, groups: Object.fromEntries(counted.groups) }).toEqual(
              reference(rows, filter, grouping, () => false, 2),
            );
          }
        }
      }
    });

    for (const [name, filter] of filters) {
      for (const grouping of groupings) {
        const label = grouping.by === 'net' ? `net /${grouping.prefix4} /${grouping.prefix6}` : grouping.by;
        it(`${mix} sources (seed ${seed}): ${name} by ${label}, with thresholds, min_sources and sources left out`, () => {
          for (const [above, minSources] of [
            [0, 1],
            [1, 1],
            [2, 3],
            [5, 2],
          ] as const) {
            const plain = countSockets(table, filter, grouping, { above, minSources });
            expect({ ...plain, groups: Object.fromEntries(plain.groups) }).toEqual(
              referenceWithSources(rows, filter, grouping, () => false, above, minSources),
            );
            const skip = new Uint8Array(table.addresses.size);
            for (let id = 1; id < skip.length; id++) if (isSuppressed(table.addresses.name(id))) skip[id] = 1;
            const skipped = countSockets(table, filter, grouping, { skip, above, minSources });
            expect({ ...skipped, groups: Object.fromEntries(skipped.groups) }).toEqual(
              referenceWithSources(rows, filter, grouping, isSuppressed, above, minSources),
            );
          }
          // countTop: the same as topGroups over the plain count's groups, ties included.
          const all = reference(rows, filter, grouping, () => false, 0);
          for (const limit of [0, 1, 10, 1_000_000]) {
            const top = countTop(table, filter, grouping, limit);
            expect(top.top).toEqual(topGroups(new Map(Object.entries(all.groups)), limit, grouping.by === 'port'));
            expect(top.distinct).toBe(Object.keys(all.groups).length);
            expect({ total: top.total, states: top.states }).toEqual({ total: all.total, states: all.states });
          }
        });
      }
    }
  }
});
