// The one small protocol the CLI and the daemon share over the control socket: one JSON request
// line, one JSON response line.

import type { FleetStatus } from '../fleet/fleet-sync.js';

export const CONTROL_SOCKET = 'control.sock';
export const LOCK_FILE = 'state.lock';

/** A ban's reason is kept with every ban and printed by `list`: a note, not a document. */
export const MAX_REASON_LENGTH = 200;

/** Why a --reason cannot be used, or null; the daemon checks the same bound. */
export function reasonProblem(reason: string): string | null {
  return reason.length > MAX_REASON_LENGTH
    ? `--reason is ${reason.length} characters long; at most ` +
        `${MAX_REASON_LENGTH} are kept with a ban (a note, not a document)`
    : null;
}

/** The mode a command was told with --enforce / --dry-run; the daemon refuses to act in another. */
type Told = { readonly mode?: 'dry-run' | 'enforce' };

export type Request = Told &
  (
    | {
        readonly cmd: 'ban';
        readonly targets: string[];
        readonly ttl?: number;
        readonly reason?: string;
        readonly force?: boolean;
      }
    | { readonly cmd: 'unban'; readonly targets: string[]; readonly grace?: number }
    | { readonly cmd: 'list' }
    | { readonly cmd: 'flush' }
    | { readonly cmd: 'status' }
    | { readonly cmd: 'events' }
  );

export type Response =
  | { readonly ok: true; readonly result: unknown; readonly mode: 'dry-run' | 'enforce' }
  | { readonly ok: false; readonly error: string; readonly exitCode: number };

/**
 * Set on every result of a change the daemon made but could not save (a full disk): the firewall
 * has it, the daemon keeps retrying the save, and it is lost if the daemon stops first.
 */
interface Unsaved {
  readonly unsaved?: string;
}

export interface BanResult extends Unsaved {
  readonly target: string;
  readonly status: 'banned' | 'already' | 'refused';
  readonly reason?: string;
  readonly expiresAt?: string;
}

export interface UnbanResult extends Unsaved {
  readonly target: string;
  readonly status: 'lifted' | 'not-banned';
}

export interface FlushResult extends Unsaved {
  readonly cleared: number;
}

export interface ListedBan {
  readonly target: string;
  readonly rule: string;
  readonly reason: string | null;
  readonly count: number;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly dryRun: boolean;
  /** local, fleet:<host> for another floodgate's ban, or the fleet engine's origin (crowdsec, cscli, …). */
  readonly source: string;
}

export interface StatusResult {
  /** The running daemon, with its memory in bytes (process.memoryUsage()); null when none answered. */
  readonly daemon: {
    readonly pid: number;
    readonly since: string;
    readonly memory?: {
      readonly rss: number;
      readonly heapUsed: number;
      readonly heapTotal: number;
      readonly external: number;
    };
  } | null;
  readonly mode: 'dry-run' | 'enforce';
  readonly backend: string;
  readonly interval: string;
  readonly active: number;
  readonly refused: number;
  readonly queued: number;
  readonly lastScan: { readonly at: string; readonly durationMs: number; readonly sockets: number } | null;
  /** Saving the ban store has failed since `since` (a full disk); absent when it is saved. */
  readonly unsaved?: { readonly since: string; readonly message: string };
  /** The fleet sync (connected, last pull, outbox size, last error); absent without a fleet. */
  readonly fleet?: FleetStatus;
}

/** One of the daemon's latest events, as the `events` request returns them (oldest first). */
export interface RecentEvent {
  readonly at: string;
  readonly level: 'info' | 'warn' | 'error' | 'debug';
  /** ban, unban, expire, refused, attack, error, reconcile, flush, reload, … */
  readonly event: string;
  readonly target?: string;
  /** The log line's text. */
  readonly msg: string;
}
