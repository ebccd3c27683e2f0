// Parses `ss -tan` / `-tanu` output (iproute2), with or without the Netid column, and with or without
// the State column: ss prints none when asked for one state (`ss -tan state syn-recv`), and then the
// caller says which state the rows are in.
import {
  AddressCache,
  type MalformedLine,
  type ParsedTable,
  type TableText,
  forEachLineOf,
  malformedLine,
  splitEndpoint,
} from './parse-result.js';
import { type Proto, type SocketState, normalizeState } from './socket-row.js';
import { SocketTable, protoIndex, stateIndex } from './socket-table.js';

// A Map, not an object: a row starting with "constructor" or "__proto__" is no socket.
const NETIDS = new Map<string, Proto | null>([
  ...(['tcp', 'udp', 'mptcp'] as const).map((netid) => [netid, netid === 'udp' ? 'udp' : 'tcp'] as const),
  ...['raw', 'u_str', 'u_dgr', 'u_seq', 'p_raw', 'p_dgr', 'nl', 'sctp', 'icmp6', 'v_str', 'v_dgr', 'xdp', 'tipc'].map(
    (netid) => [netid, null] as const,
  ),
]);

export function parseSs(
  text: TableText,
  defaultProto: Proto = 'tcp',
  /** The state of every row when the output has no State column; see RowsWanted.ssState. */
  stateless?: SocketState,
): ParsedTable {
  const rows = new SocketTable();
  const malformed: MalformedLine[] = [];
  const cache = new AddressCache(rows.addresses);
  // Set by a header without a State column ("Recv-Q Send-Q Local Address:Port …"): its rows start
  // with the queues, and their state is `stateless`.
  let noStateColumn = false;

  forEachLineOf(text, (line, lineNo) => {
    // Continuation lines of -e/-i/-o start with whitespace; the header starts with State, Netid or Recv-Q.
    const first = line.charCodeAt(0);
    if (line === '' || first === 32 || first === 9) return;
    if (line.startsWith('State ') || line.startsWith('Netid ') || line.startsWith('Recv-Q ')) {
      noStateColumn = STATELESS_HEADER.test(line);
      return;
    }
    const tokens = line.split(/\s+/);
    let proto = defaultProto;
    let at = 0;
    const netid = NETIDS.get(tokens[0]!);
    if (netid === null) return; // not an internet socket
    if (netid !== undefined) {
      proto = netid;
      at = 1;
    }
    // A capture cut off after the Netid ("tcp", as `head -c` leaves it) has no state at all.
    let state: SocketState | null;
    if (noStateColumn) {
      state = stateless ?? null;
      at--; // the queues come first: the endpoints are one column further left
    } else state = tokens[at] === undefined ? null : normalizeState(tokens[at]!);
    const local = tokens[at + 3] === undefined ? null : splitEndpoint(tokens[at + 3]!, cache);
    const remote = tokens[at + 4] === undefined ? null : splitEndpoint(tokens[at + 4]!, cache);
    if (state === null || local === null || remote === null) {
      malformed.push(malformedLine(lineNo, line));
      return;
    }
    const connected = state !== 'LISTEN' && state !== 'UNCONN' && remote.address !== 0;
    rows.push(
      protoIndex(proto),
      stateIndex(proto === 'udp' && state !== 'ESTABLISHED' ? 'UNCONN' : state),
      local.port,
      connected ? remote.address : 0,
      remote.port,
    );
  });
  return { rows, malformed, ...(noStateColumn && stateless === undefined ? { noStateColumn: true } : {}) };
}

/** The header of ss output without a State column, with or without the Netid column. */
const STATELESS_HEADER = /^(?:Netid\s+)?Recv-Q\s+Send-Q\s/;
