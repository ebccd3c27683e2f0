// The columnar table and its address book: one id per address whatever form it came in, rows that
// read back exactly as written, and counts that agree with a plain count over row objects.
import { describe, expect, it } from 'vitest';
import { CidrSet } from '../../src/net/cidr-set.js';
import { formatCidr, networkOf, parseIp } from '../../src/net/ip.js';
import { type Grouping, type SocketFilter, countSockets } from '../../src/table/count-sockets.js';
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
    expect([book.ipv4Id(0), book.ipv6Id(0, 0, 0, 0), book.ipv6Id(0, 0, 0xffff, 0), book.idOf('')]).toEqual([0, 0, 0, 0]);
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
    rows.push({ proto, state: proto === 'udp' && state !== 'ESTABLISHED' ? 'UNCONN' : state, localPort: [22, 80, 443, 53][next(4)]!, remote: proto === 'udp' && state !== 'ESTABLISHED' ? '' : remote, remotePort: remote === '' ? 0 : 1024 + next(60000) });
  }
  return rows.map((row) => (row.remote === '' ? { ...row, remotePort: 0 } : row));
}

/** The plain count over row objects that countSockets must agree with. */
function reference(rows: readonly SocketRow[], filter: SocketFilter, grouping: Grouping, skip: (remote: string) => boolean, above: number) {
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

  const filters: [string, SocketFilter][] = [
    ['everything', {}],
    ['SYN_RECV over tcp', { proto: 'tcp', states: new Set(['SYN_RECV']) }],
    ['ESTABLISHED on port 443', { states: new Set(['ESTABLISHED']), ports: new Set([443]) }],
    ['udp', { proto: 'udp' }],
  ];
  const groupings: Grouping[] = [{ by: 'ip' }, { by: 'port' }, { by: 'net', prefix4: 24, prefix6: 64 }, { by: 'net', prefix4: 16, prefix6: 48 }, { by: 'net', prefix4: 0, prefix6: 0 }, { by: 'net', prefix4: 32, prefix6: 128 }];
  const suppressed = CidrSet.parse(['198.18.0.0/16', '2001:db8:1::/48', '192.0.2.3']);

  for (const [name, filter] of filters) {
    for (const grouping of groupings) {
      const label = grouping.by === 'net' ? `net /${grouping.prefix4} /${grouping.prefix6}` : grouping.by;
      it(`counts ${name} by ${label} as a plain count over the rows does, with and without sources left out`, () => {
        const plain = countSockets(table, filter, grouping);
        expect({ ...plain, groups: Object.fromEntries(plain.groups) }).toEqual(reference(rows, filter, grouping, () => false, 0));

        const skip = new Uint8Array(table.addresses.size);
        for (let id = 1; id < skip.length; id++) if (suppressed.coversAddress(parseIp(table.addresses.name(id))!.family, parseIp(table.addresses.name(id))!.value)) skip[id] = 1;
        const skipped = countSockets(table, filter, grouping, { skip, above: 3 });
        const isSuppressed = (remote: string) => suppressed.coversAddress(parseIp(remote)!.family, parseIp(remote)!.value);
        expect({ ...skipped, groups: Object.fromEntries(skipped.groups) }).toEqual(reference(rows, filter, grouping, isSuppressed, 3));
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
    expect(rows.toRows().map((r) => `${r.state} ${r.remote}:${r.remotePort}`)).toEqual(['SYN_RECV 198.51.100.66:41921', 'ESTABLISHED 198.51.100.67:41922']);
    // the last line, cut short inside its state, is named as it was read
    expect(malformed).toEqual([{ line: 4, text: '   2: 0100007F:0050 446433C6:A3C3 0' }]);
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
