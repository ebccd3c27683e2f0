// Atomic writes for the state directory: temporary file, fsync, rename, fsync of the directory, so
// that a crash or kill -9 at any instant leaves either the old state or the new one.
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes `data`, given whole or in pieces (a large state file need never be one string). */
export function writeFileAtomic(path: string, data: string | Iterable<string>, mode = 0o600): void {
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w', mode);
  try {
    for (const piece of typeof data === 'string' ? [data] : data) writeSync(fd, piece);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
