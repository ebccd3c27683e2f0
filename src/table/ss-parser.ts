// Parses `ss -tan` / `-tanu` output (iproute2), with or without the Netid column.
import { AddressCache, type MalformedLine, type ParsedTable, forEachLine, splitEndpoint } from './parse-result.js';
import { type Proto, normalizeState } from './socket-row.js';
import { SocketTable, protoIndex, stateIndex } from './socket-table.js';

const NETIDS: Record<string, Proto | null> = { tcp: 'tcp', udp: 'udp', raw: null, u_str: null, u_dgr: null, u_seq: null, p_raw: null, p_dgr: null, nl: null, mptcp: 'tcp', sctp: null, icmp6: null, v_str: null, v_dgr: null, xdp: null, tipc: null };

export function parseSs(text: string, defaultProto: Proto = 'tcp'): ParsedTable {
  const rows = new SocketTable();
  const malformed: MalformedLine[] = [];
  const cache = new AddressCache(rows.addresses);

  forEachLine(text, (line, lineNo) => {
    // Continuation lines of -e/-i/-o start with whitespace; the header starts with State or Netid.
    const first = line.charCodeAt(0);
    if (line === '' || first === 32 || first === 9 || line.startsWith('State ') || line.startsWith('Netid ')) return;
    const tokens = line.split(/\s+/);
    let proto = defaultProto;
    let at = 0;
    if (tokens[0]! in NETIDS) {
      const netid = NETIDS[tokens[0]!];
      if (netid === null) return; // not an internet socket
      proto = netid!;
      at = 1;
    }
    const state = normalizeState(tokens[at]!);
    const local = tokens[at + 3] === undefined ? null : splitEndpoint(tokens[at + 3]!, cache);
    const remote = tokens[at + 4] === undefined ? null : splitEndpoint(tokens[at + 4]!, cache);
    if (state === null || local === null || remote === null) {
      malformed.push({ line: lineNo, text: line });
      return;
    }
    const connected = state !== 'LISTEN' && state !== 'UNCONN' && remote.address !== 0;
    rows.push(protoIndex(proto), stateIndex(proto === 'udp' && state !== 'ESTABLISHED' ? 'UNCONN' : state), local.port, connected ? remote.address : 0, remote.port);
  });
  return { rows, malformed };
}
