// Parses `ss -tan` / `-tanu` output (iproute2), with or without the Netid column.
import { AddressCache, type MalformedLine, type ParsedTable, forEachLine, splitEndpoint } from './parse-result.js';
import { type Proto, type SocketRow, normalizeState } from './socket-row.js';

const NETIDS: Record<string, Proto | null> = { tcp: 'tcp', udp: 'udp', raw: null, u_str: null, u_dgr: null, u_seq: null, p_raw: null, p_dgr: null, nl: null, mptcp: 'tcp', sctp: null, icmp6: null, v_str: null, v_dgr: null, xdp: null, tipc: null };

export function parseSs(text: string, defaultProto: Proto = 'tcp'): ParsedTable {
  const rows: SocketRow[] = [];
  const malformed: MalformedLine[] = [];
  const cache = new AddressCache();

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
    const connected = state !== 'LISTEN' && state !== 'UNCONN' && remote.address !== '';
    rows.push({
      proto,
      state: proto === 'udp' && state !== 'ESTABLISHED' ? 'UNCONN' : state,
      localPort: local.port,
      remote: connected ? remote.address : '',
      remotePort: connected ? remote.port : 0,
    });
  });
  return { rows, malformed };
}
