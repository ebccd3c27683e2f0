// One writer at a time per state directory: a lock file holding the owner's pid. A lock whose owner
// is dead (kill -9) is taken over; a live owner makes the caller wait, then fail with a clear error.
import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
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
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export function tryLock(path: string): StateLock | null {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return {
        path,
        release: () => {
          if (released) return;
          released = true;
          try {
            if (lockOwner(path) === process.pid) unlinkSync(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (lockOwner(path) !== null) return null;
      // The owner died without releasing it: remove the stale lock and try once more.
      try {
        unlinkSync(path);
      } catch {
        // someone else removed it first
      }
    }
  }
  return null;
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
