// `floodgate ban TARGET… [--ttl] [--reason] [--from-file]`: manual bans, validated before anything runs.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { BanResult } from '../daemon/protocol.js';
import { cidrContains, formatCidr } from '../net/ip.js';
import { parseTarget, parseTargetList } from '../net/target.js';
import { type CommonOptions, act } from './act.js';
import { type SessionLookup, findSshSession } from './ssh-session.js';

export interface BanOptions extends CommonOptions {
  readonly ttl?: number;
  readonly reason?: string;
  readonly fromFile?: string;
  readonly force?: boolean;
}

export { sshClientAddress } from './ssh-session.js';

/** The largest --from-file: 16 MiB, about a million targets (the README's "Limits"). */
export const MAX_TARGET_FILE_BYTES = 16 * 1024 * 1024;

/**
 * A --from-file list, read up to MAX_TARGET_FILE_BYTES: a regular file, or a pipe or FIFO
 * (`--from-file <(…)`) read until that bound. A device (/dev/zero), a directory or a socket is
 * refused: /dev/zero was read for ever (14.6 GB in two minutes).
 */
export function readTargetFile(path: string, maxBytes = MAX_TARGET_FILE_BYTES): string {
  const cannot = (why: string, cause?: unknown): UsageError => new UsageError(`cannot read --from-file ${path}: ${why}`, { cause });
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw cannot(code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'expected a file of targets, got a directory' : (error as Error).message, error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() && !stat.isFIFO()) {
      const kind = stat.isDirectory() ? 'a directory' : stat.isCharacterDevice() ? 'a character device' : stat.isBlockDevice() ? 'a block device' : stat.isSocket() ? 'a socket' : 'not a regular file';
      throw cannot(`expected a regular file (or a pipe) of targets, got ${kind}`);
    }
    if (stat.isFile() && stat.size > maxBytes) {
      throw cannot(`${stat.size} bytes; a list of targets is at most ${maxBytes} bytes (${maxBytes / 1024 / 1024} MiB): split it`);
    }
    // Read in chunks to the bound, also from a pipe (whose size is not known up front).
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1 - total));
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (error) {
        throw cannot((error as Error).message, error);
      }
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) throw cannot(`more than ${maxBytes} bytes; a list of targets is at most ${maxBytes / 1024 / 1024} MiB: split it`);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export async function banCommand(targetTexts: string[], options: BanOptions, lookup: SessionLookup = {}): Promise<void> {
  const targets = targetTexts.map((text) => parseTarget(text, options.force));
  if (options.fromFile !== undefined) {
    const text = readTargetFile(options.fromFile);
    // A loop, not push(...list): spreading 125k+ arguments overflows V8's stack.
    for (const target of parseTargetList(text, options.fromFile, options.force)) targets.push(target);
  }
  if (targets.length === 0) throw new UsageError('nothing to ban: give one or more targets, or --from-file FILE');
  if (!options.force) {
    const session = findSshSession(lookup);
    if (session.kind === 'found') {
      const covering = targets.find((target) => cidrContains(target, session.address));
      if (covering) throw new UsageError(`refusing to ban ${formatCidr(covering)}: it covers ${formatCidr(session.address)}, the address of your SSH session (${session.source}; --force to ban it anyway)`);
    } else if (session.kind === 'unknown') {
      process.stderr.write(`floodgate: warning: the guard against banning your own SSH session could not run: ${session.why}. Check that no target covers your address.\n`);
    }
  }
  const { result, via, mode } = await act(
    { cmd: 'ban', targets: targets.map(formatCidr), ...(options.ttl !== undefined && { ttl: options.ttl }), ...(options.reason !== undefined && { reason: options.reason }), ...(options.force && { force: true }) },
    options,
  );
  const results = result as BanResult[];
  const counts = { banned: 0, already: 0, refused: 0 };
  for (const r of results) {
    counts[r.status]++;
    if (results.length <= 50 || r.status === 'refused') {
      const line = r.status === 'refused' ? `refused ${r.target}: ${r.reason}` : `${r.status === 'banned' ? 'banned' : 'already banned'} ${r.target} until ${r.expiresAt}`;
      process.stdout.write(`${line}\n`);
    }
  }
  process.stdout.write(`${counts.banned} banned, ${counts.already} already banned, ${counts.refused} refused${via === 'daemon' ? ' (through the running daemon)' : ''}${mode === 'dry-run' ? ' — dry-run: the firewall was not changed (use --enforce)' : ''}\n`);
  if (counts.refused > 0) process.exitCode = 1;
}
