// Which policy file a command uses. One order for every command, so that `run` under systemd and
// a manual `ban` typed afterwards agree without either being told:
//   --policy FILE, $FLOODGATE_POLICY, (manual commands only) the file `run` was given in this state
//   directory, /etc/floodgate/policy.yaml if it exists, the embedded default.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readStateFile } from '../bans/state-file.js';
import { policyRecord } from '../daemon/state-dir.js';
import { EMBEDDED_POLICY_NAME } from '../policy/embedded-policy.js';
import type { LoadedPolicy } from '../policy/load-policy.js';

/** /etc/floodgate, or the directory $FLOODGATE_ETC names (tests use it so they never write the real /etc). */
export function etcDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLOODGATE_ETC || '/etc/floodgate';
}

/** The system-wide policy file that `policy init` writes and every command reads when it exists. */
export function etcPolicyPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(etcDir(env), 'policy.yaml');
}

export interface PolicyChoice {
  /** The file to read; undefined for the embedded default. */
  readonly file: string | undefined;
  /** Why this one, for `status` and `list`: "--policy", "$FLOODGATE_POLICY", … */
  readonly source: string;
}

export interface LookupOptions {
  readonly policy?: string | undefined;
  /**
   * A manual command's state directory: the policy file `floodgate run` recorded there is used
   * after --policy and $FLOODGATE_POLICY, so that a direct ban lands in the daemon's backend.
   */
  readonly stateDir?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** The embedded default's path; the record naming it means "no file was chosen". */
  readonly defaultPath?: string;
}

export function choosePolicy(options: LookupOptions): PolicyChoice {
  const env = options.env ?? process.env;
  if (options.policy !== undefined) return { file: options.policy, source: '--policy' };
  if (env.FLOODGATE_POLICY) return { file: env.FLOODGATE_POLICY, source: '$FLOODGATE_POLICY' };
  if (options.stateDir !== undefined) {
    // Checked like the state directory: whoever can write this file chooses the policy (its mode and
    // reload command) that a manual command, often root's, runs with.
    const recorded = readStateFile(policyRecord(options.stateDir))?.trim() ?? '';
    // `run` on the embedded default records the default's path: that chose nothing, so the
    // lookup goes on to /etc as `run` itself would next time.
    if (recorded !== '' && recorded !== options.defaultPath && existsSync(recorded)) {
      return { file: recorded, source: `recorded by floodgate run in ${resolve(options.stateDir)}` };
    }
  }
  const etc = etcPolicyPath(env);
  if (existsSync(etc)) return { file: etc, source: `${etc} exists` };
  return { file: undefined, source: 'the embedded default' };
}

/** Chooses and loads the policy; the answer says which file and why. */
export async function lookUpPolicy(options: LookupOptions): Promise<LoadedPolicy & { source: string }> {
  const { loadPolicy, DEFAULT_POLICY_PATH } = await import('../policy/load-policy.js');
  const choice = choosePolicy({ ...options, defaultPath: DEFAULT_POLICY_PATH });
  return { ...loadPolicy(choice.file), source: choice.source };
}

/** The policy the running daemon started with, as it recorded it; for `status` and `list` when the daemon answers. */
export function daemonPolicy(stateDir: string): PolicyChoice {
  try {
    const recorded = readFileSync(policyRecord(stateDir), 'utf8').trim();
    // The daemon records resolve(file): for the single executable's default, "/(embedded default policy)".
    if (recorded.endsWith(EMBEDDED_POLICY_NAME)) return { file: EMBEDDED_POLICY_NAME, source: "the running daemon's" };
    if (recorded !== '') return { file: recorded, source: "the running daemon's" };
  } catch {
    // an older daemon, or the record was removed
  }
  return { file: undefined, source: "the running daemon's (not recorded)" };
}

/** "FILE (why)", one line for `status` and `list`. */
export function describePolicy(file: string | undefined, source: string): string {
  return `${file ?? 'embedded default'} (${source})`;
}
