// Reads a file a user names (a --from-file list, a policy) to a bound: a regular file, or a pipe or
// FIFO (`<(…)`) read until the bound. A device (/dev/zero was read for ever: 14.6 GB in two
// minutes), a directory or a socket is refused. Errors say why in words, without the path: the
// caller knows how to name the file.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export class ReadBoundedError extends Error {}

function kindOf(stat: import('node:fs').Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

const size = (bytes: number): string => (bytes % (1024 * 1024) === 0 ? `${bytes / 1024 / 1024} MiB` : `${bytes} bytes`);

/** The text of `path`, at most `maxBytes` of UTF-8; throws ReadBoundedError (cause kept) otherwise. */
export function readBounded(path: string, maxBytes: number, what: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ReadBoundedError(
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'expected a regular file (or a pipe), got a directory'
          : (error as Error).message,
      { cause: error },
    );
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() && !stat.isFIFO())
      throw new ReadBoundedError(`expected a regular file (or a pipe), got ${kindOf(stat)}`);
    if (stat.isFile() && stat.size > maxBytes)
      throw new ReadBoundedError(`${stat.size} bytes, more than the ${size(maxBytes)} allowed for ${what}`);
    // In chunks to the bound, also from a pipe, whose size is not known up front.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1 - total));
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (error) {
        throw new ReadBoundedError((error as Error).message, { cause: error });
      }
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new ReadBoundedError(`more than the ${size(maxBytes)} allowed for ${what}`);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
