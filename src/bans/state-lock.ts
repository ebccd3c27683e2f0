// One writer at a time per state directory: a lock file holding the owner's pid. A lock whose owner
// is dead (kill -9) is taken over; a live owner makes the caller wait, then fail with a clear error.
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError } from '../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A process killed with -9 but not yet reaped by its parent is a zombie: it holds nothing.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

export interface StateLock {
  readonly path: string;
  release(): void;
}

/** The pid holding the lock, or null when it is free or its owner is dead. */
export function lockOwner(path: string): number | null {
  const pid = readPid(path);
  return pid !== null && alive(pid) ? pid : null;
}

function readPid(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export function tryLock(path: string): StateLock | null {
  // The lock appears with its pid already in it (written aside, then hard-linked into place), so a
  // second process never sees an empty lock and takes it for a dead one.
  const mine = `${path}.${process.pid}`;
  writeFileSync(mine, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(mine, path);
        let released = false;
        return {
          path,
          release: () => {
            if (released) return;
            released = true;
            try {
              if (readPid(path) === process.pid) unlinkSync(path);
            } catch {
              // already gone
            }
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const owner = readPid(path);
        if (owner !== null && alive(owner)) return null;
        // The owner died without releasing it (kill -9). Remove the stale lock, unless another
        // process has replaced it meanwhile, and try once more.
        try {
          if (readPid(path) === owner) unlinkSync(path);
        } catch {
          // someone else removed it first
        }
      }
    }
    return null;
  } finally {
    try {
      unlinkSync(mine);
    } catch {
      // nothing to clean
    }
  }
}

export async function acquireLock(path: string, waitMs: number, onWait?: () => Promise<boolean>): Promise<StateLock> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const lock = tryLock(path);
    if (lock !== null) return lock;
    if (onWait !== undefined && (await onWait())) throw new ConflictError('retry through the daemon');
    if (Date.now() >= deadline) {
      throw new ConflictError(`the state directory is locked by process ${lockOwner(path) ?? '(unknown)'} (${path}); try again, or stop that process`);
    }
    await sleep(50);
  }
}
