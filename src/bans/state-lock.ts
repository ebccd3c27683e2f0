// One writer at a time per state directory: a kernel lock (flock(2)) on the lock file. The kernel
// drops it when its holder dies, kill -9 and power loss included, so a lock is never stale: a pid left
// in the file by a crash, and reused after a reboot by some other process, holds nothing. The file also
// carries the holder's pid, for messages only.
//
// Node has no flock(). The util-linux `flock` tool locks a descriptor we pass it as its fd 3: a flock
// belongs to the open file description, which our descriptor shares, so the lock stays ours after the
// tool exits and goes when our descriptor is closed (by release(), or by the kernel when we die). No
// native addon, so a bundled single executable works too.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackendUnavailableError, ConflictError } from '../errors.js';
import { checkStateStats, stateDirError } from './state-file.js';

export interface StateLock {
  readonly path: string;
  release(): void;
}

/** The exit code `flock -E` is told to use for "held by someone else". */
const BUSY = 75;

/** util-linux's flock, by absolute path where it normally is: root's PATH may be anything. */
const FLOCK = ['/usr/bin/flock', '/bin/flock'].find((candidate) => existsSync(candidate)) ?? 'flock';

/** The pid written in the lock file by its last holder, or null. Only for messages: it proves nothing. */
export function lockOwner(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export function tryLock(path: string): StateLock | null {
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink planted in the state directory is refused, never written through. No
    // O_TRUNC: the holder's pid stays readable until we hold the lock.
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    throw stateDirError(error, path, 'open the lock file');
  }
  let locked = false;
  try {
    checkStateStats(path, fstatSync(fd), 'file');
    const result = spawnSync(FLOCK, ['--exclusive', '--nonblock', '--conflict-exit-code', String(BUSY), '3'], {
      stdio: ['ignore', 'ignore', 'pipe', fd],
    });
    if (result.error !== undefined) {
      throw new BackendUnavailableError(
        'cannot lock the state directory: running flock failed ' +
          `(${(result.error as NodeJS.ErrnoException).code ?? result.error.message}); install util-linux`,
        { cause: result.error },
      );
    }
    if (result.status === BUSY) return null;
    if (result.status !== 0) {
      throw new BackendUnavailableError(
        `cannot lock ${path}: flock exited with ${result.status ?? result.signal}: ${result.stderr.toString().trim()}`,
      );
    }
    locked = true;
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } finally {
    if (!locked) closeSync(fd);
  }
  let released = false;
  return {
    path,
    release: () => {
      if (released) return;
      released = true;
      // The file stays: removing it would let a waiter lock the old inode while a newcomer locks a
      // new one. Closing the descriptor is what lets the next holder in.
      closeSync(fd);
    },
  };
}

export async function acquireLock(path: string, waitMs: number, onWait?: () => Promise<boolean>): Promise<StateLock> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const lock = tryLock(path);
    if (lock !== null) return lock;
    if (onWait !== undefined && (await onWait())) throw new ConflictError('retry through the daemon');
    if (Date.now() >= deadline) {
      throw new ConflictError(
        `the state directory is locked by process ${lockOwner(path) ?? '(unknown)'} ` +
          `(${path}); try again, or stop that process`,
      );
    }
    await sleep(50);
  }
}
