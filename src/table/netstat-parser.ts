// Parses `netstat -an` / `-ant` / `-antu` output (net-tools; Windows' `netstat -an` too), skipping
// the UNIX-socket section and the headers.
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
const PROTOS = new Map<string, Proto>([
  ['tcp', 'tcp'],
  ['tcp6', 'tcp'],
  ['udp', 'udp'],
  ['udp6', 'udp'],
  ['TCP', 'tcp'],
  ['UDP', 'udp'],
]);
const IGNORED = /^(?:Active |Proto |unix |raw6? |udpl(?:ite)?6? |\s+Proto )/;

export function parseNetstat(text: TableText): ParsedTable {
  const rows = new SocketTable();
  const malformed: MalformedLine[] = [];
  const cache = new AddressCache(rows.addresses);
  let inUnixSection = false;

  forEachLineOf(text, (line, lineNo) => {
    if (line.startsWith('Active UNIX') || line.startsWith('Active Bluetooth')) inUnixSection = true;
    else if (line.startsWith('Active Internet') || line.startsWith('Active Connections')) inUnixSection = false;
    if (inUnixSection || line.trim() === '' || IGNORED.test(line)) return;

    const tokens = line.trim().split(/\s+/);
    const proto = PROTOS.get(tokens[0]!);
    if (proto === undefined) {
      malformed.push(malformedLine(lineNo, line));
      return;
    }
    // Linux: proto recv-q send-q local foreign [state]; Windows: proto local foreign [state].
    const windows = tokens[0] === 'TCP' || tokens[0] === 'UDP';
    const at = windows ? 1 : 3;
    const local = tokens[at] === undefined ? null : splitEndpoint(tokens[at]!, cache);
    const remote = tokens[at + 1] === undefined ? null : splitEndpoint(tokens[at + 1]!, cache);
    const stateText = tokens[at + 2];
    let state = stateText === undefined ? null : normalizeState(stateText);
    // UDP rows carry no state for unconnected sockets (or a PID/Program column in its place with -p).
    if (proto === 'udp') state = state === 'ESTABLISHED' ? 'ESTABLISHED' : 'UNCONN';
    if (local === null || remote === null || state === null) {
      malformed.push(malformedLine(lineNo, line));
      return;
    }
    const connected = state !== 'LISTEN' && state !== 'UNCONN' && remote.address !== 0;
    rows.push(protoIndex(proto), stateIndex(state), local.port, connected ? remote.address : 0, remote.port);
  });
  return { rows, malformed };
}
