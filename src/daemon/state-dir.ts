// The state directory: where it is, what is kept in it, and creating it. Kept free of heavy
// imports: every manual command needs it, also when it only talks to the daemon's socket.
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { UsageError } from '../errors.js';
import { checkStatePath, stateDirError } from '../bans/state-file.js';

export type Mode = 'dry-run' | 'enforce';

/** /var/lib/floodgate for root; a per-user directory otherwise (a non-root dry-run). */
export function defaultStateDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/floodgate';
  // The XDG spec: an empty or relative XDG_STATE_HOME is ignored (else the state would land in
  // whatever the current directory is).
  const xdg = process.env.XDG_STATE_HOME;
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'state'), 'floodgate');
}

export function stateFile(stateDir: string, mode: Mode): string {
  // Dry-run keeps its would-be bans apart, so that enforce never applies a preview by accident.
  return join(stateDir, mode === 'enforce' ? 'bans.json' : 'dry-run-bans.json');
}

/**
 * Creates the state directory (0700) if need be, and refuses one that another user could change: its
 * files decide what floodgate bans, which policy a manual command loads and what its reload hook runs.
 */
export function ensureStateDir(stateDir: string): void {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const mapped = stateDirError(error, stateDir, 'create the state directory');
    if (mapped !== error) throw mapped;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot create the state directory ${stateDir} ` +
        `(${code ?? (error as Error).message}): choose another with --state-dir`,
      { cause: error },
    );
  }
  checkStatePath(stateDir, 'directory');
}

/** Where `run` records the policy file it runs with, so that manual commands use the same one. */
export function policyRecord(stateDir: string): string {
  return join(stateDir, 'policy-path');
}
