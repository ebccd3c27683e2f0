// A state directory's identity in the firewall: a short random id kept in `instance-id`, from which
// the rule comment, set and table names are made (firewall/instance.ts). The default directory
// keeps the plain `floodgate` names, so that the rules it made before instances existed stay its own.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { type FirewallInstance, INSTANCE_ID, firewallInstance } from '../firewall/instance.js';

export const INSTANCE_FILE = 'instance-id';

/** root's state directory: the one instance whose firewall names have no id. */
export const ROOT_STATE_DIR = '/var/lib/floodgate';

export function isRootStateDir(stateDir: string): boolean {
  return resolve(stateDir) === ROOT_STATE_DIR;
}

/**
 * The firewall instance of `stateDir`, making its id the first time (the directory must exist).
 * The file is made exclusively and never through a symlink: written in full under a temporary
 * name, then linked into place, so that a concurrent reader sees either no file or the whole id.
 */
export function stateDirInstance(stateDir: string): FirewallInstance {
  if (isRootStateDir(stateDir)) return firewallInstance(null);
  const file = join(stateDir, INSTANCE_FILE);
  const existing = readInstanceId(file);
  if (existing !== null) return firewallInstance(existing);
  const id = randomBytes(4).toString('hex');
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  let fd: number;
  try {
    fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    throw new UsageError(
      `cannot create ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): ` +
        'the state directory must be writable',
      { cause: error },
    );
  }
  try {
    writeSync(fd, `${id}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, file);
  } catch (error) {
    // Another floodgate made it first: its id is this directory's id.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new UsageError(
        `cannot create ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        { cause: error },
      );
  } finally {
    unlinkSync(temporary);
  }
  const kept = readInstanceId(file);
  if (kept === null) throw new UsageError(`${file} disappeared while it was being created`);
  return firewallInstance(kept);
}

/**
 * The firewall instance of `stateDir` without making an id: null when it has none yet (or this
 * user cannot read it). For commands that only report, like `status`.
 */
export function peekStateDirInstance(stateDir: string): FirewallInstance | null {
  if (isRootStateDir(stateDir)) return firewallInstance(null);
  try {
    const id = readInstanceId(join(stateDir, INSTANCE_FILE));
    return id === null ? null : firewallInstance(id);
  } catch {
    return null;
  }
}

/** The id in `file`, or null when there is none yet; anything else there is refused, not replaced. */
function readInstanceId(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP')
      throw new UsageError(
        `${file} is a symbolic link: floodgate keeps its instance id in ` +
          'a plain file and does not follow links there; remove the link',
      );
    throw new UsageError(`cannot read ${file} (${code ?? (error as Error).message})`, { cause: error });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw new UsageError(`${file} is not a plain file: floodgate keeps its instance id there; remove it`);
    const uid = process.getuid?.();
    if (uid !== undefined && stat.uid !== uid)
      throw new UsageError(
        `${file} belongs to uid ${stat.uid}, not to this user (uid ${uid}): ` +
          `floodgate does not take its firewall identity from another user's file`,
      );
    const text = readFileSync(fd, 'utf8').trim();
    if (!INSTANCE_ID.test(text)) {
      throw new UsageError(
        `${file}: expected an instance id of 8 lowercase hex digits, got ` +
          `${JSON.stringify(text.slice(0, 40))}; floodgate writes this file once: put back the id this ` +
          `directory's rules carry (their comment, set or table name is floodgate-<id>)`,
      );
    }
    return text;
  } finally {
    closeSync(fd);
  }
}
