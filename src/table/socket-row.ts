// One socket of the kernel's connection table, as every parser returns it, and the state names.

export type Proto = 'tcp' | 'udp';

/** States as netstat spells them. UNCONN is an unconnected UDP socket (netstat leaves the column blank). */
export const STATES = [
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'UNCONN',
] as const;
export type SocketState = (typeof STATES)[number];

export interface SocketRow {
  readonly proto: Proto;
  readonly state: SocketState;
  readonly localPort: number;
  /** Canonical remote address; '' when the socket has no peer (LISTEN, unconnected UDP). */
  readonly remote: string;
  readonly remotePort: number;
}

/** The kernel's TCP state numbers (include/net/tcp_states.h); 0x0C, NEW_SYN_RECV, is shown as SYN_RECV. */
export const KERNEL_STATES: readonly (SocketState | undefined)[] = [
  undefined,
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'SYN_RECV',
];

const ALIASES = new Map<string, SocketState>(
  Object.entries({
    ESTAB: 'ESTABLISHED',
    'SYN-SENT': 'SYN_SENT',
    'SYN-RECV': 'SYN_RECV',
    SYN_RECEIVED: 'SYN_RECV',
    'SYN-RECEIVED': 'SYN_RECV',
    'FIN-WAIT-1': 'FIN_WAIT1',
    'FIN-WAIT-2': 'FIN_WAIT2',
    FIN_WAIT_1: 'FIN_WAIT1',
    FIN_WAIT_2: 'FIN_WAIT2',
    'TIME-WAIT': 'TIME_WAIT',
    'CLOSE-WAIT': 'CLOSE_WAIT',
    'LAST-ACK': 'LAST_ACK',
    UNCONNECTED: 'UNCONN',
    LISTENING: 'LISTEN',
    CLOSED: 'CLOSE',
  } satisfies Record<string, SocketState>),
);

const KNOWN = new Set<string>(STATES);

/**
 * Any spelling a user or a tool uses (netstat, ss, and SYN-RECEIVED
 * as older tools and write-ups spell it), case-insensitive.
 */
export function normalizeState(text: string): SocketState | null {
  const upper = text.toUpperCase();
  if (KNOWN.has(upper)) return upper as SocketState;
  return ALIASES.get(upper) ?? null;
}
