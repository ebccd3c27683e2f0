// Files in the state directory: atomic writes (a temporary file, fsync, rename, fsync of the
// directory, so that a crash or kill -9 at any instant leaves either the old state or the new one),
// and the messages for a state directory we may not use.
import { randomBytes } from 'node:crypto';
import {
  type Stats,
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { BackendUnavailableError, UsageError } from '../errors.js';

/** "root (uid 0)": the user floodgate runs as, for messages. */
export function runningUser(): string {
  const uid = process.geteuid?.() ?? -1;
  try {
    return `${userInfo().username} (uid ${uid})`;
  } catch {
    return `uid ${uid}`;
  }
}

/** "nobody (uid 65534)" for a file's owner, from /etc/passwd when it names the uid. */
function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (id === String(uid) && name) return `${name} (uid ${uid})`;
    }
  } catch {
    // no passwd file: the number alone
  }
  return `uid ${uid}`;
}

/**
 * sshd's StrictModes for the state directory and its files: owned by the user floodgate runs as and
 * writable by nobody else. Another user who could change them would choose what floodgate (often
 * root) bans, which policy and reload command a manual command runs, and where it writes.
 */
export function checkStateStats(path: string, stats: Stats, kind: 'directory' | 'file'): void {
  const me = process.geteuid?.();
  if (me === undefined) return;
  const wanted = kind === 'directory' ? stats.isDirectory() : stats.isFile();
  if (!wanted)
    throw new UsageError(
      `the state ${kind} ${path} is not a ${kind === 'directory' ? 'directory' : 'regular file'}: ` +
        'remove it, or choose another --state-dir',
    );
  if (stats.uid !== me) {
    throw new UsageError(
      `the state ${kind} ${path} is owned by ${userName(stats.uid)}, not by ${runningUser()}, ` +
        'the user floodgate runs as; another user must not control what floodgate bans and runs: ' +
        `run floodgate as its owner, or \`chown ${me} ${path}\`, or choose another --state-dir`,
    );
  }
  if ((stats.mode & 0o022) !== 0) {
    throw new UsageError(
      `the state ${kind} ${path} is writable by its group or by others (mode ` +
        `${(stats.mode & 0o7777).toString(8).padStart(4, '0')}); any of them ` +
        `could control what floodgate bans and runs: \`chmod go-w ${path}\``,
    );
  }
}

/** Checks the state directory and, as sshd does, every directory above it. */
export function checkStatePath(path: string, kind: 'directory'): void {
  const me = process.geteuid?.();
  const absolute = resolve(path);
  let stats: Stats;
  try {
    stats = statSync(absolute);
  } catch (error) {
    throw stateDirError(error, absolute, `use the state ${kind}`);
  }
  checkStateStats(path, stats, kind);
  // A parent another user can write lets that user rename the state directory away and put their own
  // in its place. /tmp is fine: its sticky bit keeps others from renaming what is ours.
  for (let parent = dirname(absolute); ; parent = dirname(parent)) {
    let above: Stats;
    try {
      above = statSync(parent);
    } catch (error) {
      throw stateDirError(error, parent, 'use the state directory under');
    }
    if (above.uid !== 0 && above.uid !== me) {
      throw new UsageError(
        `${parent}, above the state directory ${path}, is owned by ${userName(above.uid)}, who could replace ` +
          `the state directory: choose a --state-dir whose parent directories belong to root or to ${runningUser()}`,
      );
    }
    if ((above.mode & 0o022) !== 0 && (above.mode & 0o1000) === 0) {
      throw new UsageError(
        `${parent}, above the state directory ${path}, is writable by its group or by others without ` +
          `the sticky bit (mode ${(above.mode & 0o7777).toString(8).padStart(4, '0')}), so they ` +
          `could replace the state directory: \`chmod go-w ${parent}\`, or choose another --state-dir`,
      );
    }
    if (parent === dirname(parent)) break;
  }
}

/**
 * Reads a file of the state directory without following a symlink, after checking who owns it;
 * null when there is none.
 */
export function readStateFile(path: string): string | null {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted under the name does not hang us (a regular file ignores it).
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw stateDirError(error, path, 'read');
  }
  try {
    checkStateStats(path, fstatSync(fd), 'file');
    return readFileSync(fd, 'utf8');
  } catch (error) {
    throw stateDirError(error, path, 'read');
  } finally {
    closeSync(fd);
  }
}

/**
 * A permission error on a state file becomes a message naming the path and the user floodgate runs
 * as; any other error is returned unchanged.
 */
export function stateDirError(error: unknown, path: string, doing: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') {
    return new UsageError(
      `cannot ${doing} ${path}: permission denied for ${runningUser()}, the user floodgate ` +
        `runs as; run floodgate as the state directory's owner, or choose another with --state-dir`,
      { cause: error },
    );
  }
  if (code === 'ELOOP')
    return new UsageError(
      `cannot ${doing} ${path}: it is a symbolic link, which floodgate never follows in its state directory; remove it`,
      { cause: error },
    );
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new BackendUnavailableError(
      `cannot ${doing} ${path}: its file system is full (${code}); free some space there`,
      { cause: error },
    );
  }
  if (code === 'EROFS')
    return new UsageError(`cannot ${doing} ${path}: the file system is read-only; choose another --state-dir`, {
      cause: error,
    });
  return error;
}

/** Writes `data`, given whole or in pieces (a large state file need never be one string). */
export function writeFileAtomic(path: string, data: string | Iterable<string>, mode = 0o600): void {
  // A new name each time, created O_EXCL|O_NOFOLLOW: a file or symlink planted under the name is
  // never opened, let alone truncated.
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let fd: number;
  try {
    fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (error) {
    throw stateDirError(error, temporary, 'create');
  }
  try {
    try {
      for (const piece of typeof data === 'string' ? [data] : data) writeSync(fd, piece);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    // A full disk (ENOSPC), EIO: the temporary file goes, the old state stays.
    try {
      unlinkSync(temporary);
    } catch {
      // already gone
    }
    throw stateDirError(error, path, 'write');
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
