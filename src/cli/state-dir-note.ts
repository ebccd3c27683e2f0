// Which state directory a reading command (`list`, `status`) looked in, and the note for a plain
// user who finds nothing there while root's floodgate keeps its bans in /var/lib/floodgate.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT_STATE_DIR } from '../daemon/instance-id.js';

/** Who is asking and where root's state lives: the real process by default, injected by tests. */
export interface Reader {
  readonly uid: number | undefined;
  readonly rootStateDir: string;
  readonly exists: (path: string) => boolean;
}

export const PROCESS_READER: Reader = { uid: process.getuid?.(), rootStateDir: ROOT_STATE_DIR, exists: existsSync };

/**
 * The note for a non-root user whose state directory has no bans while root's exists (it is 0700:
 * this user cannot even see whether it holds any), or null.
 */
export function rootStateNote(stateDir: string, empty: boolean, reader: Reader = PROCESS_READER): string | null {
  if (!empty || reader.uid === undefined || reader.uid === 0) return null;
  if (resolve(stateDir) === resolve(reader.rootStateDir) || !reader.exists(reader.rootStateDir)) return null;
  return (
    `note: ${stateDir} has no bans, but ${reader.rootStateDir} exists: a floodgate ` +
    `run as root keeps its bans there, which this user (uid ${reader.uid}) cannot ` +
    `read; run this command as root (sudo), which reads ${reader.rootStateDir}`
  );
}
