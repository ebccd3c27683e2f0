// The daemon's sign of life: one info line after the first scan and every 10 minutes, so an
// operator reading the log sees it scanning even when nothing is banned.
import type { Verdict } from '../detect/detector.js';
import { countTop } from '../table/count-sockets.js';
import type { SocketTable } from '../table/socket-table.js';

/** @default every 10 minutes */
export const HEARTBEAT_EVERY_MS = 10 * 60_000;

export interface Heartbeat {
  readonly fields: {
    readonly event: 'scan';
    readonly sockets: number;
    readonly topSource: string | null;
    readonly topCount: number;
    readonly overThreshold: number;
    readonly activeBans: number;
  };
  readonly msg: string;
}

/** "scan: 583 sockets, top source 198.51.100.77 with 120, nothing over a threshold; 0 active bans". */
export function heartbeat(table: SocketTable, verdicts: readonly Verdict[], activeBans: number): Heartbeat {
  const [top] = countTop(table, {}, { by: 'ip' }, 1).top;
  const over = verdicts.filter((v) => v.kind === 'ban').length;
  const msg =
    `scan: ${table.length} socket${table.length === 1 ? '' : 's'}, ` +
    `${top ? `top source ${top.key} with ${top.count}` : 'no remote sources'}, ` +
    `${over === 0 ? 'nothing' : `${over} source(s)`} over a ` +
    `threshold; ${activeBans} active ban${activeBans === 1 ? '' : 's'}`;
  return {
    fields: {
      event: 'scan',
      sockets: table.length,
      topSource: top?.key ?? null,
      topCount: top?.count ?? 0,
      overThreshold: over,
      activeBans,
    },
    msg,
  };
}
