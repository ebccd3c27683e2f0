// The kernel's SYN-flood counters from /proc/net/netstat (TcpExt). They reveal a spoofed flood that
// no per-source count shows: with SYN cookies each spoofed source holds about one SYN_RECV.

export const FLOOD_COUNTERS = [
  'SyncookiesSent',
  'SyncookiesRecv',
  'SyncookiesFailed',
  'ListenOverflows',
  'ListenDrops',
  'TCPReqQFullDrop',
  'TCPReqQFullDoCookies',
] as const;
export type FloodCounter = (typeof FLOOD_COUNTERS)[number];
export type FloodCounters = Record<FloodCounter, number>;

/** Reads the TcpExt name line and value line pair; counters the kernel lacks read as 0. */
export function parseKernelCounters(text: string): FloodCounters {
  const lines = text.split('\n');
  const result = Object.fromEntries(FLOOD_COUNTERS.map((name) => [name, 0])) as FloodCounters;
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.startsWith('TcpExt:') || !lines[i + 1]!.startsWith('TcpExt:')) continue;
    const names = lines[i]!.trim().split(/\s+/).slice(1);
    const values = lines[i + 1]!.trim().split(/\s+/).slice(1);
    names.forEach((name, k) => {
      if ((FLOOD_COUNTERS as readonly string[]).includes(name))
        result[name as FloodCounter] = Number(values[k] ?? 0) || 0;
    });
    break;
  }
  return result;
}

/** Per-second rates between two samples taken `seconds` apart. */
export function counterRates(before: FloodCounters, after: FloodCounters, seconds: number): FloodCounters {
  const rates = {} as FloodCounters;
  for (const name of FLOOD_COUNTERS) rates[name] = seconds > 0 ? Math.max(0, after[name] - before[name]) / seconds : 0;
  return rates;
}
