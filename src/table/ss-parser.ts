// Parses `ss -tan` / `-tanu` output (iproute2), with or without the Netid column.
import {
  AddressCache,
  type MalformedLine,
  type ParsedTable,
  type TableText,
  forEachLineOf,
  malformedLine,
  splitEndpoint,
} from './parse-result.js';
import { type Proto, normalizeState } from './socket-row.js';
import { SocketTable, protoIndex, stateIndex } from './socket-table.js';

// A Map, not an object: a row starting with "constructor" or "__proto__" is no socket.
const NETIDS = new Map<string, Proto | null>([
  ...(['tcp', 'udp', 'mptcp'] as const).map((netid) => [netid, netid === 'udp' ? 'udp' : 'tcp'] as const),
  ...['raw', 'u_str', 'u_dgr', 'u_seq', 'p_raw', 'p_dgr', 'nl', 'sctp', 'icmp6', 'v_str', 'v_dgr', 'xdp', 'tipc'].map(
    (netid) => [netid, null] as const,
  ),
]);

export function parseSs(text: TableText, defaultProto: Proto = 'tcp'): ParsedTable {
  const rows = new SocketTable();
  const malformed: MalformedLine[] = [];
  const cache = new AddressCache(rows.addresses);

  forEachLineOf(text, (line, lineNo) => {
    // Continuation lines of -e/-i/-o start with whitespace; the header starts with State or Netid.
    const first = line.charCodeAt(0);
    if (line === '' || first === 32 || first === 9 || line.startsWith('State ') || line.startsWith('Netid ')) return;
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
    const state = tokens[at] === undefined ? null : normalizeState(tokens[at]!);
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
  return { rows, malformed };
}
