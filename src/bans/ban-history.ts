// The ban history: the last bans, unbans and expiries of a state directory, with their reasons, as
// a capped JSON-lines file (`history.jsonl`), so that `floodgate explain` can say whether a target was
// banned before, after the ban itself has left the store. It is the operator's record: the daemon and
// the manual commands that run without one both append to it.
import { closeSync, constants, fstatSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { LoggedEvent } from '../log-events.js';
import { checkStateStats, readStateFile, stateDirError, writeFileAtomic } from './state-file.js';

export const HISTORY_FILE = 'history.jsonl';

/** Entries kept after a trim; the file is trimmed to this when it grows past twice as many. */
export const HISTORY_KEEP = 2000;

/** One line of the history file. */
export interface HistoryEntry {
  readonly at: string;
  readonly event: 'ban' | 'unban' | 'expire';
  readonly target: string;
  readonly rule: string | null;
  readonly count: number | null;
  readonly reason: string | null;
  readonly ttl: string | null;
  readonly expiresAt: string | null;
  readonly dryRun: boolean;
  /** An unban's grace period: the detector leaves the target alone until then. */
  readonly graceUntil?: string;
}

export const historyFile = (stateDir: string): string => join(stateDir, HISTORY_FILE);

const RECORDED = new Set(['ban', 'unban', 'expire']);

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** Each millisecond formatted once: a list of 10k bans is logged within a few of them. */
let lastAt = { ms: Number.NaN, text: '' };
function formatAt(ms: number): string {
  if (ms !== lastAt.ms) lastAt = { ms, text: new Date(ms).toISOString() };
  return lastAt.text;
}

/** The history entry for a logged event, or null for events the history does not keep. */
export function historyEntry(event: LoggedEvent, now: number): HistoryEntry | null {
  const f = event.fields;
  if (!RECORDED.has(f.event) || typeof f.target !== 'string') return null;
  // No spread: it cost V8 several µs per entry, most of a pulled fleet ban's time here.
  const entry: { -readonly [K in keyof HistoryEntry]: HistoryEntry[K] } = {
    at: formatAt(now),
    event: f.event as HistoryEntry['event'],
    target: f.target,
    rule: text(f.rule),
    count: typeof f.count === 'number' ? f.count : null,
    reason: text(f.reason),
    ttl: text(f.ttl),
    expiresAt: text(f.expiresAt),
    dryRun: f.dryRun === true,
  };
  if (typeof f.graceUntil === 'string') entry.graceUntil = f.graceUntil;
  return entry;
}

/**
 * Appends entries in one write. The file is created O_EXCL|O_NOFOLLOW (a file or symlink planted
 * under the name is refused, never followed) and an existing one is opened O_NOFOLLOW and checked
 * like every state file (owner, mode). Past 2 × `keep` lines it is rewritten atomically with the last
 * `keep`.
 */
export function appendHistory(stateDir: string, entries: readonly HistoryEntry[], keep = HISTORY_KEEP): void {
  if (entries.length === 0) return;
  const path = historyFile(stateDir);
  let fd: number;
  try {
    try {
      fd = openSync(
        path,
        constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    }
  } catch (error) {
    throw stateDirError(error, path, 'write');
  }
  let size: number;
  try {
    const stats = fstatSync(fd);
    checkStateStats(path, stats, 'file');
    // A burst of 10k bans keeps only its last `keep`: one trim, not one per line.
    const lines = (entries.length > keep ? entries.slice(-keep) : entries)
      .map((entry) => `${JSON.stringify(entry)}\n`)
      .join('');
    writeSync(fd, lines);
    size = stats.size + Buffer.byteLength(lines);
  } catch (error) {
    throw stateDirError(error, path, 'write');
  } finally {
    closeSync(fd);
  }
  // Counting lines costs a read: only when the file may be past its cap (an entry is ~250 bytes).
  if (size > keep * 2 * 150) trimHistory(path, keep);
}

function trimHistory(path: string, keep: number): void {
  const content = readStateFile(path) ?? '';
  const lines = content.split('\n').filter((line) => line !== '');
  if (lines.length <= keep * 2) return;
  writeFileAtomic(path, `${lines.slice(-keep).join('\n')}\n`);
}

/** Every readable entry, oldest first; a damaged line (a crash mid-write) is skipped. */
export function readHistory(stateDir: string): HistoryEntry[] {
  const content = readStateFile(historyFile(stateDir));
  if (content === null) return [];
  const out: HistoryEntry[] = [];
  for (const line of content.split('\n')) {
    if (line === '') continue;
    try {
      const entry = JSON.parse(line) as HistoryEntry;
      if (
        typeof entry === 'object' &&
        entry !== null &&
        typeof entry.target === 'string' &&
        typeof entry.event === 'string'
      )
        out.push(entry);
    } catch {
      // a torn last line
    }
  }
  return out;
}

/**
 * Collects history entries from the event tap and appends them once per turn of the event loop: a
 * tick that bans 10k sources is one write. A failed write (a full disk) is reported through
 * `onError` (once while it lasts) and never reaches the ban that caused it.
 */
export class HistoryWriter {
  private pending: HistoryEntry[] = [];
  private scheduled = false;
  /** A failure is reported once, not at every tick of a full disk; a success re-arms it. */
  private failing = false;

  constructor(
    private readonly stateDir: string,
    private readonly onError: (error: Error) => void,
    private readonly clock: () => number = Date.now,
  ) {}

  take(event: LoggedEvent): void {
    const entry = historyEntry(event, this.clock());
    if (entry === null) return;
    this.pending.push(entry);
    // A ban --from-file of a million targets keeps only the entries the file would keep anyway.
    if (this.pending.length >= 2 * HISTORY_KEEP) this.pending = this.pending.slice(-HISTORY_KEEP);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    const entries = this.pending;
    this.pending = [];
    try {
      appendHistory(this.stateDir, entries);
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.onError(error as Error);
      this.failing = true;
    }
  }
}
