// `floodgate run`: the controller loop (dry-run unless --enforce or the policy says enforce).
import { runDaemon } from '../daemon/daemon.js';
import { defaultStateDir } from '../daemon/state-dir.js';
import { createLogger } from '../log.js';
import { type CommonOptions, resolveMode } from './act.js';
import { lookUpPolicy } from './policy-lookup.js';

export interface RunOptions extends CommonOptions {
  readonly flushOnExit?: boolean;
  readonly interval?: number;
}

export async function runCommand(options: RunOptions): Promise<void> {
  // No state-directory record here: `run` is what writes it.
  const loaded = await lookUpPolicy({ policy: options.policy });
  const policy = options.interval === undefined ? loaded.policy : { ...loaded.policy, interval: options.interval };
  const mode = resolveMode(policy.mode, options);
  const log = createLogger({ ...(options.pretty !== undefined && { pretty: options.pretty }) });
  await runDaemon({ policy, policyFile: loaded.file, mode, stateDir: options.stateDir ?? defaultStateDir(), flushOnExit: options.flushOnExit ?? false, log });
}
